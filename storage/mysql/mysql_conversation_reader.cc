#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/membership_rules.h"
#include "storage/mysql/mysql_rows.h"
#include "storage/mysql/mysql_stores.h"

namespace im::storage {
namespace {

using mysql_rows::ActiveMemberIds;
using mysql_rows::ForEachRowWithIds;
using mysql_rows::kConversationColumnCount;
using mysql_rows::kConversationColumns;
using mysql_rows::kEntryColumns;
using mysql_rows::kMemberColumnCount;
using mysql_rows::kMemberColumns;
using mysql_rows::Micros;
using mysql_rows::ReadConversation;
using mysql_rows::ReadEntry;
using mysql_rows::ReadMember;

// A membership view: conversation columns, member columns, read_seq.
const std::string& MembershipViewColumns() {
  static const std::string* const columns = new std::string(absl::StrCat(
      kConversationColumns, ", ", kMemberColumns, ", COALESCE(r.read_seq, 0)"));
  return *columns;
}

constexpr char kMembershipViewJoins[] =
    " FROM memberships m JOIN conversations c ON c.id = m.conversation_id "
    "LEFT JOIN read_markers r ON r.user_id = m.user_id AND "
    "r.conversation_id = m.conversation_id ";

MembershipView ReadMembershipView(sql::ResultSet& rows) {
  MembershipView view;
  view.conversation = ReadConversation(rows, 1);
  view.member = ReadMember(rows, 1 + kConversationColumnCount);
  view.read_seq =
      rows.getUInt64(1 + kConversationColumnCount + kMemberColumnCount);
  return view;
}

absl::StatusOr<std::vector<Entry>> ReadEntries(sql::ResultSet& rows) {
  std::vector<Entry> entries;
  while (rows.next()) {
    absl::StatusOr<Entry> entry = ReadEntry(rows, 1);
    if (!entry.ok()) return entry.status();
    entries.push_back(*std::move(entry));
  }
  return entries;
}

bool ConversationExists(MysqlConnection& connection, uint64_t id) {
  sql::PreparedStatement& select =
      connection.Prepare("SELECT 1 FROM conversations WHERE id = ?");
  select.setUInt64(1, id);
  std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
  return rows->next();
}

class MysqlConversationReader : public ConversationReader {
 public:
  explicit MysqlConversationReader(MysqlPool* pool) : pool_(pool) {}

  absl::StatusOr<ConversationRecord> GetConversation(
      uint64_t conversation_id) override {
    return pool_->Run<ConversationRecord>(
        "reader.get_conversation",
        [&](MysqlConnection& connection) -> absl::StatusOr<ConversationRecord> {
          sql::PreparedStatement& select = connection.Prepare(absl::StrCat(
              "SELECT ", kConversationColumns,
              " FROM conversations c WHERE c.id = ?"));
          select.setUInt64(1, conversation_id);
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          if (!rows->next()) return ConversationNotFoundError();
          return ReadConversation(*rows, 1);
        });
  }

  absl::StatusOr<MemberRecord> GetMember(uint64_t conversation_id,
                                         uint64_t user_id) override {
    return pool_->Run<MemberRecord>(
        "reader.get_member",
        [&](MysqlConnection& connection) -> absl::StatusOr<MemberRecord> {
          sql::PreparedStatement& select = connection.Prepare(absl::StrCat(
              "SELECT ", kMemberColumns,
              " FROM memberships m WHERE m.user_id = ? AND "
              "m.conversation_id = ?"));
          select.setUInt64(1, user_id);
          select.setUInt64(2, conversation_id);
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          if (!rows->next()) return ConversationNotFoundError();
          return ReadMember(*rows, 1);
        });
  }

  absl::StatusOr<MembershipView> GetMembershipView(
      uint64_t user_id, uint64_t conversation_id) override {
    return pool_->Run<MembershipView>(
        "reader.get_membership_view",
        [&](MysqlConnection& connection) -> absl::StatusOr<MembershipView> {
          sql::PreparedStatement& select = connection.Prepare(absl::StrCat(
              "SELECT ", MembershipViewColumns(), kMembershipViewJoins,
              "WHERE m.user_id = ? AND m.conversation_id = ?"));
          select.setUInt64(1, user_id);
          select.setUInt64(2, conversation_id);
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          if (!rows->next()) return ConversationNotFoundError();
          return ReadMembershipView(*rows);
        });
  }

