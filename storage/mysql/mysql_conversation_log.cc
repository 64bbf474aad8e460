#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "cppconn/datatype.h"
#include "storage/column_limits.h"
#include "storage/log_entry.h"
#include "storage/membership_rules.h"
#include "storage/mysql/mysql_rows.h"
#include "storage/mysql/mysql_stores.h"

namespace im::storage {
namespace {

using ::im::message::v1::MemberEvent;
using mysql_rows::BindEntry;
using mysql_rows::BindPaddedIds;
using mysql_rows::Chunks;
using mysql_rows::ActiveMemberIds;
using mysql_rows::DirectKey;
using mysql_rows::ForEachRowWithIds;
using mysql_rows::kConversationColumns;
using mysql_rows::kEntryColumnCount;
using mysql_rows::kEntryColumns;
using mysql_rows::kMaxInsertRows;
using mysql_rows::kMaxListKeys;
using mysql_rows::kMemberColumns;
using mysql_rows::Marks;
using mysql_rows::Micros;
using mysql_rows::PaddedCount;
using mysql_rows::PowerOfTwoChunks;
using mysql_rows::ReadConversation;
using mysql_rows::ReadEntry;
using mysql_rows::ReadMember;
using mysql_rows::RowMarks;

constexpr char kInsertEntryPrefix[] =
    "INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, "
    "kind, text, content_type, extra, sent_at_us) VALUES ";

MemberEvent Event(MemberEvent::Kind kind, std::vector<uint64_t> user_ids) {
  MemberEvent event;
  event.set_kind(kind);
  for (uint64_t id : user_ids) event.add_user_ids(id);
  return event;
}

// (user, conversation) -> seq the marker must reach.
using MarkerRaises = std::map<std::pair<uint64_t, uint64_t>, uint64_t>;

void AddRaise(MarkerRaises& raises, uint64_t user, uint64_t conversation,
              uint64_t seq) {
  uint64_t& target = raises[{user, conversation}];
  target = std::max(target, seq);
}

// The statements of the log's transactions, on one connection inside a
// transaction. Methods throw sql::SQLException.
class LogStatements {
 public:
  LogStatements(MysqlConnection& connection, absl::Time now)
      : connection_(connection), now_(StoredTime(now)) {}

  absl::Time now() const { return now_; }

  // The conversation row, locked: every writer of a conversation takes this
  // lock first, which serializes seq allocation and membership changes.
  std::optional<ConversationRecord> LockConversation(uint64_t id) {
    sql::PreparedStatement& select = connection_.Prepare(absl::StrCat(
        "SELECT ", kConversationColumns,
        " FROM conversations c WHERE c.id = ? FOR UPDATE"));
    select.setUInt64(1, id);
    std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
    if (!rows->next()) return std::nullopt;
    return ReadConversation(*rows, 1);
  }

  // The membership row in any state.
  std::optional<MemberRecord> Member(uint64_t conversation_id,
                                     uint64_t user_id) {
    sql::PreparedStatement& select = connection_.Prepare(absl::StrCat(
        "SELECT ", kMemberColumns,
        " FROM memberships m WHERE m.user_id = ? AND m.conversation_id = ?"));
    select.setUInt64(1, user_id);
    select.setUInt64(2, conversation_id);
    std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
    if (!rows->next()) return std::nullopt;
    return ReadMember(*rows, 1);
  }

  std::vector<MemberRecord> ActiveMembers(uint64_t conversation_id) {
    sql::PreparedStatement& select = connection_.Prepare(absl::StrCat(
        "SELECT ", kMemberColumns,
        " FROM memberships m WHERE m.conversation_id = ? AND m.left_seq IS "
        "NULL ORDER BY m.user_id"));
    select.setUInt64(1, conversation_id);
    std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
    std::vector<MemberRecord> members;
    while (rows->next()) members.push_back(ReadMember(*rows, 1));
    return members;
  }

  // The subset of `user_ids` (sorted, unique) that are active members.
  std::set<uint64_t> ActiveAmong(uint64_t conversation_id,
                                 const std::vector<uint64_t>& user_ids) {
    std::set<uint64_t> active;
    ForEachRowWithIds(
        connection_,
        "SELECT user_id FROM memberships WHERE conversation_id = ? AND "
        "user_id IN (",
        ") AND left_seq IS NULL", {conversation_id}, user_ids,
        [&](sql::ResultSet& rows) { active.insert(rows.getUInt64(1)); });
    return active;
  }

