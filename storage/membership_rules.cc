#include "storage/membership_rules.h"

#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "storage/column_limits.h"

namespace im::storage {

absl::Status ConversationNotFoundError() {
  return absl::NotFoundError("conversation not found");
}

absl::Status ValidateMemberChangeClientMsgId(absl::string_view requested) {
  if (!requested.empty() && !IsValidClientMsgId(requested)) {
    return absl::InvalidArgumentError(
        "client_msg_id must be 1-64 bytes of [A-Za-z0-9._:-]");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MemberChangeClientMsgId(absl::string_view requested,
                                                    uint64_t seq) {
  if (auto s = ValidateMemberChangeClientMsgId(requested); !s.ok()) return s;
  if (!requested.empty()) return std::string(requested);
  // '~' is outside the client alphabet, and seqs are unique per
  // conversation.
  return absl::StrCat("~", seq);
}

absl::StatusOr<std::vector<uint64_t>> GroupMembersToCreate(
    uint64_t creator, const std::string& title,
    absl::Span<const uint64_t> members, uint32_t max_members,
    const std::string& client_msg_id) {
  if (auto s = ValidateTitle(title); !s.ok()) return s;
  if (auto s = ValidateMemberChangeClientMsgId(client_msg_id); !s.ok()) {
    return s;
  }
  std::set<uint64_t> unique(members.begin(), members.end());
  unique.insert(creator);
  if (auto s = CheckGroupSize(unique.size(), max_members, "group too large");
      !s.ok()) {
    return s;
  }
  return std::vector<uint64_t>(unique.begin(), unique.end());
}

absl::Status ValidateDirectPair(uint64_t a, uint64_t b,
                                const std::string& client_msg_id) {
  if (a == b) {
    return absl::InvalidArgumentError(
        "a direct conversation needs two different users");
  }
  return ValidateMemberChangeClientMsgId(client_msg_id);
}

absl::Status CheckGroupChange(const ConversationRecord* conversation,
                              const MemberRecord* actor) {
  if (conversation == nullptr || actor == nullptr || !actor->active()) {
    return ConversationNotFoundError();
  }
  if (conversation->kind != ConversationKind::CONVERSATION_KIND_GROUP) {
    return absl::FailedPreconditionError(
        "direct conversations have fixed members");
  }
  return absl::OkStatus();
}

absl::Status CheckCanAddMembers(const MemberRecord& actor) {
  if (actor.role != MemberRole::MEMBER_ROLE_OWNER &&
      actor.role != MemberRole::MEMBER_ROLE_ADMIN) {
    return absl::PermissionDeniedError("only the owner or an admin may add");
  }
  return absl::OkStatus();
}

absl::Status ValidateNewRole(MemberRole role) {
  if (role != MemberRole::MEMBER_ROLE_ADMIN &&
      role != MemberRole::MEMBER_ROLE_MEMBER) {
    return absl::InvalidArgumentError("role must be admin or member");
  }
  return absl::OkStatus();
}

absl::Status CheckNotSelfRemoval(uint64_t actor, uint64_t user) {
  if (actor == user) {
    return absl::FailedPreconditionError("cannot remove oneself; leave");
  }
  return absl::OkStatus();
}

absl::Status CheckCanRemoveMember(const MemberRecord& actor,
                                  const MemberRecord* target) {
  if (actor.role != MemberRole::MEMBER_ROLE_OWNER &&
      actor.role != MemberRole::MEMBER_ROLE_ADMIN) {
    return absl::PermissionDeniedError(
        "only the owner or an admin may remove members");
  }
  if (target == nullptr || !target->active()) {
    return absl::NotFoundError("user is not a member");
  }
  if (actor.role == MemberRole::MEMBER_ROLE_ADMIN &&
      target->role != MemberRole::MEMBER_ROLE_MEMBER) {
    return absl::PermissionDeniedError(
        "admins cannot remove the owner or other admins");
  }
  return absl::OkStatus();
}

absl::Status CheckCanSetRole(const MemberRecord& actor,
                             const MemberRecord* target) {
  if (actor.role != MemberRole::MEMBER_ROLE_OWNER) {
    return absl::PermissionDeniedError("only the owner may change roles");
  }
  if (target == nullptr || !target->active()) {
    return absl::NotFoundError("user is not a member");
  }
  if (target->role == MemberRole::MEMBER_ROLE_OWNER) {
    return absl::FailedPreconditionError("the owner's role cannot change");
  }
  return absl::OkStatus();
}

absl::Status CheckGroupSize(size_t member_count, uint32_t max_members,
                            absl::string_view what) {
  if (max_members != 0 && member_count > max_members) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " (limit ", max_members, " members)"));
  }
  return absl::OkStatus();
}

std::optional<uint64_t> PickNextOwner(absl::Span<const MemberRecord> remaining) {
  const MemberRecord* best = nullptr;
  auto rank = [](const MemberRecord& m) {
    return std::make_tuple(m.role == MemberRole::MEMBER_ROLE_ADMIN ? 0 : 1,
                           m.joined_seq, m.user_id);
  };
  for (const MemberRecord& m : remaining) {
    if (!m.active()) continue;
    if (best == nullptr || rank(m) < rank(*best)) best = &m;
  }
  if (best == nullptr) return std::nullopt;
  return best->user_id;
}

}  // namespace im::storage
