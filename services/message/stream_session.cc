#include "services/message/stream_session.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace im::message {
namespace {

using ::im::message::v1::MemberEvent;
using ::im::message::v1::ServerFrame;

constexpr uint32_t kMembershipPageSize = 500;

const FramePtr& ReadyFrame() {
  static const FramePtr* const frame = [] {
    ServerFrame ready;
    ready.mutable_ready();
    return new FramePtr(MakeFrame(std::move(ready)));
  }();
  return *frame;
}

bool Lists(const MemberEvent& event, uint64_t user_id) {
  return std::find(event.user_ids().begin(), event.user_ids().end(),
                   user_id) != event.user_ids().end();
}

}  // namespace

StreamSession::StreamSession(const Options& options, const Identity& identity,
                             storage::ConversationReader* reader,
                             WorkerPool* pool, SessionTransport* transport)
    : options_(options),
      metrics_(options.metrics != nullptr ? *options.metrics
                                          : MessageMetrics::Unexported()),
      identity_(identity),
      reader_(reader),
      pool_(pool),
      transport_(transport) {}

// ---------------------------------------------------------------- start ----

void StreamSession::Start(const ::im::message::v1::Resume& resume) {
  {
    absl::MutexLock lock(&mu_);
    if (started_ || closing_) return;
    started_ = true;
  }
  std::shared_ptr<StreamSession> self = shared_from_this();
  absl::Status submitted =
      pool_->Submit([self, resume] { self->LoadMemberships(resume); });
  if (!submitted.ok()) {
    Close(absl::UnavailableError("server is busy; reconnect later"));
  }
}

void StreamSession::LoadMemberships(::im::message::v1::Resume resume) {
  std::vector<storage::MembershipView> all;
  uint64_t after = 0;
  for (;;) {
    absl::StatusOr<std::vector<storage::MembershipView>> page =
        reader_->ListMemberships(identity_.user_id, after, kMembershipPageSize,
                                 /*include_left=*/true);
    if (!page.ok()) {
      OnMembershipsLoaded(resume, page.status());
      return;
    }
    const size_t count = page->size();
    for (storage::MembershipView& view : *page) all.push_back(std::move(view));
    if (count < kMembershipPageSize) break;
    after = all.back().conversation.id;
  }
  OnMembershipsLoaded(resume, std::move(all));
}

void StreamSession::OnMembershipsLoaded(
    const ::im::message::v1::Resume& resume,
    absl::StatusOr<std::vector<storage::MembershipView>> memberships) {
  TransportAction action;
  {
    absl::MutexLock lock(&mu_);
    if (!closing_ && !detached_) {
      if (!memberships.ok()) {
        CloseLocked(absl::UnavailableError(
            absl::StrCat("could not load conversations (",
                         memberships.status().message(), "); reconnect")));
      } else {
        absl::flat_hash_map<uint64_t, bool> listed;
        for (const storage::MembershipView& view : *memberships) {
          listed[view.conversation.id] = true;
          PositionFromMembershipLocked(resume, view);
        }
        for (auto& [id, c] : conversations_) {
          if (!listed.contains(id)) PositionJoinedLaterLocked(id, c);
        }
        phase_ = Phase::kReplaying;
        MaybeReadyLocked();
        ProcessFetchQueueLocked();
      }
    }
    action = NextTransportActionLocked();
  }
  Perform(std::move(action));
}

void StreamSession::PositionJoinedLaterLocked(uint64_t conversation_id,
                                              Conversation& c) {
  if (c.positioned || c.needs_joined_seq) return;
  auto first = c.held.begin();
  if (first != c.held.end() && first->first == c.first_live &&
      AddsMe(first->second->frame().entry())) {
    c.positioned = true;
    c.delivered = first->first - 1;
  } else {
    c.needs_joined_seq = true;
  }
  QueueFetchLocked(conversation_id, c);
}