  // The smallest of `user_ids` (sorted, unique) without a users row.
  std::optional<uint64_t> FirstUnknownUser(
      const std::vector<uint64_t>& user_ids) {
    std::set<uint64_t> known;
    ForEachRowWithIds(
        connection_, "SELECT id FROM users WHERE id IN (", ")", {}, user_ids,
        [&](sql::ResultSet& rows) { known.insert(rows.getUInt64(1)); });
    for (uint64_t id : user_ids) {
      if (known.count(id) == 0) return id;
    }
    return std::nullopt;
  }

  absl::StatusOr<std::optional<Entry>> FindEntry(
      uint64_t conversation_id, uint64_t sender_id,
      const std::string& client_msg_id) {
    sql::PreparedStatement& select = connection_.Prepare(absl::StrCat(
        "SELECT ", kEntryColumns,
        " FROM messages e WHERE e.conversation_id = ? AND e.sender_id = ? AND "
        "e.client_msg_id = ?"));
    select.setUInt64(1, conversation_id);
    select.setUInt64(2, sender_id);
    select.setString(3, client_msg_id);
    std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
    if (!rows->next()) return std::optional<Entry>();
    absl::StatusOr<Entry> entry = ReadEntry(*rows, 1);
    if (!entry.ok()) return entry.status();
    return std::optional<Entry>(*std::move(entry));
  }

  void InsertEntries(absl::Span<const Entry> entries) {
    for (const auto& [offset, count] :
         PowerOfTwoChunks(entries.size(), kMaxInsertRows)) {
      sql::PreparedStatement& insert = connection_.Prepare(absl::StrCat(
          kInsertEntryPrefix, RowMarks(count, kEntryColumnCount)));
      for (size_t i = 0; i < count; ++i) {
        BindEntry(insert, static_cast<int>(i * kEntryColumnCount + 1),
                  entries[offset + i]);
      }
      insert.executeUpdate();
    }
  }

  // Writes last_seq, last_activity_at and member_count of a locked row, and
  // last_activity_at to its active memberships (the conversation list's
  // index, see migration 0002).
  void SaveConversation(const ConversationRecord& c) {
    sql::PreparedStatement& update = connection_.Prepare(
        "UPDATE conversations SET last_seq = ?, last_activity_at_us = ?, "
        "member_count = ? WHERE id = ?");
    update.setUInt64(1, c.last_seq);
    update.setInt64(2, Micros(c.last_activity_at));
    update.setUInt(3, c.member_count);
    update.setUInt64(4, c.id);
    update.executeUpdate();
    sql::PreparedStatement& members = connection_.Prepare(
        "UPDATE memberships SET last_activity_at_us = ? WHERE "
        "conversation_id = ? AND left_seq IS NULL");
    members.setInt64(1, Micros(c.last_activity_at));
    members.setUInt64(2, c.id);
    members.executeUpdate();
  }

  // Inserts or re-activates memberships starting at joined_seq.
  void Join(uint64_t conversation_id, const std::vector<uint64_t>& user_ids,
            MemberRole role_of_others, uint64_t owner, uint64_t joined_seq) {
    for (const auto& [offset, count] :
         PowerOfTwoChunks(user_ids.size(), kMaxInsertRows)) {
      sql::PreparedStatement& upsert = connection_.Prepare(absl::StrCat(
          "INSERT INTO memberships (user_id, conversation_id, role, "
          "joined_seq, joined_at_us, left_seq, left_at_us, "
          "last_activity_at_us) VALUES ",
          RowMarksWithNulls(count),
          " ON DUPLICATE KEY UPDATE role = VALUES(role), joined_seq = "
          "VALUES(joined_seq), joined_at_us = VALUES(joined_at_us), "
          "left_seq = NULL, left_at_us = NULL, last_activity_at_us = "
          "VALUES(last_activity_at_us)"));
      int index = 1;
      for (size_t i = 0; i < count; ++i) {
        const uint64_t user = user_ids[offset + i];
        upsert.setUInt64(index++, user);
        upsert.setUInt64(index++, conversation_id);
        upsert.setInt(index++, static_cast<int>(
                                   user == owner ? MemberRole::MEMBER_ROLE_OWNER
                                                 : role_of_others));
        upsert.setUInt64(index++, joined_seq);
        upsert.setInt64(index++, Micros(now_));
        // The conversation's activity after the joining entry (callers that
        // may hold a later one save the conversation afterwards).
        upsert.setInt64(index++, Micros(now_));
      }
      upsert.executeUpdate();
    }
  }

