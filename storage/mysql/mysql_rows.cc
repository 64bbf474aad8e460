#include "storage/mysql/mysql_rows.h"

#include <algorithm>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cppconn/datatype.h"
#include "storage/log_entry.h"

namespace im::storage::mysql_rows {
namespace {

constexpr int kEntryKindMessage = 1;
constexpr int kEntryKindMemberEvent = 2;

}  // namespace

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

absl::Time FromMicros(int64_t micros) { return absl::FromUnixMicros(micros); }

std::optional<absl::Time> NullableTime(sql::ResultSet& rows, int column) {
  if (rows.isNull(column)) return std::nullopt;
  return FromMicros(rows.getInt64(column));
}

void SetNullableTime(sql::PreparedStatement& statement, int index,
                     const std::optional<absl::Time>& t) {
  if (t.has_value()) {
    statement.setInt64(index, Micros(*t));
  } else {
    statement.setNull(index, sql::DataType::BIGINT);
  }
}

std::string Marks(size_t n) {
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('?');
  }
  return out;
}

std::string RowMarks(size_t rows, size_t columns) {
  const std::string row = absl::StrCat("(", Marks(columns), ")");
  std::string out;
  out.reserve(rows * (row.size() + 1));
  for (size_t i = 0; i < rows; ++i) {
    if (i > 0) out.push_back(',');
    out += row;
  }
  return out;
}

size_t PaddedCount(size_t n) {
  size_t padded = 1;
  while (padded < n) padded *= 2;
  return padded;
}

std::vector<std::pair<size_t, size_t>> PowerOfTwoChunks(size_t n,
                                                        size_t max_chunk) {
  std::vector<std::pair<size_t, size_t>> chunks;
  size_t offset = 0;
  while (offset < n) {
    size_t size = max_chunk;
    while (size > n - offset) size /= 2;
    chunks.emplace_back(offset, size);
    offset += size;
  }
  return chunks;
}

std::vector<std::pair<size_t, size_t>> Chunks(size_t n, size_t max_chunk) {
  std::vector<std::pair<size_t, size_t>> chunks;
  for (size_t offset = 0; offset < n; offset += max_chunk) {
    chunks.emplace_back(offset, std::min(max_chunk, n - offset));
  }
  return chunks;
}

int BindPaddedIds(sql::PreparedStatement& statement, int first_index,
                  absl::Span<const uint64_t> ids, size_t padded) {
  int index = first_index;
  for (size_t i = 0; i < padded; ++i) {
    statement.setUInt64(index++, ids[std::min(i, ids.size() - 1)]);
  }
  return index;
}

void ForEachRowWithIds(MysqlConnection& connection, absl::string_view prefix,
                       absl::string_view suffix,
                       absl::Span<const uint64_t> leading,
                       absl::Span<const uint64_t> ids,
                       absl::FunctionRef<void(sql::ResultSet&)> on_row) {
  for (const auto& [offset, count] : Chunks(ids.size(), kMaxListKeys)) {
    const size_t padded = PaddedCount(count);
    sql::PreparedStatement& select =
        connection.Prepare(absl::StrCat(prefix, Marks(padded), suffix));
    int index = 1;
    for (uint64_t value : leading) select.setUInt64(index++, value);
    BindPaddedIds(select, index, ids.subspan(offset, count), padded);
    std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
    while (rows->next()) on_row(*rows);
  }
}

std::vector<uint64_t> ActiveMemberIds(MysqlConnection& connection,
                                      uint64_t conversation_id) {
  sql::PreparedStatement& select = connection.Prepare(
      "SELECT user_id FROM memberships WHERE conversation_id = ? AND "
      "left_seq IS NULL ORDER BY user_id");
  select.setUInt64(1, conversation_id);
  std::unique_ptr<sql::ResultSet> rows(select.executeQuery());
  std::vector<uint64_t> ids;
  while (rows->next()) ids.push_back(rows->getUInt64(1));
  return ids;
}

std::string DirectKey(uint64_t a, uint64_t b) {
  return absl::StrCat(std::min(a, b), ":", std::max(a, b));
}