void StreamSession::PositionFromMembershipLocked(
    const ::im::message::v1::Resume& resume,
    const storage::MembershipView& view) {
  const uint64_t id = view.conversation.id;
  const uint64_t last = view.conversation.last_seq;
  const uint64_t joined_base =
      view.member.joined_seq > 0 ? view.member.joined_seq - 1 : 0;
  auto cursor = resume.cursors().find(id);
  const bool has_cursor = cursor != resume.cursors().end();
  auto existing = conversations_.find(id);
  const bool seen_live = existing != conversations_.end();

  uint64_t upper = kNoEnd;
  uint64_t base;
  if (!view.member.active()) {
    upper = *view.member.left_seq;
    if (has_cursor && cursor->second < upper) {
      base = cursor->second;
    } else if (seen_live && existing->second.first_live <= upper) {
      // Removed after this stream opened: it still sees the removal.
      base = std::min(last, existing->second.first_live - 1);
    } else {
      if (seen_live) {
        DropHeldLocked(existing->second);
        conversations_.erase(existing);
      }
      return;
    }
  } else if (has_cursor) {
    base = std::min(cursor->second, last);
  } else if (resume.replay_unlisted()) {
    base = joined_base;
  } else if (!seen_live) {
    live_from_[id] = last;  // positioned when its first entry arrives
    return;
  } else {
    base = std::min(last, existing->second.first_live - 1);
  }
  base = std::max(base, joined_base);

  Conversation& c = conversations_[id];
  const uint64_t target = std::min(std::max(last, c.known_max), upper);
  base = std::min(base, target);
  if (target - base > options_.max_replay_entries) {
    ::im::message::v1::ReplayTruncated truncated;
    truncated.set_conversation_id(id);
    truncated.set_from_seq(target - options_.max_replay_entries + 1);
    truncated.set_skipped_from_seq(base + 1);
    base = truncated.from_seq() - 1;
    c.truncated = std::move(truncated);
  }
  c.positioned = true;
  c.delivered = base;
  c.last_visible = upper;
  c.known_max = target;
  for (auto it = c.held.begin(); it != c.held.end();) {
    if (it->first <= base || it->first > upper) {
      it = c.held.erase(it);
      --held_count_;
    } else {
      ++it;
    }
  }
  if (base < target) {
    c.initial = true;
    c.initial_target = target;
    ++initial_remaining_;
  }
  if (base < target || !c.held.empty() || c.truncated.has_value()) {
    QueueFetchLocked(id, c);
  }
}

// ----------------------------------------------------------------- live ----

void StreamSession::OnEntry(const FramePtr& frame) {
  TransportAction action;
  {
    absl::MutexLock lock(&mu_);
    if (!AcceptingLocked()) return;
    OnEntryLocked(frame);
    ProcessFetchQueueLocked();
    action = NextTransportActionLocked();
  }
  Perform(std::move(action));
}

bool StreamSession::AddsMe(const storage::Entry& entry) const {
  if (!entry.has_member_event()) return false;
  const MemberEvent& event = entry.member_event();
  return (event.kind() == MemberEvent::KIND_CREATED ||
          event.kind() == MemberEvent::KIND_ADDED) &&
         Lists(event, identity_.user_id);
}

bool StreamSession::RemovesMe(const storage::Entry& entry) const {
  if (!entry.has_member_event()) return false;
  const MemberEvent& event = entry.member_event();
  if (event.kind() == MemberEvent::KIND_REMOVED) {
    return Lists(event, identity_.user_id);
  }
  if (event.kind() == MemberEvent::KIND_LEFT) {
    return entry.sender_id() == identity_.user_id ||
           Lists(event, identity_.user_id);
  }
  return false;
}

