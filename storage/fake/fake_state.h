#ifndef IM_STORAGE_FAKE_FAKE_STATE_H_
#define IM_STORAGE_FAKE_FAKE_STATE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/conversation_store.h"
#include "storage/session_store.h"
#include "storage/user_store.h"

// The in-memory tables behind FakeDatabase: one mutex, rows mirroring the
// MySQL schema. Internal to storage/fake.

namespace im::storage {

struct FakeServiceAccountRow {
  ServiceAccountRecord record;
  std::string api_key_hash;
};

struct FakeRefreshTokenRow {
  uint64_t session_id = 0;
  absl::Time expires_at;
  std::optional<absl::Time> used_at;
};

struct FakeState {
  absl::Mutex mu;

  // Fault injection (FakeDatabase::InjectFailure).
  absl::Status failure ABSL_GUARDED_BY(mu);
  int failure_calls ABSL_GUARDED_BY(mu) = 0;

  uint64_t next_user_id ABSL_GUARDED_BY(mu) = 1;
  std::map<uint64_t, UserRecord> users ABSL_GUARDED_BY(mu);
  std::map<std::string, uint64_t> user_by_norm ABSL_GUARDED_BY(mu);
  std::map<uint64_t, FakeServiceAccountRow> service_accounts
      ABSL_GUARDED_BY(mu);
  std::map<std::string, uint64_t> service_account_by_key ABSL_GUARDED_BY(mu);

  uint64_t next_session_id ABSL_GUARDED_BY(mu) = 1;
  std::map<uint64_t, SessionRecord> sessions ABSL_GUARDED_BY(mu);
  std::map<std::string, FakeRefreshTokenRow> refresh_tokens
      ABSL_GUARDED_BY(mu);

  uint64_t next_conversation_id ABSL_GUARDED_BY(mu) = 1;
  std::map<uint64_t, ConversationRecord> conversations ABSL_GUARDED_BY(mu);
  std::map<std::string, uint64_t> direct_by_key ABSL_GUARDED_BY(mu);
  // Keyed (conversation_id, user_id); by_user indexes (user_id,
  // conversation_id) like the MySQL primary key.
  std::map<std::pair<uint64_t, uint64_t>, MemberRecord> members
      ABSL_GUARDED_BY(mu);
  std::set<std::pair<uint64_t, uint64_t>> memberships_by_user
      ABSL_GUARDED_BY(mu);
  // Each conversation's entries; entries[i] has seq i + 1.
  std::map<uint64_t, std::vector<Entry>> log ABSL_GUARDED_BY(mu);
  // (conversation_id, sender_id, client_msg_id) -> seq.
  std::map<std::tuple<uint64_t, uint64_t, std::string>, uint64_t> dedup
      ABSL_GUARDED_BY(mu);
  // (user_id, conversation_id) -> read_seq.
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> read_markers
      ABSL_GUARDED_BY(mu);

  // The injected failure for this call, if any; counts the call.
  absl::Status ConsumeFailureLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Read-marker upsert: read_seq = max(current, seq).
  uint64_t RaiseReadMarkerLocked(uint64_t user_id, uint64_t conversation_id,
                                 uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // The row, or null.
  const ConversationRecord* FindConversationLocked(uint64_t conversation_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // The membership row if active, else null.
  const MemberRecord* FindActiveMemberLocked(uint64_t conversation_id,
                                             uint64_t user_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  std::vector<uint64_t> ActiveMemberIdsLocked(uint64_t conversation_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // What every log write does (fake_conversation_store.cc).
  // Appends `entry` (seq last_seq + 1) and records its dedup key.
  void StoreEntryLocked(ConversationRecord& conversation, const Entry& entry,
                        absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Appends a member event by `actor` at last_seq + 1.
  absl::StatusOr<Entry> AppendMemberEventLocked(
      ConversationRecord& conversation, uint64_t actor,
      const std::string& requested_id, absl::Time now,
      ::im::message::v1::MemberEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Inserts or re-activates a membership that starts at `joined_seq`.
  void JoinLocked(ConversationRecord& conversation, uint64_t user_id,
                  MemberRole role, uint64_t joined_seq, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  MemberChange MemberChangeLocked(const ConversationRecord& conversation,
                                  std::optional<Entry> entry,
                                  std::vector<uint64_t> affected)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // The replayed change when `actor` already used client_msg_id here.
  std::optional<MemberChange> DuplicateChangeLocked(
      const ConversationRecord& conversation, uint64_t actor,
      const std::string& client_msg_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
};

std::unique_ptr<UserStore> NewFakeUserStore(FakeState* state);
std::unique_ptr<SessionStore> NewFakeSessionStore(FakeState* state);
std::unique_ptr<ConversationLog> NewFakeConversationLog(FakeState* state);
std::unique_ptr<ConversationReader> NewFakeConversationReader(FakeState* state);
std::unique_ptr<ReadMarkerStore> NewFakeReadMarkerStore(FakeState* state);

}  // namespace im::storage

#endif  // IM_STORAGE_FAKE_FAKE_STATE_H_