ConversationRecord ReadConversation(sql::ResultSet& rows, int first) {
  ConversationRecord c;
  c.id = rows.getUInt64(first);
  c.kind = static_cast<ConversationKind>(rows.getInt(first + 1));
  c.title = rows.getString(first + 2).asStdString();
  if (!rows.isNull(first + 3)) {
    const std::string key = rows.getString(first + 3).asStdString();
    std::pair<std::string, std::string> parts =
        absl::StrSplit(key, absl::MaxSplits(':', 1));
    if (!absl::SimpleAtoi(parts.first, &c.direct_user_a) ||
        !absl::SimpleAtoi(parts.second, &c.direct_user_b)) {
      c.direct_user_a = c.direct_user_b = 0;
    }
  }
  c.created_by = rows.getUInt64(first + 4);
  c.created_at = FromMicros(rows.getInt64(first + 5));
  c.last_seq = rows.getUInt64(first + 6);
  c.last_activity_at = FromMicros(rows.getInt64(first + 7));
  c.member_count = rows.getUInt(first + 8);
  return c;
}

MemberRecord ReadMember(sql::ResultSet& rows, int first) {
  MemberRecord m;
  m.user_id = rows.getUInt64(first);
  m.conversation_id = rows.getUInt64(first + 1);
  m.role = static_cast<MemberRole>(rows.getInt(first + 2));
  m.joined_seq = rows.getUInt64(first + 3);
  m.joined_at = FromMicros(rows.getInt64(first + 4));
  if (!rows.isNull(first + 5)) m.left_seq = rows.getUInt64(first + 5);
  m.left_at = NullableTime(rows, first + 6);
  return m;
}

absl::StatusOr<Entry> ReadEntry(sql::ResultSet& rows, int first) {
  Entry entry;
  entry.set_conversation_id(rows.getUInt64(first));
  entry.set_seq(rows.getUInt64(first + 1));
  entry.set_sender_id(rows.getUInt64(first + 2));
  entry.set_client_msg_id(rows.getString(first + 3).asStdString());
  const int kind = rows.getInt(first + 4);
  const std::string extra =
      rows.isNull(first + 7) ? std::string() : rows.getString(first + 7).asStdString();
  *entry.mutable_sent_at() =
      ToProtoTimestamp(FromMicros(rows.getInt64(first + 8)));
  bool parsed = false;
  if (kind == kEntryKindMessage) {
    ::im::message::v1::Message* message = entry.mutable_message();
    parsed = message->ParseFromString(extra);
    message->set_text(rows.getString(first + 5).asStdString());
    message->set_content_type(rows.getString(first + 6).asStdString());
  } else if (kind == kEntryKindMemberEvent) {
    parsed = entry.mutable_member_event()->ParseFromString(extra);
  }
  if (!parsed) {
    return absl::InternalError(absl::StrCat("undecodable entry ",
                                            entry.conversation_id(), "/",
                                            entry.seq()));
  }
  return entry;
}

void BindEntry(sql::PreparedStatement& statement, int first_index,
               const Entry& entry) {
  int i = first_index;
  statement.setUInt64(i++, entry.conversation_id());
  statement.setUInt64(i++, entry.seq());
  statement.setUInt64(i++, entry.sender_id());
  statement.setString(i++, entry.client_msg_id());
  std::string extra;
  if (entry.has_member_event()) {
    statement.setInt(i++, kEntryKindMemberEvent);
    statement.setString(i++, "");
    statement.setString(i++, "");
    extra = entry.member_event().SerializeAsString();
  } else {
    statement.setInt(i++, kEntryKindMessage);
    statement.setString(i++, entry.message().text());
    statement.setString(i++, entry.message().content_type());
    if (!entry.message().metadata().empty()) {
      ::im::message::v1::Message metadata_only;
      *metadata_only.mutable_metadata() = entry.message().metadata();
      extra = metadata_only.SerializeAsString();
    }
  }
  if (extra.empty()) {
    statement.setNull(i++, sql::DataType::LONGVARBINARY);
  } else {
    statement.setString(i++, extra);
  }
  statement.setInt64(i++, Micros(FromProtoTimestamp(entry.sent_at())));
}

}  // namespace im::storage::mysql_rows