  absl::StatusOr<std::vector<MemberRecord>> ListMembers(
      uint64_t conversation_id, uint64_t after_user_id,
      uint32_t limit) override {
    return pool_->Run<std::vector<MemberRecord>>(
        "reader.list_members",
        [&](MysqlConnection& connection)
            -> absl::StatusOr<std::vector<MemberRecord>> {
          sql::PreparedStatement& select = connection.Prepare(absl::StrCat(
              "SELECT ", kMemberColumns,
              " FROM memberships m WHERE m.conversation_id = ? AND "
              "m.user_id > ? AND m.left_seq IS NULL ORDER BY m.user_id "
              "LIMIT ?"));
          select.setUInt64(1, conversation_id);
          select.setUInt64(2, after_user_id);
          select.setUInt(3, limit);
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          std::vector<MemberRecord> members;
          while (rows->next()) members.push_back(ReadMember(*rows, 1));
          if (members.empty() && !ConversationExists(connection, conversation_id)) {
            return ConversationNotFoundError();
          }
          return members;
        });
  }

  absl::StatusOr<std::vector<uint64_t>> ListActiveMemberIds(
      uint64_t conversation_id) override {
    return pool_->Run<std::vector<uint64_t>>(
        "reader.list_active_member_ids",
        [&](MysqlConnection& connection)
            -> absl::StatusOr<std::vector<uint64_t>> {
          std::vector<uint64_t> ids =
              ActiveMemberIds(connection, conversation_id);
          if (ids.empty() && !ConversationExists(connection, conversation_id)) {
            return ConversationNotFoundError();
          }
          return ids;
        });
  }

  absl::StatusOr<std::vector<MembershipView>> ListMemberships(
      uint64_t user_id, uint64_t after_conversation_id, uint32_t limit,
      bool include_left) override {
    return pool_->Run<std::vector<MembershipView>>(
        "reader.list_memberships",
        [&](MysqlConnection& connection)
            -> absl::StatusOr<std::vector<MembershipView>> {
          sql::PreparedStatement& select = connection.Prepare(absl::StrCat(
              "SELECT ", MembershipViewColumns(), kMembershipViewJoins,
              "WHERE m.user_id = ? AND m.conversation_id > ? AND "
              "(? = 1 OR m.left_seq IS NULL) ORDER BY m.conversation_id "
              "LIMIT ?"));
          select.setUInt64(1, user_id);
          select.setUInt64(2, after_conversation_id);
          select.setInt(3, include_left ? 1 : 0);
          select.setUInt(4, limit);
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          std::vector<MembershipView> views;
          while (rows->next()) views.push_back(ReadMembershipView(*rows));
          return views;
        });
  }

  absl::StatusOr<std::vector<ConversationListRow>> ListConversationsPage(
      uint64_t user_id, const std::optional<ConversationPageCursor>& after,
      uint32_t limit) override {
    // Without a cursor, start after the greatest possible key.
    const int64_t after_activity =
        after.has_value() ? Micros(after->last_activity_at)
                          : std::numeric_limits<int64_t>::max();
    const uint64_t after_id = after.has_value()
                                  ? after->conversation_id
                                  : std::numeric_limits<uint64_t>::max();
    return pool_->Run<std::vector<ConversationListRow>>(
        "reader.list_conversations_page",
        [&](MysqlConnection& connection)
            -> absl::StatusOr<std::vector<ConversationListRow>> {
          sql::PreparedStatement& select = connection.Prepare(absl::StrCat(
              "SELECT ", MembershipViewColumns(), ", ", kEntryColumns,
              kMembershipViewJoins,
              "LEFT JOIN messages e ON e.conversation_id = c.id AND "
              "e.seq = c.last_seq "
              // One range scan of ix_memberships_user_activity (memberships
              // carry their conversation's activity, migration 0002).
              "WHERE m.user_id = ? AND m.left_seq IS NULL AND "
              "(m.last_activity_at_us < ? OR (m.last_activity_at_us = ? AND "
              "m.conversation_id < ?)) ORDER BY m.last_activity_at_us DESC, "
              "m.conversation_id DESC LIMIT ?"));
          select.setUInt64(1, user_id);
          select.setInt64(2, after_activity);
          select.setInt64(3, after_activity);
          select.setUInt64(4, after_id);
          select.setUInt(5, limit);
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          std::vector<ConversationListRow> page;
          constexpr int kEntryFirst =
              1 + kConversationColumnCount + kMemberColumnCount + 1;
          while (rows->next()) {
            ConversationListRow row;
            row.view = ReadMembershipView(*rows);
            if (!rows->isNull(kEntryFirst)) {
              absl::StatusOr<Entry> entry = ReadEntry(*rows, kEntryFirst);
              if (!entry.ok()) return entry.status();
              row.last_entry = *std::move(entry);
            }
            page.push_back(std::move(row));
          }
          return page;
        });
  }