  void MarkLeft(uint64_t conversation_id, uint64_t user_id, uint64_t seq) {
    sql::PreparedStatement& update = connection_.Prepare(
        "UPDATE memberships SET left_seq = ?, left_at_us = ? WHERE user_id = "
        "? AND conversation_id = ?");
    update.setUInt64(1, seq);
    update.setInt64(2, Micros(now_));
    update.setUInt64(3, user_id);
    update.setUInt64(4, conversation_id);
    update.executeUpdate();
  }

  void SetRole(uint64_t conversation_id, uint64_t user_id, MemberRole role) {
    sql::PreparedStatement& update = connection_.Prepare(
        "UPDATE memberships SET role = ? WHERE user_id = ? AND "
        "conversation_id = ?");
    update.setInt(1, static_cast<int>(role));
    update.setUInt64(2, user_id);
    update.setUInt64(3, conversation_id);
    update.executeUpdate();
  }

  // read_seq = GREATEST(read_seq, seq) for each (user, conversation).
  void RaiseReadMarkers(const MarkerRaises& raises) {
    if (raises.empty()) return;
    const std::vector<std::pair<std::pair<uint64_t, uint64_t>, uint64_t>> rows(
        raises.begin(), raises.end());
    for (const auto& [offset, count] : Chunks(rows.size(), kMaxInsertRows)) {
      const size_t padded = PaddedCount(count);
      // Assignments run left to right: updated_at_us must see the old
      // read_seq.
      sql::PreparedStatement& upsert = connection_.Prepare(absl::StrCat(
          "INSERT INTO read_markers (user_id, conversation_id, read_seq, "
          "updated_at_us) VALUES ",
          RowMarks(padded, 4),
          " ON DUPLICATE KEY UPDATE updated_at_us = IF(VALUES(read_seq) > "
          "read_seq, VALUES(updated_at_us), updated_at_us), read_seq = "
          "GREATEST(read_seq, VALUES(read_seq))"));
      int index = 1;
      for (size_t i = 0; i < padded; ++i) {
        const auto& [key, seq] = rows[offset + std::min(i, count - 1)];
        upsert.setUInt64(index++, key.first);
        upsert.setUInt64(index++, key.second);
        upsert.setUInt64(index++, seq);
        upsert.setInt64(index++, Micros(now_));
      }
      upsert.executeUpdate();
    }
  }

  // Appends a member event by `actor` at last_seq + 1 and updates the
  // in-memory conversation (the caller saves it).
  absl::StatusOr<Entry> AppendEvent(ConversationRecord& conversation,
                                    uint64_t actor,
                                    const std::string& requested_id,
                                    MemberEvent event) {
    const uint64_t seq = conversation.last_seq + 1;
    absl::StatusOr<std::string> client_msg_id =
        MemberChangeClientMsgId(requested_id, seq);
    if (!client_msg_id.ok()) return client_msg_id.status();
    Entry entry = MakeMemberEventEntry(conversation.id, seq, actor,
                                       *client_msg_id, now_, std::move(event));
    InsertEntries({entry});
    conversation.last_seq = seq;
    conversation.last_activity_at =
        std::max(conversation.last_activity_at, now_);
    return entry;
  }

  MemberChange Change(const ConversationRecord& conversation,
                      std::optional<Entry> entry,
                      std::vector<uint64_t> affected) {
    MemberChange change;
    change.conversation = conversation;
    change.entry = std::move(entry);
    change.members_after = ActiveMemberIds(connection_, conversation.id);
    change.affected = std::move(affected);
    return change;
  }

  // The replayed change when `actor` already used client_msg_id here.
  absl::StatusOr<std::optional<MemberChange>> Duplicate(
      const ConversationRecord& conversation, uint64_t actor,
      const std::string& client_msg_id) {
    if (client_msg_id.empty()) return std::optional<MemberChange>();
    absl::StatusOr<std::optional<Entry>> entry =
        FindEntry(conversation.id, actor, client_msg_id);
    if (!entry.ok()) return entry.status();
    if (!entry->has_value()) return std::optional<MemberChange>();
    std::vector<uint64_t> affected;
    if ((*entry)->has_member_event()) {
      affected.assign((*entry)->member_event().user_ids().begin(),
                      (*entry)->member_event().user_ids().end());
    }
    MemberChange change = Change(conversation, **entry, std::move(affected));
    change.duplicate = true;
    return std::optional<MemberChange>(std::move(change));
  }

 private:
  // Membership rows: five bound values and NULL left_seq/left_at_us.
  static std::string RowMarksWithNulls(size_t rows) {
    std::string out;
    for (size_t i = 0; i < rows; ++i) {
      if (i > 0) out.push_back(',');
      out += "(?,?,?,?,?,NULL,NULL,?)";
    }
    return out;
  }

