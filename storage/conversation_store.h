#ifndef IM_STORAGE_CONVERSATION_STORE_H_
#define IM_STORAGE_CONVERSATION_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "im/message/v1/types.pb.h"

// The conversation log and its memberships. Three interfaces over the same
// tables: ConversationLog (every write that allocates seqs), ConversationReader
// (reads for delivery, history and presence) and ReadMarkerStore. The MySQL
// implementations share one pool; the fakes share one in-memory database.
//
// Seq contract: each conversation's entries have seqs 1, 2, 3, ... with no
// gap and no repeat, assigned in the transaction that stores the entry
// (conversations.last_seq is read FOR UPDATE and bumped in the same
// transaction). (conversation, sender, client_msg_id) is unique.
//
// Visibility contract: a member sees entries with
// joined_seq <= seq <= left_seq (left_seq unset = no upper bound). A user
// who is not a member, or a conversation that does not exist, gives
// NOT_FOUND with the same message ("conversation not found").
//
// client_msg_id: 1-64 bytes of [A-Za-z0-9._:-] (IsValidClientMsgId in
// storage/column_limits.h). Member changes accept an empty one and then
// store a server-chosen id that no client id can equal.
//
// Read markers: an entry's sender has read it (every write advances the
// sender's marker to the entry when the sender is still an active member),
// and a member who joins at seq s starts with a marker of at least s - 1, so
// unread = last_seq - read_seq counts only entries the member can see.

namespace im::storage {

using ::im::message::v1::ConversationKind;
using ::im::message::v1::Entry;
using ::im::message::v1::MemberRole;

struct ConversationRecord {
  uint64_t id = 0;
  ConversationKind kind = ConversationKind::CONVERSATION_KIND_UNSPECIFIED;
  std::string title;
  // Direct conversations: the two members, smaller id first; 0 for groups.
  uint64_t direct_user_a = 0;
  uint64_t direct_user_b = 0;
  uint64_t created_by = 0;
  absl::Time created_at;
  uint64_t last_seq = 0;
  absl::Time last_activity_at;
  uint32_t member_count = 0;  // active members
};

struct MemberRecord {
  uint64_t user_id = 0;
  uint64_t conversation_id = 0;
  MemberRole role = MemberRole::MEMBER_ROLE_UNSPECIFIED;
  uint64_t joined_seq = 0;
  absl::Time joined_at;
  std::optional<uint64_t> left_seq;  // set once removed or left
  std::optional<absl::Time> left_at;

  bool active() const { return !left_seq.has_value(); }
};

// One message to append.
struct AppendRequest {
  uint64_t conversation_id = 0;
  uint64_t sender_id = 0;
  std::string client_msg_id;
  ::im::message::v1::Message message;
};

// The fate of one AppendRequest.
struct AppendOutcome {
  // OK, NOT_FOUND when the conversation does not exist or the sender is
  // not an active member, INVALID_ARGUMENT for a malformed client_msg_id or
  // a message the schema cannot hold (text not valid UTF-8 or over 16 MiB,
  // content_type over 64 bytes or not printable ASCII). Other requests of
  // the batch are unaffected.
  absl::Status status;
  // The stored entry; for a duplicate, the one stored first.
  Entry entry;
  // (conversation, sender, client_msg_id) was already stored (earlier, or
  // earlier in the same batch): nothing new was stored.
  bool duplicate = false;
};

// The result of a membership change (or conversation creation).
struct MemberChange {
  ConversationRecord conversation;  // after the change
  // The KIND_CREATED/ADDED/REMOVED/LEFT/ROLE_CHANGED entry; unset when the
  // call changed nothing (e.g. AddMembers with only existing members).
  std::optional<Entry> entry;
  // Active member ids after the change, ascending (fan-out set).
  std::vector<uint64_t> members_after;
  // Users the change was about (added, removed, left, re-roled).
  std::vector<uint64_t> affected;
  // The actor had already used client_msg_id in this conversation: nothing
  // changed, `entry` is the entry stored first under that id and
  // `conversation`/`members_after` are the current state.
  bool duplicate = false;
};

struct DirectResult {
  MemberChange change;  // entry set only when created
  bool created = false;
};

// Every write that allocates seqs. Thread-safe; each call is one
// transaction. Failures as a whole: UNAVAILABLE (database unreachable,
// retryable, nothing stored), ABORTED (deadlock, retryable).
class ConversationLog {
 public:
  virtual ~ConversationLog() = default;