void StreamSession::OnEntryLocked(const FramePtr& frame) {
  const storage::Entry& entry = frame->frame().entry();
  const uint64_t id = entry.conversation_id();
  const uint64_t seq = entry.seq();
  if (seq == 0) return;

  if (phase_ == Phase::kLoading) {
    Conversation& c = conversations_[id];
    c.first_live = std::min(c.first_live, seq);
    c.known_max = std::max(c.known_max, seq);
    HoldLocked(c, seq, frame);
    return;
  }

  auto it = conversations_.find(id);
  if (it == conversations_.end()) {
    Conversation& c = conversations_[id];
    c.first_live = seq;
    c.known_max = seq;
    if (auto from = live_from_.find(id); from != live_from_.end()) {
      c.positioned = true;
      c.delivered = std::min(from->second, seq - 1);
      live_from_.erase(from);
    } else if (AddsMe(entry)) {
      c.positioned = true;
      c.delivered = seq - 1;
    } else {
      c.needs_joined_seq = true;
      HoldLocked(c, seq, frame);
      QueueFetchLocked(id, c);
      return;
    }
    it = conversations_.find(id);
  }
  Conversation& c = it->second;
  if (c.closed) {
    if (seq <= c.delivered || !AddsMe(entry)) return;
    // Added back: a new membership, seen from the entry that adds.
    DropHeldLocked(c);
    c.closed = false;
    c.delivered = seq - 1;
    c.known_max = seq;
    c.last_visible = kNoEnd;
  }
  if (!c.positioned) {
    c.known_max = std::max(c.known_max, seq);
    HoldLocked(c, seq, frame);
    return;
  }
  if (seq <= c.delivered || seq > c.last_visible) return;
  c.known_max = std::max(c.known_max, seq);
  if (seq == c.delivered + 1 && !c.queued_for_fetch && c.held.empty()) {
    DeliverLocked(c, frame);
    return;
  }
  HoldLocked(c, seq, frame);
  QueueFetchLocked(id, c);
}

void StreamSession::OnLogPosition(uint64_t conversation_id, uint64_t last_seq,
                                  const storage::MemberRecord* member) {
  TransportAction action;
  {
    absl::MutexLock lock(&mu_);
    if (!AcceptingLocked() || last_seq == 0) return;
    OnLogPositionLocked(conversation_id, last_seq, member);
    ProcessFetchQueueLocked();
    action = NextTransportActionLocked();
  }
  Perform(std::move(action));
}

void StreamSession::OnLogPositionLocked(uint64_t conversation_id,
                                        uint64_t last_seq,
                                        const storage::MemberRecord* member) {
  if (phase_ == Phase::kLoading) {
    // The memberships being loaded may predate this read: positioning
    // replays up to the larger of the two.
    Conversation& c = conversations_[conversation_id];
    c.known_max = std::max(c.known_max, last_seq);
    return;
  }
  const bool active = member != nullptr && member->active();
  auto it = conversations_.find(conversation_id);
  if (it == conversations_.end()) {
    uint64_t base;
    if (auto from = live_from_.find(conversation_id); from != live_from_.end()) {
      base = from->second;
      live_from_.erase(from);
    } else if (active) {
      // Joined since the stream started; the entry adding the user is
      // delivered too.
      base = member->joined_seq > 0 ? member->joined_seq - 1 : 0;
    } else {
      return;
    }
    Conversation& c = conversations_[conversation_id];
    c.positioned = true;
    c.delivered = base;
    c.known_max = std::max(base, last_seq);
    if (c.known_max > c.delivered) QueueFetchLocked(conversation_id, c);
    return;
  }
  Conversation& c = it->second;
  if (c.closed) {
    if (!active || member->joined_seq <= c.delivered) return;
    // Added back since the entry that removed the user.
    DropHeldLocked(c);
    c.closed = false;
    c.delivered = member->joined_seq - 1;
    c.last_visible = kNoEnd;
    c.known_max = std::max(c.delivered, last_seq);
    if (c.known_max > c.delivered) QueueFetchLocked(conversation_id, c);
    return;
  }
  if (member != nullptr && member->left_seq.has_value()) {
    c.last_visible = std::min(c.last_visible, *member->left_seq);
  }
  if (!c.positioned) {
    // Its position is being looked up; the fetch then reads up to here.
    c.known_max = std::max(c.known_max, last_seq);
    return;
  }
  c.known_max = std::max(c.known_max, std::min(last_seq, c.last_visible));
  if (c.known_max > c.delivered) QueueFetchLocked(conversation_id, c);
}