  MysqlConnection& connection_;
  const absl::Time now_;
};

// The start of AddMembers/RemoveMember/Leave/SetRole.
struct GroupChange {
  ConversationRecord conversation;
  MemberRecord actor;
  std::optional<MemberChange> duplicate;
};

absl::StatusOr<GroupChange> BeginGroupChange(LogStatements& log,
                                             uint64_t conversation_id,
                                             uint64_t actor,
                                             const std::string& client_msg_id) {
  std::optional<ConversationRecord> conversation =
      log.LockConversation(conversation_id);
  std::optional<MemberRecord> actor_row;
  if (conversation.has_value()) actor_row = log.Member(conversation_id, actor);
  if (auto s = CheckGroupChange(conversation ? &*conversation : nullptr,
                                actor_row ? &*actor_row : nullptr);
      !s.ok()) {
    return s;
  }
  GroupChange change{*conversation, *actor_row, std::nullopt};
  absl::StatusOr<std::optional<MemberChange>> duplicate =
      log.Duplicate(*conversation, actor, client_msg_id);
  if (!duplicate.ok()) return duplicate.status();
  change.duplicate = *std::move(duplicate);
  return change;
}

class MysqlConversationLog : public ConversationLog {
 public:
  explicit MysqlConversationLog(MysqlPool* pool) : pool_(pool) {}

  absl::StatusOr<std::vector<AppendOutcome>> AppendMessages(
      absl::Span<const AppendRequest> batch, absl::Time now) override;

  absl::StatusOr<MemberChange> CreateGroup(uint64_t creator,
                                           const std::string& title,
                                           absl::Span<const uint64_t> members,
                                           uint32_t max_members,
                                           const std::string& client_msg_id,
                                           absl::Time now) override {
    absl::StatusOr<std::vector<uint64_t>> members_to_create =
        GroupMembersToCreate(creator, title, members, max_members,
                             client_msg_id);
    if (!members_to_create.ok()) return members_to_create.status();
    const std::vector<uint64_t>& ids = *members_to_create;
    return pool_->RunInTransaction<MemberChange>(
        "log.create_group",
        [&](MysqlConnection& connection) -> absl::StatusOr<MemberChange> {
          LogStatements log(connection, now);
          if (std::optional<uint64_t> unknown = log.FirstUnknownUser(ids)) {
            return absl::NotFoundError(absl::StrCat("user not found: ", *unknown));
          }
          ConversationRecord conversation = InsertConversation(
              connection, ConversationKind::CONVERSATION_KIND_GROUP, title,
              std::nullopt, creator, now, static_cast<uint32_t>(ids.size()));
          log.Join(conversation.id, ids, MemberRole::MEMBER_ROLE_MEMBER,
                   creator, 1);
          MemberEvent event = Event(MemberEvent::KIND_CREATED, ids);
          event.set_title(title);
          absl::StatusOr<Entry> entry = log.AppendEvent(
              conversation, creator, client_msg_id, std::move(event));
          if (!entry.ok()) return entry.status();
          MarkerRaises raises;
          AddRaise(raises, creator, conversation.id, entry->seq());
          log.RaiseReadMarkers(raises);
          MemberChange change;
          change.conversation = conversation;
          change.entry = *std::move(entry);
          change.members_after = ids;
          change.affected = ids;
          return change;
        });
  }

  absl::StatusOr<DirectResult> GetOrCreateDirect(
      uint64_t a, uint64_t b, const std::string& client_msg_id,
      absl::Time now) override {
    if (auto s = ValidateDirectPair(a, b, client_msg_id); !s.ok()) return s;
    const uint64_t lo = std::min(a, b);
    const uint64_t hi = std::max(a, b);
    const std::string key = DirectKey(a, b);
    // A concurrent creator may win the unique direct_key: then the next
    // attempt finds its conversation.
    absl::StatusOr<DirectResult> result;
    for (int attempt = 0; attempt < 3; ++attempt) {
      result = pool_->RunInTransaction<DirectResult>(
          "log.get_or_create_direct",
          [&](MysqlConnection& connection) -> absl::StatusOr<DirectResult> {
            LogStatements log(connection, now);
            DirectResult direct;
            sql::PreparedStatement& find = connection.Prepare(absl::StrCat(
                "SELECT ", kConversationColumns,
                " FROM conversations c WHERE c.direct_key = ?"));
            find.setString(1, key);
            std::unique_ptr<sql::ResultSet> rows(find.executeQuery());
            if (rows->next()) {
              direct.change =
                  log.Change(ReadConversation(*rows, 1), std::nullopt, {});
              return direct;
            }
            rows.reset();
            if (std::optional<uint64_t> unknown =
                    log.FirstUnknownUser({lo, hi})) {
              return absl::NotFoundError(
                  absl::StrCat("user not found: ", *unknown));
            }
            ConversationRecord conversation = InsertConversation(
                connection, ConversationKind::CONVERSATION_KIND_DIRECT, "",
                key, a, now, 2);
            conversation.direct_user_a = lo;
            conversation.direct_user_b = hi;
            log.Join(conversation.id, {lo, hi}, MemberRole::MEMBER_ROLE_MEMBER,
                     /*owner=*/0, 1);
            absl::StatusOr<Entry> entry =
                log.AppendEvent(conversation, a, client_msg_id,
                                Event(MemberEvent::KIND_CREATED, {lo, hi}));
            if (!entry.ok()) return entry.status();
            MarkerRaises raises;
            AddRaise(raises, a, conversation.id, entry->seq());
            log.RaiseReadMarkers(raises);
            direct.change.conversation = conversation;
            direct.change.entry = *std::move(entry);
            direct.change.members_after = {lo, hi};
            direct.change.affected = {lo, hi};
            direct.created = true;
            return direct;
          });
      if (!absl::IsAlreadyExists(result.status())) break;
    }
    return result;
  }

