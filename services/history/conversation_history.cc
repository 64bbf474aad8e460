#include "services/history/conversation_history.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "services/common/conversation_proto.h"
#include "services/common/proto_time.h"
#include "services/history/page_token.h"
#include "storage/membership_rules.h"

namespace im::history {
namespace {

using ::im::storage::ConversationNotFoundError;

// `requested`, or `default_limit` for 0; INVALID_ARGUMENT above `max_limit`.
absl::StatusOr<uint32_t> ResolveLimit(uint32_t requested,
                                      uint32_t default_limit,
                                      uint32_t max_limit) {
  if (requested == 0) return default_limit;
  if (requested > max_limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit must be at most ", max_limit));
  }
  return requested;
}

uint64_t Unread(uint64_t last_seq, uint64_t read_seq) {
  return last_seq > read_seq ? last_seq - read_seq : 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ConversationHistory>>
ConversationHistory::Create(const ConversationHistoryOptions& options,
                            storage::ConversationReader* reader) {
  if (reader == nullptr) {
    return absl::InvalidArgumentError("ConversationHistory needs a reader");
  }
  const std::pair<uint32_t, uint32_t> limits[] = {
      {options.default_history_limit, options.max_history_limit},
      {options.default_list_limit, options.max_list_limit},
      {options.default_sync_limit, options.max_sync_limit},
  };
  for (const auto& [default_limit, max_limit] : limits) {
    if (default_limit == 0 || default_limit > max_limit) {
      return absl::InvalidArgumentError(
          "page limits: need 0 < default <= max");
    }
  }
  if (options.max_get_messages_seqs == 0 ||
      options.max_sync_rows_scanned == 0) {
    return absl::InvalidArgumentError(
        "max_get_messages_seqs and max_sync_rows_scanned must be positive");
  }
  return std::unique_ptr<ConversationHistory>(
      new ConversationHistory(options, reader));
}

absl::StatusOr<ConversationHistory::VisibleRange> ConversationHistory::Visible(
    uint64_t user_id, uint64_t conversation_id) const {
  // One read for membership and the conversation. Any NOT_FOUND becomes the
  // one shared error, so a missing conversation and a foreign one cannot be
  // told apart.
  absl::StatusOr<storage::MembershipView> view =
      reader_->GetMembershipView(user_id, conversation_id);
  if (absl::IsNotFound(view.status())) return ConversationNotFoundError();
  if (!view.ok()) return view.status();

  VisibleRange range;
  range.first = std::max<uint64_t>(view->member.joined_seq, 1);
  range.last = view->conversation.last_seq;
  if (view->member.left_seq.has_value()) {
    range.last = std::min(range.last, *view->member.left_seq);
  }
  return range;
}

absl::StatusOr<v1::GetHistoryResponse> ConversationHistory::GetHistory(
    uint64_t user_id, const v1::GetHistoryRequest& request) const {
  absl::StatusOr<uint32_t> limit =
      ResolveLimit(request.limit(), options_.default_history_limit,
                   options_.max_history_limit);
  if (!limit.ok()) return limit.status();
  const bool after = request.direction() == v1::DIRECTION_AFTER;
  if (!after && request.direction() != v1::DIRECTION_BEFORE &&
      request.direction() != v1::DIRECTION_UNSPECIFIED) {
    return absl::InvalidArgumentError("unknown direction");
  }
  absl::StatusOr<VisibleRange> range =
      Visible(user_id, request.conversation_id());
  if (!range.ok()) return range.status();

  v1::GetHistoryResponse response;
  response.set_last_seq(range->last);
  // One row beyond the page tells whether more exist.
  const uint32_t fetch = *limit + 1;
  std::vector<storage::Entry> entries;
  if (after) {
    const uint64_t start = std::max(request.anchor_seq(), range->first - 1);
    if (start >= range->last) return response;
    absl::StatusOr<std::vector<storage::Entry>> read = reader_->ReadAfter(
        request.conversation_id(), start, range->last, fetch);
    if (!read.ok()) return read.status();
    entries = *std::move(read);
    if (entries.size() > *limit) {
      entries.pop_back();
      response.set_has_more(true);
    }
  } else {
    const uint64_t end =
        request.anchor_seq() == 0 || request.anchor_seq() > range->last
            ? range->last + 1
            : request.anchor_seq();
    if (end <= range->first) return response;
    absl::StatusOr<std::vector<storage::Entry>> read = reader_->ReadBefore(
        request.conversation_id(), end, range->first, fetch);
    if (!read.ok()) return read.status();
    entries = *std::move(read);
    if (entries.size() > *limit) {
      entries.erase(entries.begin());
      response.set_has_more(true);
    }
  }
  response.mutable_entries()->Reserve(static_cast<int>(entries.size()));
  for (storage::Entry& entry : entries) {
    *response.add_entries() = std::move(entry);
  }
  return response;
}

absl::StatusOr<v1::GetMessagesResponse> ConversationHistory::GetMessages(
    uint64_t user_id, const v1::GetMessagesRequest& request) const {
  if (request.seqs_size() == 0 ||
      static_cast<uint32_t>(request.seqs_size()) >
          options_.max_get_messages_seqs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "seqs must list 1 to ", options_.max_get_messages_seqs, " seqs"));
  }
  absl::StatusOr<VisibleRange> range =
      Visible(user_id, request.conversation_id());
  if (!range.ok()) return range.status();

  std::vector<uint64_t> seqs;
  seqs.reserve(request.seqs_size());
  for (uint64_t seq : request.seqs()) {
    if (seq >= range->first && seq <= range->last) seqs.push_back(seq);
  }
  std::sort(seqs.begin(), seqs.end());
  seqs.erase(std::unique(seqs.begin(), seqs.end()), seqs.end());