  // Appends a batch of messages in one transaction (group commit). Requests
  // for the same conversation get consecutive seqs in request order. Each
  // entry's sent_at is `now`. Also advances each sender's read marker to
  // their own newest entry. A non-OK result means nothing was stored.
  virtual absl::StatusOr<std::vector<AppendOutcome>> AppendMessages(
      absl::Span<const AppendRequest> batch, absl::Time now) = 0;

  // Creates a group owned by `creator` with `members` (creator added if
  // missing; duplicates ignored). Seq 1 is a KIND_CREATED entry whose
  // user_ids are all members. NOT_FOUND if the creator or a member id is
  // unknown; FAILED_PRECONDITION ("group too large") above max_members
  // (0 = no limit); INVALID_ARGUMENT for a title over 255 characters or not
  // valid UTF-8.
  virtual absl::StatusOr<MemberChange> CreateGroup(
      uint64_t creator, const std::string& title,
      absl::Span<const uint64_t> members, uint32_t max_members,
      const std::string& client_msg_id, absl::Time now) = 0;

  // The direct conversation of a and b (a != b), created with a
  // KIND_CREATED entry at seq 1 when missing. Concurrent calls for the same
  // pair agree on one conversation. NOT_FOUND if either user is unknown;
  // INVALID_ARGUMENT when a == b.
  virtual absl::StatusOr<DirectResult> GetOrCreateDirect(
      uint64_t a, uint64_t b, const std::string& client_msg_id,
      absl::Time now) = 0;

  // Group membership changes, each appending one member-event entry.
  // NOT_FOUND: conversation missing or actor not an active member (or, for
  // RemoveMember/SetRole, target not an active member; for AddMembers, an
  // unknown user id). PERMISSION_DENIED: the actor's role does not allow it
  // (add/remove: owner or admin; admins cannot remove owner or admins;
  // SetRole: owner only). FAILED_PRECONDITION: direct conversation, group
  // full (max_members, 0 = no limit), removing oneself (use Leave), changing
  // the owner's role. INVALID_ARGUMENT: SetRole to anything but ADMIN or
  // MEMBER. Checked in this order: the arguments alone (client_msg_id,
  // role, removing oneself), the conversation and the actor, direct, a
  // client_msg_id the actor already used (then the call is a duplicate, see
  // MemberChange), the actor's rights, then the target(s). Added members get
  // role MEMBER; a former member added again rejoins at the new entry's
  // seq. SetRole to the current role changes nothing.
  virtual absl::StatusOr<MemberChange> AddMembers(
      uint64_t conversation_id, uint64_t actor,
      absl::Span<const uint64_t> users, uint32_t max_members,
      const std::string& client_msg_id, absl::Time now) = 0;
  virtual absl::StatusOr<MemberChange> RemoveMember(
      uint64_t conversation_id, uint64_t actor, uint64_t user,
      const std::string& client_msg_id, absl::Time now) = 0;
  // An owner leaving hands ownership to the earliest-joined admin, else the
  // earliest-joined member (lowest joined_seq, then lowest user id; a
  // KIND_ROLE_CHANGED entry is not written; the new owner shows in
  // ListMembers). The last member leaving leaves an empty group.
  virtual absl::StatusOr<MemberChange> Leave(
      uint64_t conversation_id, uint64_t user,
      const std::string& client_msg_id, absl::Time now) = 0;
  virtual absl::StatusOr<MemberChange> SetRole(
      uint64_t conversation_id, uint64_t actor, uint64_t user,
      MemberRole role, const std::string& client_msg_id, absl::Time now) = 0;
};

// Where ListConversationsPage continues: strictly after this row in
// (last_activity_at DESC, conversation_id DESC) order.
struct ConversationPageCursor {
  absl::Time last_activity_at;
  uint64_t conversation_id = 0;
};

// One of a user's conversations with their membership and read marker.
struct MembershipView {
  ConversationRecord conversation;
  MemberRecord member;
  uint64_t read_seq = 0;
};

// A row of the conversation list.
struct ConversationListRow {
  MembershipView view;
  // The newest entry (the one at conversation.last_seq); unset if none.
  std::optional<Entry> last_entry;
};

// Reads of conversations, memberships and entries. Thread-safe. Entry reads
// apply no visibility rule (callers bound them by the member's joined_seq
// and left_seq) and return nothing for an unknown conversation.
class ConversationReader {
 public:
  virtual ~ConversationReader() = default;