  absl::StatusOr<MemberChange> AddMembers(uint64_t conversation_id,
                                          uint64_t actor,
                                          absl::Span<const uint64_t> users,
                                          uint32_t max_members,
                                          const std::string& client_msg_id,
                                          absl::Time now) override {
    const std::set<uint64_t> unique(users.begin(), users.end());
    const std::vector<uint64_t> wanted(unique.begin(), unique.end());
    return RunGroupChange(
        "log.add_members", conversation_id, actor, client_msg_id, now,
        [&](LogStatements& log, GroupChange* start)
            -> absl::StatusOr<MemberChange> {
          if (auto s = CheckCanAddMembers(start->actor); !s.ok()) return s;
          ConversationRecord& conversation = start->conversation;
          if (wanted.empty()) return log.Change(conversation, std::nullopt, {});
          if (std::optional<uint64_t> unknown = log.FirstUnknownUser(wanted)) {
            return absl::NotFoundError(absl::StrCat("user not found: ", *unknown));
          }
          const std::set<uint64_t> active =
              log.ActiveAmong(conversation_id, wanted);
          std::vector<uint64_t> added;
          for (uint64_t id : wanted) {
            if (active.count(id) == 0) added.push_back(id);
          }
          if (added.empty()) return log.Change(conversation, std::nullopt, {});
          if (auto s = CheckGroupSize(conversation.member_count + added.size(),
                                      max_members, "group full");
              !s.ok()) {
            return s;
          }
          absl::StatusOr<Entry> entry =
              log.AppendEvent(conversation, actor, client_msg_id,
                              Event(MemberEvent::KIND_ADDED, added));
          if (!entry.ok()) return entry.status();
          log.Join(conversation_id, added, MemberRole::MEMBER_ROLE_MEMBER,
                   /*owner=*/0, entry->seq());
          conversation.member_count += static_cast<uint32_t>(added.size());
          log.SaveConversation(conversation);
          MarkerRaises raises;
          for (uint64_t id : added) {
            AddRaise(raises, id, conversation_id, entry->seq() - 1);
          }
          AddRaise(raises, actor, conversation_id, entry->seq());
          log.RaiseReadMarkers(raises);
          return log.Change(conversation, *std::move(entry), added);
        });
  }

  absl::StatusOr<MemberChange> RemoveMember(uint64_t conversation_id,
                                            uint64_t actor, uint64_t user,
                                            const std::string& client_msg_id,
                                            absl::Time now) override {
    if (auto s = CheckNotSelfRemoval(actor, user); !s.ok()) return s;
    return RunGroupChange(
        "log.remove_member", conversation_id, actor, client_msg_id, now,
        [&](LogStatements& log, GroupChange* start)
            -> absl::StatusOr<MemberChange> {
          const std::optional<MemberRecord> target =
              log.Member(conversation_id, user);
          if (auto s = CheckCanRemoveMember(start->actor,
                                            target ? &*target : nullptr);
              !s.ok()) {
            return s;
          }
          ConversationRecord& conversation = start->conversation;
          absl::StatusOr<Entry> entry =
              log.AppendEvent(conversation, actor, client_msg_id,
                              Event(MemberEvent::KIND_REMOVED, {user}));
          if (!entry.ok()) return entry.status();
          log.MarkLeft(conversation_id, user, entry->seq());
          --conversation.member_count;
          log.SaveConversation(conversation);
          MarkerRaises raises;
          AddRaise(raises, actor, conversation_id, entry->seq());
          log.RaiseReadMarkers(raises);
          return log.Change(conversation, *std::move(entry), {user});
        });
  }

