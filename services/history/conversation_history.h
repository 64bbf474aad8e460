#ifndef IM_SERVICES_HISTORY_CONVERSATION_HISTORY_H_
#define IM_SERVICES_HISTORY_CONVERSATION_HISTORY_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "im/history/v1/history.pb.h"
#include "storage/conversation_store.h"

namespace im::history {

// Page sizes and bounds of the read RPCs. The defaults are the API's
// (history.proto); tests shrink the Sync scan bound to exercise it.
struct ConversationHistoryOptions {
  uint32_t default_history_limit = 50;
  uint32_t max_history_limit = 200;
  uint32_t max_get_messages_seqs = 100;
  uint32_t default_list_limit = 50;
  uint32_t max_list_limit = 200;
  uint32_t default_sync_limit = 100;
  uint32_t max_sync_limit = 500;
  // Membership rows one Sync page examines at most, changed or not, so a
  // user in 10,000 conversations gets bounded pages (a page may then hold
  // fewer changes than asked for, with a token to continue).
  uint32_t max_sync_rows_scanned = 1000;
};

// The read side of the conversation log for one authenticated user:
// GetHistory, GetMessages, ListConversations and Sync of history.proto,
// with membership and visibility enforced on every call. Errors are the
// API's codes: INVALID_ARGUMENT for bad limits and tokens, NOT_FOUND
// ("conversation not found") alike for a missing conversation and one the
// user was never a member of. Former members keep reading the range they
// could see (joined_seq..left_seq). Thread-safe; the reader must outlive it.
class ConversationHistory {
 public:
  // INVALID_ARGUMENT for inconsistent options (a zero or default-above-max
  // limit).
  static absl::StatusOr<std::unique_ptr<ConversationHistory>> Create(
      const ConversationHistoryOptions& options,
      storage::ConversationReader* reader);

  absl::StatusOr<v1::GetHistoryResponse> GetHistory(
      uint64_t user_id, const v1::GetHistoryRequest& request) const;
  absl::StatusOr<v1::GetMessagesResponse> GetMessages(
      uint64_t user_id, const v1::GetMessagesRequest& request) const;
  absl::StatusOr<v1::ListConversationsResponse> ListConversations(
      uint64_t user_id, const v1::ListConversationsRequest& request) const;
  absl::StatusOr<v1::SyncResponse> Sync(uint64_t user_id,
                                        const v1::SyncRequest& request) const;

 private:
  // The seqs a member may read, first..last inclusive.
  struct VisibleRange {
    uint64_t first = 1;
    uint64_t last = 0;
  };

  ConversationHistory(const ConversationHistoryOptions& options,
                      storage::ConversationReader* reader)
      : options_(options), reader_(reader) {}

  absl::StatusOr<VisibleRange> Visible(uint64_t user_id,
                                       uint64_t conversation_id) const;

  const ConversationHistoryOptions options_;
  storage::ConversationReader* const reader_;
};

}  // namespace im::history

#endif  // IM_SERVICES_HISTORY_CONVERSATION_HISTORY_H_