  virtual absl::StatusOr<ConversationRecord> GetConversation(
      uint64_t conversation_id) = 0;
  // The membership row, active or not; NOT_FOUND if never a member or the
  // conversation does not exist.
  virtual absl::StatusOr<MemberRecord> GetMember(uint64_t conversation_id,
                                                 uint64_t user_id) = 0;
  // The user's membership of one conversation (active or not) with the
  // conversation and the read marker, in one read: what a per-conversation
  // read needs to check membership and visibility. NOT_FOUND as GetMember.
  virtual absl::StatusOr<MembershipView> GetMembershipView(
      uint64_t user_id, uint64_t conversation_id) = 0;
  // Active members with user_id > after_user_id, ascending, at most limit.
  // NOT_FOUND for an unknown conversation (this and ListActiveMemberIds).
  virtual absl::StatusOr<std::vector<MemberRecord>> ListMembers(
      uint64_t conversation_id, uint64_t after_user_id, uint32_t limit) = 0;
  // All active member ids, ascending (delivery fan-out).
  virtual absl::StatusOr<std::vector<uint64_t>> ListActiveMemberIds(
      uint64_t conversation_id) = 0;

  // The user's memberships with conversation_id > after_conversation_id,
  // ascending by conversation id, at most limit; left ones only when
  // include_left.
  virtual absl::StatusOr<std::vector<MembershipView>> ListMemberships(
      uint64_t user_id, uint64_t after_conversation_id, uint32_t limit,
      bool include_left) = 0;

  // The user's active conversations by (last_activity_at, id) descending,
  // after `after` when given, at most limit.
  virtual absl::StatusOr<std::vector<ConversationListRow>>
  ListConversationsPage(uint64_t user_id,
                        const std::optional<ConversationPageCursor>& after,
                        uint32_t limit) = 0;

  // Entries with after_seq < seq <= max_seq, ascending, at most limit.
  virtual absl::StatusOr<std::vector<Entry>> ReadAfter(
      uint64_t conversation_id, uint64_t after_seq, uint64_t max_seq,
      uint32_t limit) = 0;
  // Entries with min_seq <= seq < before_seq, the newest `limit` of them,
  // returned ascending.
  virtual absl::StatusOr<std::vector<Entry>> ReadBefore(
      uint64_t conversation_id, uint64_t before_seq, uint64_t min_seq,
      uint32_t limit) = 0;
  // The entries at the given seqs that exist, ascending.
  virtual absl::StatusOr<std::vector<Entry>> ReadSeqs(
      uint64_t conversation_id, absl::Span<const uint64_t> seqs) = 0;

  // The subset of `candidates` that share at least one conversation with
  // `viewer` where both are active members, ascending and without
  // repeats; `viewer` itself is included whenever it is a candidate.
  virtual absl::StatusOr<std::vector<uint64_t>> UsersSharingConversation(
      uint64_t viewer, absl::Span<const uint64_t> candidates) = 0;
};

// Per-member read markers, monotonic. Thread-safe.
class ReadMarkerStore {
 public:
  virtual ~ReadMarkerStore() = default;

  // Moves the marker to max(current, seq) and returns the stored value.
  // NOT_FOUND unless the user is an active member; OUT_OF_RANGE when seq is
  // 0 or beyond the conversation's last_seq.
  virtual absl::StatusOr<uint64_t> MarkRead(uint64_t user_id,
                                            uint64_t conversation_id,
                                            uint64_t seq, absl::Time now) = 0;
  // 0 when the user never marked anything.
  virtual absl::StatusOr<uint64_t> GetReadSeq(uint64_t user_id,
                                              uint64_t conversation_id) = 0;
};

}  // namespace im::storage

#endif  // IM_STORAGE_CONVERSATION_STORE_H_