void StreamSession::OnEphemeral(const FramePtr& frame) {
  TransportAction action;
  {
    absl::MutexLock lock(&mu_);
    if (!AcceptingLocked() || phase_ != Phase::kLive) return;
    EnqueueLocked(frame);
    action = NextTransportActionLocked();
  }
  Perform(std::move(action));
}

void StreamSession::EnqueueReply(FramePtr frame) {
  TransportAction action;
  {
    absl::MutexLock lock(&mu_);
    if (closing_ || detached_) return;
    EnqueueLocked(std::move(frame));
    action = NextTransportActionLocked();
  }
  Perform(std::move(action));
}

void StreamSession::BeginRequest() {
  absl::MutexLock lock(&mu_);
  ++open_requests_;
}

void StreamSession::EndRequest() {
  TransportAction action;
  {
    absl::MutexLock lock(&mu_);
    --open_requests_;
    action = NextTransportActionLocked();
  }
  Perform(std::move(action));
}

// ---------------------------------------------------------------- queue ----

void StreamSession::HoldLocked(Conversation& c, uint64_t seq,
                               const FramePtr& frame) {
  if (c.positioned && seq <= c.delivered) return;
  // Beyond the bound the entry is read from the log instead.
  if (held_count_ >= options_.max_held_live_entries) return;
  if (c.held.emplace(seq, frame).second) ++held_count_;
}

void StreamSession::DropHeldLocked(Conversation& c) {
  held_count_ -= c.held.size();
  c.held.clear();
}

bool StreamSession::DeliverLocked(Conversation& c, const FramePtr& frame) {
  const storage::Entry& entry = frame->frame().entry();
  if (!EnqueueLocked(frame)) return false;
  c.delivered = entry.seq();
  if (RemovesMe(entry) || c.delivered >= c.last_visible) {
    c.closed = true;
    c.known_max = c.delivered;
    DropHeldLocked(c);
  }
  return true;
}

bool StreamSession::EnqueueLocked(FramePtr frame) {
  const size_t bytes = frame->bytes();
  if (queued_frames_ + 1 > options_.max_queued_frames ||
      queued_bytes_ + bytes > options_.max_queued_bytes) {
    if (options_.hold_frames) {
      NoRoomLocked();
    } else {
      metrics_.StreamCutForOverflow();
      CloseLocked(absl::ResourceExhaustedError(
          "the client reads too slowly: stream closed; reconnect and resume "
          "from your cursors"));
    }
    return false;
  }
  queue_.push_back(std::move(frame));
  ++queued_frames_;
  queued_bytes_ += bytes;
  peak_queued_bytes_ = std::max(peak_queued_bytes_, queued_bytes_);
  if (options_.hold_frames) transport_->OnFramesQueued();
  return true;
}

void StreamSession::NoRoomLocked() {
  if (!options_.hold_frames || full_) return;
  full_ = true;
  transport_->OnFramesQueued();
}

size_t StreamSession::ReplayFrameCapLocked() const {
  // A stream keeps half its queue for live traffic while catching up.
  return options_.hold_frames ? options_.max_queued_frames
                              : std::max<size_t>(1, options_.max_queued_frames / 2);
}

bool StreamSession::ReplayRoomLocked(size_t bytes) const {
  const size_t byte_cap = options_.hold_frames ? options_.max_queued_bytes
                                               : options_.max_queued_bytes / 2;
  return queued_frames_ + 1 <= ReplayFrameCapLocked() &&
         queued_bytes_ + bytes <= byte_cap;
}

// ---------------------------------------------------------------- fetch ----

void StreamSession::QueueFetchLocked(uint64_t conversation_id,
                                     Conversation& c) {
  if (c.queued_for_fetch) return;
  c.queued_for_fetch = true;
  fetch_queue_.push_back(conversation_id);
}