  v1::GetMessagesResponse response;
  if (seqs.empty()) return response;
  absl::StatusOr<std::vector<storage::Entry>> entries =
      reader_->ReadSeqs(request.conversation_id(), seqs);
  if (!entries.ok()) return entries.status();
  for (storage::Entry& entry : *entries) {
    *response.add_entries() = std::move(entry);
  }
  return response;
}

absl::StatusOr<v1::ListConversationsResponse>
ConversationHistory::ListConversations(
    uint64_t user_id, const v1::ListConversationsRequest& request) const {
  absl::StatusOr<uint32_t> limit = ResolveLimit(
      request.limit(), options_.default_list_limit, options_.max_list_limit);
  if (!limit.ok()) return limit.status();
  std::optional<storage::ConversationPageCursor> after;
  if (!request.page_token().empty()) {
    absl::StatusOr<ConversationListPosition> position =
        DecodeConversationListToken(request.page_token());
    if (!position.ok()) return position.status();
    after = storage::ConversationPageCursor{position->last_activity_at,
                                            position->conversation_id};
  }
  absl::StatusOr<std::vector<storage::ConversationListRow>> rows =
      reader_->ListConversationsPage(user_id, after, *limit + 1);
  if (!rows.ok()) return rows.status();

  v1::ListConversationsResponse response;
  const bool more = rows->size() > *limit;
  if (more) rows->resize(*limit);
  for (storage::ConversationListRow& row : *rows) {
    const storage::MembershipView& view = row.view;
    v1::ConversationSummary* summary = response.add_conversations();
    *summary->mutable_conversation() =
        ConversationProto(view.conversation, user_id);
    if (row.last_entry.has_value()) {
      *summary->mutable_last_entry() = *std::move(row.last_entry);
    }
    summary->set_read_seq(view.read_seq);
    summary->set_unread_count(
        Unread(view.conversation.last_seq, view.read_seq));
    summary->set_my_role(view.member.role);
  }
  if (more) {
    const storage::ConversationRecord& last = rows->back().view.conversation;
    response.set_next_page_token(EncodeConversationListToken(
        ConversationListPosition{last.last_activity_at, last.id}));
  }
  return response;
}

absl::StatusOr<v1::SyncResponse> ConversationHistory::Sync(
    uint64_t user_id, const v1::SyncRequest& request) const {
  absl::StatusOr<uint32_t> limit = ResolveLimit(
      request.limit(), options_.default_sync_limit, options_.max_sync_limit);
  if (!limit.ok()) return limit.status();
  uint64_t after = 0;
  if (!request.page_token().empty()) {
    absl::StatusOr<uint64_t> decoded = DecodeSyncToken(request.page_token());
    if (!decoded.ok()) return decoded.status();
    after = *decoded;
  }

  // Membership rows are read in batches; each batch asks for one row more
  // than it examines, so the last page is known without an extra query.
  constexpr uint32_t kScanBatch = 250;
  v1::SyncResponse response;
  uint32_t scanned = 0;
  bool more = false;
  while (true) {
    const uint32_t want =
        std::min(kScanBatch, options_.max_sync_rows_scanned - scanned);
    absl::StatusOr<std::vector<storage::MembershipView>> rows =
        reader_->ListMemberships(user_id, after, want + 1,
                                 /*include_left=*/true);
    if (!rows.ok()) return rows.status();
    const size_t examine = std::min<size_t>(rows->size(), want);
    bool page_full = false;
    for (size_t i = 0; i < examine; ++i) {
      const storage::MembershipView& view = (*rows)[i];
      after = view.conversation.id;
      ++scanned;
      const auto cursor_it = request.cursors().find(view.conversation.id);
      const bool listed = cursor_it != request.cursors().end();
      const uint64_t cursor = listed ? cursor_it->second : 0;
      const bool removed = !view.member.active();
      const uint64_t last_seq =
          removed ? std::min(*view.member.left_seq, view.conversation.last_seq)
                  : view.conversation.last_seq;
      // Entries before joined_seq were never visible, so they are not new.
      const uint64_t seen =
          std::max(cursor, std::max<uint64_t>(view.member.joined_seq, 1) - 1);
      const uint64_t new_entries = last_seq > seen ? last_seq - seen : 0;
      // A removal matters only to a client that knows the conversation.
      if (removed ? !listed : new_entries == 0) continue;

      v1::ConversationChange* change = response.add_changes();
      *change->mutable_conversation() =
          ConversationProto(view.conversation, user_id);
      if (removed) {
        // As the caller last saw it: up to the entry that removed them.
        change->mutable_conversation()->set_last_seq(last_seq);
        if (view.member.left_at.has_value()) {
          SetProtoTime(*view.member.left_at,
                       change->mutable_conversation()->mutable_last_activity_at());
        }
        change->mutable_conversation()->set_member_count(0);
      }
      change->set_cursor(cursor);
      change->set_last_seq(last_seq);
      change->set_new_entries(new_entries);
      change->set_read_seq(view.read_seq);
      change->set_unread_count(Unread(last_seq, view.read_seq));
      change->set_removed(removed);
      if (static_cast<uint32_t>(response.changes_size()) == *limit) {
        page_full = true;
        more = i + 1 < rows->size();
        break;
      }
    }
    if (page_full) break;
    if (rows->size() <= want) break;  // every membership examined
    if (scanned >= options_.max_sync_rows_scanned) {
      more = true;
      break;
    }
  }
  if (more) response.set_next_page_token(EncodeSyncToken(after));
  return response;
}

}  // namespace im::history