  absl::StatusOr<MemberChange> Leave(uint64_t conversation_id, uint64_t user,
                                     const std::string& client_msg_id,
                                     absl::Time now) override {
    return RunGroupChange(
        "log.leave", conversation_id, user, client_msg_id, now,
        [&](LogStatements& log, GroupChange* start)
            -> absl::StatusOr<MemberChange> {
          ConversationRecord& conversation = start->conversation;
          absl::StatusOr<Entry> entry =
              log.AppendEvent(conversation, user, client_msg_id,
                              Event(MemberEvent::KIND_LEFT, {user}));
          if (!entry.ok()) return entry.status();
          log.MarkLeft(conversation_id, user, entry->seq());
          --conversation.member_count;
          log.SaveConversation(conversation);
          if (start->actor.role == MemberRole::MEMBER_ROLE_OWNER) {
            const std::vector<MemberRecord> remaining =
                log.ActiveMembers(conversation_id);
            if (std::optional<uint64_t> owner = PickNextOwner(remaining)) {
              log.SetRole(conversation_id, *owner, MemberRole::MEMBER_ROLE_OWNER);
            }
          }
          return log.Change(conversation, *std::move(entry), {user});
        });
  }

  absl::StatusOr<MemberChange> SetRole(uint64_t conversation_id,
                                       uint64_t actor, uint64_t user,
                                       MemberRole role,
                                       const std::string& client_msg_id,
                                       absl::Time now) override {
    if (auto s = ValidateNewRole(role); !s.ok()) return s;
    return RunGroupChange(
        "log.set_role", conversation_id, actor, client_msg_id, now,
        [&](LogStatements& log, GroupChange* start)
            -> absl::StatusOr<MemberChange> {
          const std::optional<MemberRecord> target =
              log.Member(conversation_id, user);
          if (auto s = CheckCanSetRole(start->actor, target ? &*target : nullptr);
              !s.ok()) {
            return s;
          }
          ConversationRecord& conversation = start->conversation;
          if (target->role == role) {
            return log.Change(conversation, std::nullopt, {});
          }
          MemberEvent event = Event(MemberEvent::KIND_ROLE_CHANGED, {user});
          event.set_role(role);
          absl::StatusOr<Entry> entry = log.AppendEvent(
              conversation, actor, client_msg_id, std::move(event));
          if (!entry.ok()) return entry.status();
          log.SetRole(conversation_id, user, role);
          log.SaveConversation(conversation);
          MarkerRaises raises;
          AddRaise(raises, actor, conversation_id, entry->seq());
          log.RaiseReadMarkers(raises);
          return log.Change(conversation, *std::move(entry), {user});
        });
  }

 private:
  // The frame of AddMembers/RemoveMember/Leave/SetRole: checks the
  // client_msg_id, then in one transaction locks the group, checks the
  // actor, replays a duplicate, and otherwise runs `change`.
  absl::StatusOr<MemberChange> RunGroupChange(
      absl::string_view operation, uint64_t conversation_id, uint64_t actor,
      const std::string& client_msg_id, absl::Time now,
      absl::FunctionRef<absl::StatusOr<MemberChange>(LogStatements&,
                                                     GroupChange*)>
          change) {
    if (auto s = ValidateMemberChangeClientMsgId(client_msg_id); !s.ok()) {
      return s;
    }
    return pool_->RunInTransaction<MemberChange>(
        operation,
        [&](MysqlConnection& connection) -> absl::StatusOr<MemberChange> {
          LogStatements log(connection, now);
          absl::StatusOr<GroupChange> start =
              BeginGroupChange(log, conversation_id, actor, client_msg_id);
          if (!start.ok()) return start.status();
          if (start->duplicate.has_value()) return *std::move(start->duplicate);
          return change(log, &*start);
        });
  }