void StreamSession::DrainHeldLocked(Conversation& c) {
  while (!c.closed && !c.held.empty() && !closing_) {
    auto it = c.held.begin();
    if (it->first <= c.delivered) {
      c.held.erase(it);
      --held_count_;
      continue;
    }
    if (it->first != c.delivered + 1) break;
    if (!ReplayRoomLocked(it->second->bytes())) {
      NoRoomLocked();
      break;
    }
    FramePtr frame = std::move(it->second);
    c.held.erase(it);
    --held_count_;
    if (!DeliverLocked(c, frame)) break;
  }
}

void StreamSession::FinishInitialLocked(Conversation& c) {
  if (!c.initial || (!c.closed && c.delivered < c.initial_target)) return;
  c.initial = false;
  --initial_remaining_;
  MaybeReadyLocked();
}

void StreamSession::MaybeReadyLocked() {
  if (phase_ != Phase::kReplaying || initial_remaining_ > 0) return;
  phase_ = Phase::kLive;
  if (options_.hold_frames) {
    transport_->OnFramesQueued();
  } else {
    EnqueueLocked(ReadyFrame());
  }
}

void StreamSession::ProcessFetchQueueLocked() {
  while (!fetch_in_flight_ && !fetch_queue_.empty() && AcceptingLocked() &&
         phase_ != Phase::kLoading) {
    const uint64_t id = fetch_queue_.front();
    auto it = conversations_.find(id);
    if (it == conversations_.end()) {
      fetch_queue_.pop_front();
      continue;
    }
    Conversation& c = it->second;
    uint64_t after = c.delivered;
    uint64_t max_seq = c.known_max;
    if (!c.needs_joined_seq) {
      if (c.truncated.has_value()) {
        ServerFrame frame;
        *frame.mutable_replay_truncated() = *c.truncated;
        FramePtr shared = MakeFrame(std::move(frame));
        if (!ReplayRoomLocked(shared->bytes())) {
          NoRoomLocked();
          return;
        }
        if (!EnqueueLocked(std::move(shared))) return;
        c.truncated.reset();
      }
      DrainHeldLocked(c);
      if (closing_) return;
      FinishInitialLocked(c);
      if (c.closed || c.delivered >= c.known_max) {
        fetch_queue_.pop_front();
        c.queued_for_fetch = false;
        continue;
      }
      if (!c.held.empty() && c.held.begin()->first == c.delivered + 1) {
        return;  // waits for room
      }
      after = c.delivered;
      max_seq = c.held.empty() ? c.known_max : c.held.begin()->first - 1;
      max_seq = std::min(max_seq, c.last_visible);
    }
    const size_t cap = ReplayFrameCapLocked();
    if (queued_frames_ >= cap) {
      NoRoomLocked();
      return;  // the next page waits for room
    }
    const uint32_t limit = static_cast<uint32_t>(
        std::min<size_t>(options_.replay_page_size, cap - queued_frames_));
    fetch_in_flight_ = true;
    std::shared_ptr<StreamSession> self = shared_from_this();
    const bool needs_joined_seq = c.needs_joined_seq;
    absl::Status submitted =
        pool_->Submit([self, id, needs_joined_seq, after, max_seq, limit] {
          self->RunFetch(id, needs_joined_seq, after, max_seq, limit);
        });
    if (!submitted.ok()) {
      fetch_in_flight_ = false;
      CloseLocked(absl::UnavailableError("server is busy; reconnect later"));
    }
    return;
  }
}

