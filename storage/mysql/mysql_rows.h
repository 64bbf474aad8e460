#ifndef IM_STORAGE_MYSQL_MYSQL_ROWS_H_
#define IM_STORAGE_MYSQL_MYSQL_ROWS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "cppconn/prepared_statement.h"
#include "cppconn/resultset.h"
#include "storage/conversation_store.h"
#include "storage/mysql/mysql_pool.h"

// Row mapping and statement shapes shared by the MySQL stores (internal to
// storage/mysql). Methods taking sql:: objects throw sql::SQLException.

namespace im::storage::mysql_rows {

int64_t Micros(absl::Time t);
absl::Time FromMicros(int64_t micros);
std::optional<absl::Time> NullableTime(sql::ResultSet& rows, int column);
// Binds `t` or NULL.
void SetNullableTime(sql::PreparedStatement& statement, int index,
                     const std::optional<absl::Time>& t);

// Statement shapes. Lists of keys are padded to a power of two (repeating
// the last key, which changes no result) so each statement kind has a
// handful of shapes and its prepared statements are reused; inserts cannot
// repeat rows, so they are split into power-of-two chunks instead.
inline constexpr size_t kMaxListKeys = 1024;
inline constexpr size_t kMaxInsertRows = 128;

// "?,?,?" (n marks).
std::string Marks(size_t n);
// "(?,?),(?,?)": `rows` groups of `columns` marks.
std::string RowMarks(size_t rows, size_t columns);
// The smallest power of two >= n (n >= 1).
size_t PaddedCount(size_t n);
// [offset, count) chunks of `n` items, each a power of two <= max_chunk.
std::vector<std::pair<size_t, size_t>> PowerOfTwoChunks(size_t n,
                                                        size_t max_chunk);
// [offset, count) chunks of at most max_chunk items (for padded lists).
std::vector<std::pair<size_t, size_t>> Chunks(size_t n, size_t max_chunk);
// Binds ids[0..] to parameters first_index.. and pads to `padded`
// parameters by repeating the last id. Returns the next parameter index.
int BindPaddedIds(sql::PreparedStatement& statement, int first_index,
                  absl::Span<const uint64_t> ids, size_t padded);

// Runs `prefix` + "?,?,..." + `suffix` once per chunk of `ids` (padded as
// above), with `leading` bound to the first parameters, and calls `on_row`
// for every result row.
void ForEachRowWithIds(MysqlConnection& connection, absl::string_view prefix,
                       absl::string_view suffix,
                       absl::Span<const uint64_t> leading,
                       absl::Span<const uint64_t> ids,
                       absl::FunctionRef<void(sql::ResultSet&)> on_row);

// The active members of a conversation, ascending.
std::vector<uint64_t> ActiveMemberIds(MysqlConnection& connection,
                                      uint64_t conversation_id);

// Column lists (with table aliases c, m, e) and their readers; a reader
// starts at column `first` (1-based) and consumes the list's columns.
inline constexpr char kConversationColumns[] =
    "c.id, c.kind, c.title, c.direct_key, c.created_by, c.created_at_us, "
    "c.last_seq, c.last_activity_at_us, c.member_count";
inline constexpr int kConversationColumnCount = 9;
ConversationRecord ReadConversation(sql::ResultSet& rows, int first);

inline constexpr char kMemberColumns[] =
    "m.user_id, m.conversation_id, m.role, m.joined_seq, m.joined_at_us, "
    "m.left_seq, m.left_at_us";
inline constexpr int kMemberColumnCount = 7;
MemberRecord ReadMember(sql::ResultSet& rows, int first);

inline constexpr char kEntryColumns[] =
    "e.conversation_id, e.seq, e.sender_id, e.client_msg_id, e.kind, e.text, "
    "e.content_type, e.extra, e.sent_at_us";
inline constexpr int kEntryColumnCount = 9;
// INTERNAL when the stored entry cannot be decoded.
absl::StatusOr<Entry> ReadEntry(sql::ResultSet& rows, int first);
// Binds the 9 values of kEntryColumns' order for an INSERT.
void BindEntry(sql::PreparedStatement& statement, int first_index,
               const Entry& entry);

// "<smaller id>:<larger id>", the unique key of a direct conversation.
std::string DirectKey(uint64_t a, uint64_t b);

}  // namespace im::storage::mysql_rows

#endif  // IM_STORAGE_MYSQL_MYSQL_ROWS_H_