  absl::StatusOr<std::vector<Entry>> ReadAfter(uint64_t conversation_id,
                                               uint64_t after_seq,
                                               uint64_t max_seq,
                                               uint32_t limit) override {
    return pool_->Run<std::vector<Entry>>(
        "reader.read_after",
        [&](MysqlConnection& connection) -> absl::StatusOr<std::vector<Entry>> {
          sql::PreparedStatement& select = connection.Prepare(absl::StrCat(
              "SELECT ", kEntryColumns,
              " FROM messages e WHERE e.conversation_id = ? AND e.seq > ? AND "
              "e.seq <= ? ORDER BY e.seq LIMIT ?"));
          select.setUInt64(1, conversation_id);
          select.setUInt64(2, after_seq);
          select.setUInt64(3, max_seq);
          select.setUInt(4, limit);
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          return ReadEntries(*rows);
        });
  }

  absl::StatusOr<std::vector<Entry>> ReadBefore(uint64_t conversation_id,
                                                uint64_t before_seq,
                                                uint64_t min_seq,
                                                uint32_t limit) override {
    return pool_->Run<std::vector<Entry>>(
        "reader.read_before",
        [&](MysqlConnection& connection) -> absl::StatusOr<std::vector<Entry>> {
          sql::PreparedStatement& select = connection.Prepare(absl::StrCat(
              "SELECT ", kEntryColumns,
              " FROM messages e WHERE e.conversation_id = ? AND e.seq < ? AND "
              "e.seq >= ? ORDER BY e.seq DESC LIMIT ?"));
          select.setUInt64(1, conversation_id);
          select.setUInt64(2, before_seq);
          select.setUInt64(3, min_seq);
          select.setUInt(4, limit);
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          absl::StatusOr<std::vector<Entry>> entries = ReadEntries(*rows);
          if (entries.ok()) std::reverse(entries->begin(), entries->end());
          return entries;
        });
  }

  absl::StatusOr<std::vector<Entry>> ReadSeqs(
      uint64_t conversation_id, absl::Span<const uint64_t> seqs) override {
    std::vector<uint64_t> wanted(seqs.begin(), seqs.end());
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    if (wanted.empty()) return std::vector<Entry>{};
    return pool_->Run<std::vector<Entry>>(
        "reader.read_seqs",
        [&](MysqlConnection& connection) -> absl::StatusOr<std::vector<Entry>> {
          std::vector<Entry> entries;
          absl::Status status;
          ForEachRowWithIds(
              connection,
              absl::StrCat("SELECT ", kEntryColumns,
                           " FROM messages e WHERE e.conversation_id = ? AND "
                           "e.seq IN ("),
              ") ORDER BY e.seq", {conversation_id}, wanted,
              [&](sql::ResultSet& rows) {
                absl::StatusOr<Entry> entry = ReadEntry(rows, 1);
                if (entry.ok()) {
                  entries.push_back(*std::move(entry));
                } else {
                  status.Update(entry.status());
                }
              });
          if (!status.ok()) return status;
          return entries;
        });
  }

