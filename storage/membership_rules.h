#ifndef IM_STORAGE_MEMBERSHIP_RULES_H_
#define IM_STORAGE_MEMBERSHIP_RULES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "storage/conversation_store.h"

// The rules of conversation_store.h's membership changes as pure functions,
// shared by the MySQL stores and the fakes so both give the same codes in
// the same order. Each check takes the state the caller read under its
// lock; a null pointer means "no such row" (or not an active member).

namespace im::storage {

// NOT_FOUND "conversation not found": a missing conversation and one the
// caller is not an active member of give exactly this.
absl::Status ConversationNotFoundError();

// The client_msg_id a member change stores: `requested` when given (it must
// pass IsValidClientMsgId), else a server-chosen id unique in the
// conversation that no valid client id can equal.
absl::StatusOr<std::string> MemberChangeClientMsgId(absl::string_view requested,
                                                    uint64_t seq);
// INVALID_ARGUMENT unless empty or a valid client_msg_id.
absl::Status ValidateMemberChangeClientMsgId(absl::string_view requested);
// INVALID_ARGUMENT unless ADMIN or MEMBER (SetRole).
absl::Status ValidateNewRole(MemberRole role);
// FAILED_PRECONDITION when a member would remove themselves.
absl::Status CheckNotSelfRemoval(uint64_t actor, uint64_t user);

// CreateGroup's arguments: the title, client_msg_id and size; returns the
// members (creator included) ascending without repeats.
absl::StatusOr<std::vector<uint64_t>> GroupMembersToCreate(
    uint64_t creator, const std::string& title,
    absl::Span<const uint64_t> members, uint32_t max_members,
    const std::string& client_msg_id);

// GetOrCreateDirect's arguments: two different users and client_msg_id.
absl::Status ValidateDirectPair(uint64_t a, uint64_t b,
                                const std::string& client_msg_id);

// AddMembers/RemoveMember/Leave/SetRole: the conversation exists, `actor` is
// an active member, and it is a group.
absl::Status CheckGroupChange(const ConversationRecord* conversation,
                              const MemberRecord* actor);
// Owner or admin.
absl::Status CheckCanAddMembers(const MemberRecord& actor);
// The actor's rights, then the target's membership, then admins vs. the
// owner and other admins.
absl::Status CheckCanRemoveMember(const MemberRecord& actor,
                                  const MemberRecord* target);
// The actor owns the group, the target is an active member and not the
// owner.
absl::Status CheckCanSetRole(const MemberRecord& actor,
                             const MemberRecord* target);
// FAILED_PRECONDITION with `what` when member_count exceeds max_members
// (0 = no limit).
absl::Status CheckGroupSize(size_t member_count, uint32_t max_members,
                            absl::string_view what);

// Who owns the group after its owner left: the earliest-joined admin, else
// the earliest-joined member (lowest joined_seq, then user id); nullopt if
// nobody is left. `remaining` are the active members without the owner.
std::optional<uint64_t> PickNextOwner(absl::Span<const MemberRecord> remaining);

}  // namespace im::storage

#endif  // IM_STORAGE_MEMBERSHIP_RULES_H_