void StreamSession::RunFetch(uint64_t conversation_id, bool needs_joined_seq,
                             uint64_t after_seq, uint64_t max_seq,
                             uint32_t limit) {
  Fetched fetched;
  fetched.conversation_id = conversation_id;
  if (needs_joined_seq) {
    absl::StatusOr<storage::MemberRecord> member =
        reader_->GetMember(conversation_id, identity_.user_id);
    if (!member.ok()) {
      fetched.status = member.status();
      OnFetched(std::move(fetched));
      return;
    }
    after_seq = member->joined_seq > 0 ? member->joined_seq - 1 : 0;
    if (member->left_seq.has_value()) {
      max_seq = std::min(max_seq, *member->left_seq);
    }
    fetched.member = std::move(*member);
  }
  if (max_seq > after_seq) {
    fetched.read_performed = true;
    absl::StatusOr<std::vector<storage::Entry>> entries =
        reader_->ReadAfter(conversation_id, after_seq, max_seq, limit);
    if (entries.ok()) {
      fetched.entries = std::move(*entries);
    } else {
      fetched.status = entries.status();
    }
  }
  OnFetched(std::move(fetched));
}

void StreamSession::OnFetched(Fetched fetched) {
  TransportAction action;
  {
    absl::MutexLock lock(&mu_);
    fetch_in_flight_ = false;
    auto it = conversations_.find(fetched.conversation_id);
    if (AcceptingLocked() && it != conversations_.end()) {
      Conversation& c = it->second;
      if (!fetched.status.ok() && absl::IsNotFound(fetched.status) &&
          c.needs_joined_seq) {
        // Not a member after all: nothing of it is delivered.
        DropHeldLocked(c);
        c.needs_joined_seq = false;
        c.positioned = true;
        c.closed = true;
        c.delivered = c.known_max;
      } else if (!fetched.status.ok()) {
        CloseLocked(absl::UnavailableError(
            absl::StrCat("could not read conversation ",
                         fetched.conversation_id, " (",
                         fetched.status.message(), "); reconnect and resume")));
      } else {
        if (fetched.member.has_value() && c.needs_joined_seq) {
          c.needs_joined_seq = false;
          c.positioned = true;
          c.delivered = fetched.member->joined_seq > 0
                            ? fetched.member->joined_seq - 1
                            : 0;
          if (fetched.member->left_seq.has_value()) {
            c.last_visible = *fetched.member->left_seq;
            c.known_max = std::min(c.known_max, c.last_visible);
            if (c.delivered >= c.last_visible) c.closed = true;
          }
        }
        bool progressed = false;
        bool out_of_room = false;
        for (storage::Entry& entry : fetched.entries) {
          if (c.closed) break;
          if (entry.seq() <= c.delivered) continue;
          if (entry.seq() != c.delivered + 1) break;
          ServerFrame frame;
          *frame.mutable_entry() = std::move(entry);
          FramePtr shared = MakeFrame(std::move(frame));
          if (!ReplayRoomLocked(shared->bytes())) {
            out_of_room = true;
            NoRoomLocked();
            break;
          }
          if (!DeliverLocked(c, shared)) break;
          progressed = true;
        }
        if (fetched.read_performed && !progressed && !out_of_room &&
            !c.closed && !closing_) {
          // The log lacks an entry that was published: never skip it.
          CloseLocked(absl::UnavailableError(absl::StrCat(
              "conversation ", fetched.conversation_id,
              " is not readable up to seq ", c.known_max,
              " yet; reconnect and resume")));
        }
        FinishInitialLocked(c);
        ProcessFetchQueueLocked();
      }
    }
    action = NextTransportActionLocked();
  }
  Perform(std::move(action));
}

// ------------------------------------------------------------ transport ----

void StreamSession::CountDeliveryLocked() {
  const absl::Time published_at = in_flight_->published_at();
  if (published_at == absl::InfinitePast()) {
    metrics_.EntryWritten();
  } else {
    metrics_.LiveEntryWritten(absl::Now() - published_at);
  }
}

void StreamSession::OnWriteDone(bool ok) {
  TransportAction action;
  {
    absl::MutexLock lock(&mu_);
    if (in_flight_ != nullptr) {
      if (ok && in_flight_->frame().has_entry()) CountDeliveryLocked();
      --queued_frames_;
      queued_bytes_ -= in_flight_->bytes();
      in_flight_.reset();
    }
    if (!ok) {
      CloseLocked(absl::CancelledError("the stream broke"));
    } else {
      ProcessFetchQueueLocked();
    }
    action = NextTransportActionLocked();
  }
  Perform(std::move(action));
}