  // A new conversation row whose log will start with seq 1.
  static ConversationRecord InsertConversation(
      MysqlConnection& connection, ConversationKind kind,
      const std::string& title, const std::optional<std::string>& direct_key,
      uint64_t creator, absl::Time now, uint32_t member_count) {
    sql::PreparedStatement& insert = connection.Prepare(
        "INSERT INTO conversations (kind, title, direct_key, created_by, "
        "created_at_us, last_seq, last_activity_at_us, member_count) "
        "VALUES (?, ?, ?, ?, ?, 1, ?, ?)");
    insert.setInt(1, static_cast<int>(kind));
    insert.setString(2, title);
    if (direct_key.has_value()) {
      insert.setString(3, *direct_key);
    } else {
      insert.setNull(3, sql::DataType::VARCHAR);
    }
    insert.setUInt64(4, creator);
    insert.setInt64(5, Micros(now));
    insert.setInt64(6, Micros(now));
    insert.setUInt(7, member_count);
    insert.executeUpdate();
    std::unique_ptr<sql::ResultSet> id(
        connection.Prepare("SELECT LAST_INSERT_ID()").executeQuery());
    id->next();
    ConversationRecord c;
    c.id = id->getUInt64(1);
    c.kind = kind;
    c.title = title;
    c.created_by = creator;
    c.created_at = StoredTime(now);
    // AppendEvent moves last_seq to 1, matching the row.
    c.last_seq = 0;
    c.last_activity_at = StoredTime(now);
    c.member_count = member_count;
    return c;
  }