  absl::StatusOr<std::vector<uint64_t>> UsersSharingConversation(
      uint64_t viewer, absl::Span<const uint64_t> candidates) override {
    std::vector<uint64_t> wanted(candidates.begin(), candidates.end());
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    if (wanted.empty()) return std::vector<uint64_t>{};
    return pool_->Run<std::vector<uint64_t>>(
        "reader.users_sharing_conversation",
        [&](MysqlConnection& connection)
            -> absl::StatusOr<std::vector<uint64_t>> {
          std::set<uint64_t> shared;
          if (std::binary_search(wanted.begin(), wanted.end(), viewer)) {
            shared.insert(viewer);
          }
          ForEachRowWithIds(
              connection,
              "SELECT DISTINCT o.user_id FROM memberships v JOIN memberships "
              "o ON o.conversation_id = v.conversation_id WHERE v.user_id = ? "
              "AND v.left_seq IS NULL AND o.left_seq IS NULL AND "
              "o.user_id IN (",
              ")", {viewer}, wanted,
              [&](sql::ResultSet& rows) { shared.insert(rows.getUInt64(1)); });
          return std::vector<uint64_t>(shared.begin(), shared.end());
        });
  }

 private:
  MysqlPool* const pool_;
};

class MysqlReadMarkerStore : public ReadMarkerStore {
 public:
  explicit MysqlReadMarkerStore(MysqlPool* pool) : pool_(pool) {}

  absl::StatusOr<uint64_t> MarkRead(uint64_t user_id, uint64_t conversation_id,
                                    uint64_t seq, absl::Time now) override {
    return pool_->Run<uint64_t>(
        "read_markers.mark_read",
        [&](MysqlConnection& connection) -> absl::StatusOr<uint64_t> {
          // No lock on the conversation row: marking read must not wait for
          // (or slow down) the writers of the conversation.
          sql::PreparedStatement& state = connection.Prepare(
              "SELECT m.left_seq IS NULL, c.last_seq, COALESCE(r.read_seq, 0) "
              "FROM memberships m JOIN conversations c ON c.id = "
              "m.conversation_id LEFT JOIN read_markers r ON r.user_id = "
              "m.user_id AND r.conversation_id = m.conversation_id "
              "WHERE m.user_id = ? AND m.conversation_id = ?");
          state.setUInt64(1, user_id);
          state.setUInt64(2, conversation_id);
          std::unique_ptr<sql::ResultSet> rows(state.executeQuery());
          if (!rows->next() || rows->getInt(1) == 0) {
            return ConversationNotFoundError();
          }
          const uint64_t last_seq = rows->getUInt64(2);
          const uint64_t current = rows->getUInt64(3);
          rows.reset();
          if (seq == 0 || seq > last_seq) {
            return absl::OutOfRangeError(
                absl::StrCat("seq must be between 1 and ", last_seq));
          }
          if (seq <= current) return current;
          sql::PreparedStatement& upsert = connection.Prepare(
              "INSERT INTO read_markers (user_id, conversation_id, read_seq, "
              "updated_at_us) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE "
              "updated_at_us = IF(VALUES(read_seq) > read_seq, "
              "VALUES(updated_at_us), updated_at_us), read_seq = "
              "GREATEST(read_seq, VALUES(read_seq))");
          upsert.setUInt64(1, user_id);
          upsert.setUInt64(2, conversation_id);
          upsert.setUInt64(3, seq);
          upsert.setInt64(4, Micros(now));
          upsert.executeUpdate();
          return StoredReadSeq(connection, user_id, conversation_id);
        });
  }

  absl::StatusOr<uint64_t> GetReadSeq(uint64_t user_id,
                                      uint64_t conversation_id) override {
    return pool_->Run<uint64_t>(
        "read_markers.get",
        [&](MysqlConnection& connection) -> absl::StatusOr<uint64_t> {
          return StoredReadSeq(connection, user_id, conversation_id);
        });
  }

 private:
  static uint64_t StoredReadSeq(MysqlConnection& connection, uint64_t user_id,
                                uint64_t conversation_id) {
    sql::PreparedStatement& select = connection.Prepare(
        "SELECT read_seq FROM read_markers WHERE user_id = ? AND "
        "conversation_id = ?");
    select.setUInt64(1, user_id);
    select.setUInt64(2, conversation_id);
    std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
    return rows->next() ? rows->getUInt64(1) : 0;
  }

  MysqlPool* const pool_;
};

}  // namespace

std::unique_ptr<ConversationReader> NewMysqlConversationReader(
    MysqlPool* pool) {
  return std::make_unique<MysqlConversationReader>(pool);
}

std::unique_ptr<ReadMarkerStore> NewMysqlReadMarkerStore(MysqlPool* pool) {
  return std::make_unique<MysqlReadMarkerStore>(pool);
}

}  // namespace im::storage
