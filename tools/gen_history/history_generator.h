#ifndef IM_TOOLS_GEN_HISTORY_HISTORY_GENERATOR_H_
#define IM_TOOLS_GEN_HISTORY_HISTORY_GENERATOR_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/database.h"

// Fills an empty database with a large synthetic conversation log for the
// history benchmark, through the stores' own batched writes
// (ConversationLog::AppendMessages: one transaction and one multi-row
// INSERT per batch), so the rows are exactly what the message service
// would have written.

namespace im::tools {

// The username of the user in `heavy_user_conversations` conversations.
inline constexpr char kHeavyUsername[] = "bench-heavy";

struct HistoryGeneratorOptions {
  uint32_t users = 20000;
  uint32_t conversations = 10000;
  uint64_t messages = 10000000;
  // The heavy user is a member of this many conversations (the big ones
  // among them).
  uint32_t heavy_user_conversations = 1000;
  // This many conversations share `big_share` of the messages, so the
  // deepest page is deep.
  uint32_t big_conversations = 10;
  double big_share = 0.5;
  // Every n-th conversation is direct (2 members); the rest are groups.
  uint32_t direct_every = 5;
  uint32_t max_group_members = 8;
  // Messages per AppendMessages call.
  uint32_t batch_size = 500;
  // Writer threads (each appends whole conversations).
  uint32_t threads = 4;
  uint32_t text_bytes = 100;
  uint64_t seed = 1;
  // Activity spans [start, start + span).
  absl::Time start = absl::FromUnixSeconds(1700000000);
  absl::Duration span = absl::Hours(24 * 30);
  // Progress reports (from any thread, serialized); may be empty.
  std::function<void(const std::string&)> progress;
};

struct HistoryGeneratorResult {
  uint64_t heavy_user_id = 0;
  // The conversation with the most entries and its last seq.
  uint64_t deepest_conversation_id = 0;
  uint64_t deepest_last_seq = 0;
  uint64_t users = 0;
  uint64_t conversations = 0;
  uint64_t messages = 0;  // appended messages (member events not counted)
  uint64_t memberships = 0;
  absl::Duration users_time;
  absl::Duration conversations_time;
  absl::Duration messages_time;
};

// FAILED_PRECONDITION when the database already holds the heavy user (it
// was generated before); INVALID_ARGUMENT for inconsistent options; store
// errors as they come.
absl::StatusOr<HistoryGeneratorResult> GenerateHistory(
    const HistoryGeneratorOptions& options, storage::Database* db);

}  // namespace im::tools

#endif  // IM_TOOLS_GEN_HISTORY_HISTORY_GENERATOR_H_