  MysqlPool* const pool_;
};

absl::StatusOr<std::vector<AppendOutcome>> MysqlConversationLog::AppendMessages(
    absl::Span<const AppendRequest> batch, absl::Time now) {
  std::vector<AppendOutcome> outcomes(batch.size());
  std::vector<size_t> valid;
  for (size_t i = 0; i < batch.size(); ++i) {
    outcomes[i].status = ValidateAppend(batch[i]);
    if (outcomes[i].status.ok()) valid.push_back(i);
  }
  if (valid.empty()) return outcomes;

  std::set<uint64_t> conversation_set;
  for (size_t i : valid) conversation_set.insert(batch[i].conversation_id);
  const std::vector<uint64_t> conversation_ids(conversation_set.begin(),
                                               conversation_set.end());
  using DedupKey = std::tuple<uint64_t, uint64_t, std::string>;

  absl::Status status = pool_->RunInTransaction(
      "log.append_messages", [&](MysqlConnection& connection) -> absl::Status {
        LogStatements log(connection, now);
        // 1. Lock the conversations in id order (the lock order of every
        // log writer).
        std::map<uint64_t, ConversationRecord> conversations;
        ForEachRowWithIds(
            connection,
            absl::StrCat("SELECT ", kConversationColumns,
                         " FROM conversations c WHERE c.id IN ("),
            ") ORDER BY c.id FOR UPDATE", {}, conversation_ids,
            [&](sql::ResultSet& rows) {
              ConversationRecord c = ReadConversation(rows, 1);
              conversations.emplace(c.id, std::move(c));
            });

        // 2. Active memberships of every (sender, conversation) pair.
        std::vector<size_t> candidates;
        std::set<std::pair<uint64_t, uint64_t>> pairs;  // (user, conversation)
        for (size_t i : valid) {
          if (conversations.count(batch[i].conversation_id) == 0) continue;
          candidates.push_back(i);
          pairs.emplace(batch[i].sender_id, batch[i].conversation_id);
        }
        std::set<std::pair<uint64_t, uint64_t>> members;
        const std::vector<std::pair<uint64_t, uint64_t>> pair_list(pairs.begin(),
                                                                   pairs.end());
        for (const auto& [offset, count] :
             Chunks(pair_list.size(), kMaxListKeys)) {
          const size_t padded = PaddedCount(count);
          sql::PreparedStatement& select = connection.Prepare(absl::StrCat(
              "SELECT user_id, conversation_id FROM memberships WHERE "
              "(user_id, conversation_id) IN (",
              RowMarks(padded, 2), ") AND left_seq IS NULL"));
          int index = 1;
          for (size_t i = 0; i < padded; ++i) {
            const auto& pair = pair_list[offset + std::min(i, count - 1)];
            select.setUInt64(index++, pair.first);
            select.setUInt64(index++, pair.second);
          }
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          while (rows->next()) {
            members.emplace(rows->getUInt64(1), rows->getUInt64(2));
          }
        }

        // 3. Entries already stored under the batch's dedup keys.
        std::vector<size_t> allowed;
        std::set<DedupKey> keys;
        for (size_t i : candidates) {
          if (members.count({batch[i].sender_id, batch[i].conversation_id}) ==
              0) {
            continue;
          }
          allowed.push_back(i);
          keys.emplace(batch[i].conversation_id, batch[i].sender_id,
                       batch[i].client_msg_id);
        }
        std::map<DedupKey, Entry> stored;
        const std::vector<DedupKey> key_list(keys.begin(), keys.end());
        for (const auto& [offset, count] :
             Chunks(key_list.size(), kMaxInsertRows)) {
          const size_t padded = PaddedCount(count);
          sql::PreparedStatement& select = connection.Prepare(absl::StrCat(
              "SELECT ", kEntryColumns,
              " FROM messages e WHERE (e.conversation_id, e.sender_id, "
              "e.client_msg_id) IN (",
              RowMarks(padded, 3), ")"));
          int index = 1;
          for (size_t i = 0; i < padded; ++i) {
            const DedupKey& key = key_list[offset + std::min(i, count - 1)];
            select.setUInt64(index++, std::get<0>(key));
            select.setUInt64(index++, std::get<1>(key));
            select.setString(index++, std::get<2>(key));
          }
          std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
          while (rows->next()) {
            absl::StatusOr<Entry> entry = ReadEntry(*rows, 1);
            if (!entry.ok()) return entry.status();
            DedupKey key(entry->conversation_id(), entry->sender_id(),
                         entry->client_msg_id());
            stored.emplace(std::move(key), *std::move(entry));
          }
        }

        // 4. Allocate seqs in request order.
        std::map<DedupKey, size_t> new_by_key;  // -> index into `fresh`
        std::vector<Entry> fresh;
        MarkerRaises raises;
        std::set<uint64_t> touched;
        for (size_t i : valid) {
          outcomes[i] = AppendOutcome();
          const AppendRequest& request = batch[i];
          if (members.count({request.sender_id, request.conversation_id}) == 0) {
            outcomes[i].status = ConversationNotFoundError();
            continue;
          }
          DedupKey key(request.conversation_id, request.sender_id,
                       request.client_msg_id);
          if (auto it = stored.find(key); it != stored.end()) {
            outcomes[i].entry = it->second;
            outcomes[i].duplicate = true;
            continue;
          }
          if (auto it = new_by_key.find(key); it != new_by_key.end()) {
            outcomes[i].entry = fresh[it->second];
            outcomes[i].duplicate = true;
            continue;
          }
          ConversationRecord& conversation =
              conversations.at(request.conversation_id);
          ++conversation.last_seq;
          conversation.last_activity_at =
              std::max(conversation.last_activity_at, StoredTime(now));
          touched.insert(conversation.id);
          new_by_key.emplace(std::move(key), fresh.size());
          fresh.push_back(MakeMessageEntry(request, conversation.last_seq, now));
          outcomes[i].entry = fresh.back();
          AddRaise(raises, request.sender_id, request.conversation_id,
                   conversation.last_seq);
        }
        if (fresh.empty()) return absl::OkStatus();

        // 5. One multi-row INSERT (in power-of-two chunks).
        log.InsertEntries(fresh);

        // 6. One UPDATE of the seq allocators.
        const std::vector<uint64_t> touched_ids(touched.begin(), touched.end());
        for (const auto& [offset, count] :
             Chunks(touched_ids.size(), kMaxInsertRows)) {
          const size_t padded = PaddedCount(count);
          std::string cases;
          for (size_t i = 0; i < padded; ++i) cases += " WHEN ? THEN ?";
          sql::PreparedStatement& update = connection.Prepare(absl::StrCat(
              "UPDATE conversations SET last_seq = CASE id", cases,
              " END, last_activity_at_us = GREATEST(last_activity_at_us, ?) "
              "WHERE id IN (",
              Marks(padded), ")"));
          int index = 1;
          for (size_t i = 0; i < padded; ++i) {
            const uint64_t id = touched_ids[offset + std::min(i, count - 1)];
            update.setUInt64(index++, id);
            update.setUInt64(index++, conversations.at(id).last_seq);
          }
          update.setInt64(index++, Micros(now));
          BindPaddedIds(update, index,
                        absl::MakeConstSpan(touched_ids).subspan(offset, count),
                        padded);
          update.executeUpdate();

          // The same activity on the active memberships (the conversation
          // list's index, migration 0002).
          sql::PreparedStatement& members = connection.Prepare(absl::StrCat(
              "UPDATE memberships SET last_activity_at_us = "
              "GREATEST(last_activity_at_us, ?) WHERE conversation_id IN (",
              Marks(padded), ") AND left_seq IS NULL"));
          members.setInt64(1, Micros(now));
          BindPaddedIds(members, 2,
                        absl::MakeConstSpan(touched_ids).subspan(offset, count),
                        padded);
          members.executeUpdate();
        }

        // 7. One upsert of the senders' read markers.
        log.RaiseReadMarkers(raises);
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return outcomes;
}

}  // namespace

std::unique_ptr<ConversationLog> NewMysqlConversationLog(MysqlPool* pool) {
  return std::make_unique<MysqlConversationLog>(pool);
}

}  // namespace im::storage