bool StreamSession::AcceptingLocked() const {
  return !closing_ && !detached_ && !close_when_idle_;
}

void StreamSession::CloseLocked(const absl::Status& status) {
  if (closing_) return;
  closing_ = true;
  finish_status_ = status;
  for (const FramePtr& frame : queue_) {
    --queued_frames_;
    queued_bytes_ -= frame->bytes();
  }
  queue_.clear();
  for (auto& [id, c] : conversations_) DropHeldLocked(c);
  fetch_queue_.clear();
}

void StreamSession::Close(const absl::Status& status) {
  TransportAction action;
  {
    absl::MutexLock lock(&mu_);
    CloseLocked(status);
    action = NextTransportActionLocked();
  }
  Perform(std::move(action));
}

void StreamSession::CloseWhenIdle(const absl::Status& status) {
  TransportAction action;
  {
    absl::MutexLock lock(&mu_);
    if (options_.hold_frames) {
      CloseLocked(status);
    } else if (!close_when_idle_ && !closing_) {
      close_when_idle_ = true;
      idle_status_ = status;
    }
    action = NextTransportActionLocked();
  }
  Perform(std::move(action));
}

void StreamSession::Detach() {
  absl::MutexLock lock(&mu_);
  CloseLocked(absl::CancelledError("stream ended"));
  detached_ = true;
}

StreamSession::TransportAction StreamSession::NextTransportActionLocked() {
  TransportAction action;
  if (detached_ || finish_called_) return action;
  if (!closing_ && close_when_idle_ && open_requests_ == 0 && queue_.empty() &&
      in_flight_ == nullptr) {
    CloseLocked(idle_status_);
  }
  if (closing_) {
    if (in_flight_ == nullptr) {
      finish_called_ = true;
      action.finish = finish_status_;
    }
    return action;
  }
  if (options_.hold_frames) return action;
  if (in_flight_ == nullptr && !queue_.empty()) {
    in_flight_ = std::move(queue_.front());
    queue_.pop_front();
    action.write = in_flight_;
  }
  return action;
}

void StreamSession::Perform(TransportAction action) {
  if (action.write != nullptr) {
    transport_->StartWrite(std::move(action.write));
  } else if (action.finish.has_value()) {
    transport_->Finish(*action.finish);
  }
}

// ---------------------------------------------------------- inspection ----

absl::StatusOr<StreamSession::Collected> StreamSession::CollectAndClose(
    const absl::Status& status) {
  Collected collected;
  TransportAction action;
  {
    absl::MutexLock lock(&mu_);
    if (closing_) {
      return finish_status_.ok() ? absl::CancelledError("stream ended")
                                 : finish_status_;
    }
    collected.frames.assign(queue_.begin(), queue_.end());
    for (const auto& [id, c] : conversations_) {
      if (!c.positioned) {
        collected.more = true;
        continue;
      }
      collected.cursors[id] = c.delivered;
      if (!c.closed && c.delivered < c.known_max) collected.more = true;
    }
    for (const auto& [id, last] : live_from_) collected.cursors[id] = last;
    if (phase_ != Phase::kLive) collected.more = true;
    CloseLocked(status);
    action = NextTransportActionLocked();
  }
  Perform(std::move(action));
  return collected;
}

bool StreamSession::ready() const {
  absl::MutexLock lock(&mu_);
  return phase_ == Phase::kLive || full_;
}

size_t StreamSession::queued_frames() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

bool StreamSession::closed() const {
  absl::MutexLock lock(&mu_);
  return closing_;
}

size_t StreamSession::peak_queued_bytes() const {
  absl::MutexLock lock(&mu_);
  return peak_queued_bytes_;
}

}  // namespace im::message
