#include "services/message/log_writer.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/common/proto_time.h"
#include "spdlog/spdlog.h"

namespace im::message {
namespace {

int64_t MicrosOf(const ::google::protobuf::Timestamp& t) {
  return absl::ToUnixMicros(FromProtoTime(t));
}

bool IsRetryable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsAborted(status);
}

// An id for a member change no client will choose by accident; the same on
// every retry of that change.
std::string MemberChangeClientMsgId() {
  absl::BitGen gen;
  return absl::StrFormat("mc:%016x%016x", absl::Uniform<uint64_t>(gen),
                         absl::Uniform<uint64_t>(gen));
}

}  // namespace

absl::StatusOr<std::unique_ptr<LogWriter>> LogWriter::Create(
    const Options& options, storage::ConversationLog* log,
    MembershipCache* members, EntryPublisher* publisher, Clock clock) {
  if (options.shards < 1) {
    return absl::InvalidArgumentError("log writer needs at least one shard");
  }
  if (options.max_batch < 1) {
    return absl::InvalidArgumentError("max_batch must be at least 1");
  }
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError("max_attempts must be at least 1");
  }
  return std::unique_ptr<LogWriter>(
      new LogWriter(options, log, members, publisher, std::move(clock)));
}

LogWriter::LogWriter(const Options& options, storage::ConversationLog* log,
                     MembershipCache* members, EntryPublisher* publisher,
                     Clock clock)
    : options_(options),
      metrics_(options.metrics != nullptr ? *options.metrics
                                          : MessageMetrics::Unexported()),
      log_(log),
      members_(members),
      publisher_(publisher),
      clock_(std::move(clock)) {
  shards_.reserve(options_.shards);
  for (int i = 0; i < options_.shards; ++i) {
    shards_.push_back(std::make_unique<Shard>());
  }
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    s->thread = std::thread([this, s] { RunShard(*s); });
  }
}

LogWriter::~LogWriter() { Stop(); }

void LogWriter::Stop() {
  {
    absl::MutexLock lock(&stop_mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  for (auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    shard->stopping = true;
  }
  for (auto& shard : shards_) shard->thread.join();
}

LogWriter::Stats LogWriter::stats() const {
  Stats stats;
  stats.batches = batches_.load();
  stats.appended = appended_.load();
  stats.retries = retries_.load();
  stats.commit_micros = commit_micros_.load();
  return stats;
}

size_t LogWriter::queued() const {
  size_t total = 0;
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    total += shard->queue.size();
  }
  return total;
}

LogWriter::Shard& LogWriter::ShardOf(uint64_t conversation_id) {
  return *shards_[conversation_id % shards_.size()];
}

absl::Status LogWriter::Enqueue(uint64_t conversation_id, Item& item) {
  Shard& shard = ShardOf(conversation_id);
  absl::MutexLock lock(&shard.mu);
  if (shard.stopping) {
    return absl::UnavailableError("server is shutting down; retry elsewhere");
  }
  if (shard.queue.size() >= options_.max_queued_per_shard) {
    return absl::ResourceExhaustedError("message writer is overloaded; retry");
  }
  shard.queue.push_back(std::move(item));
  return absl::OkStatus();
}

void LogWriter::Append(storage::AppendRequest request, SendDone done) {
  const uint64_t conversation_id = request.conversation_id;
  Item item = AppendItem{std::move(request), std::move(done), absl::Now()};
  if (absl::Status status = Enqueue(conversation_id, item); !status.ok()) {
    std::move(std::get<AppendItem>(item).done)(status);
  }
}

void LogWriter::ChangeMembers(uint64_t conversation_id, MemberChangeOp op,
                              MemberChangeDone done) {
  Item item = MemberChangeItem{conversation_id, std::move(op), std::move(done)};
  if (absl::Status status = Enqueue(conversation_id, item); !status.ok()) {
    std::move(std::get<MemberChangeItem>(item).done)(status);
  }
}

void LogWriter::PublishCreated(storage::MemberChange change,
                               absl::AnyInvocable<void(absl::Status) &&> done) {
  const uint64_t conversation_id = change.conversation.id;
  Item item = CreatedItem{std::move(change), std::move(done)};
  if (absl::Status status = Enqueue(conversation_id, item); !status.ok()) {
    std::move(std::get<CreatedItem>(item).done)(status);
  }
}

absl::Time LogWriter::NextCommitTime(Shard& shard) {
  absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(clock_()));
  if (now <= shard.last_commit_time) {
    now = shard.last_commit_time + absl::Microseconds(1);
  }
  shard.last_commit_time = now;
  return now;
}

template <typename T>
absl::StatusOr<T> LogWriter::WithRetries(
    const std::function<absl::StatusOr<T>()>& attempt) {
  absl::Duration backoff = options_.first_backoff;
  absl::StatusOr<T> result = attempt();
  for (int tries = 1; tries < options_.max_attempts && !result.ok() &&
                      IsRetryable(result.status());
       ++tries) {
    spdlog::warn("log write failed ({}), retrying in {}",
                 result.status().ToString(), absl::FormatDuration(backoff));
    retries_.fetch_add(1);
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
    result = attempt();
  }
  if (!result.ok() && IsRetryable(result.status())) {
    return absl::UnavailableError(absl::StrCat(
        "could not store the change (", result.status().message(),
        "); retry with the same client_msg_id"));
  }
  return result;
}

void LogWriter::RunShard(Shard& shard) {
  for (;;) {
    std::vector<AppendItem> appends;
    std::optional<Item> single;
    {
      absl::MutexLock lock(&shard.mu);
      shard.mu.Await(absl::Condition(
          +[](Shard* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
            return s->stopping || !s->queue.empty();
          },
          &shard));
      if (shard.queue.empty()) return;  // stopping and drained
      // A run of appends becomes one batch; anything else runs on its own,
      // so queue order is commit order.
      while (!shard.queue.empty() && appends.size() < options_.max_batch &&
             std::holds_alternative<AppendItem>(shard.queue.front())) {
        appends.push_back(std::get<AppendItem>(std::move(shard.queue.front())));
        shard.queue.pop_front();
      }
      if (appends.empty()) {
        single = std::move(shard.queue.front());
        shard.queue.pop_front();
      }
    }
    if (!appends.empty()) {
      CommitAppends(shard, std::move(appends));
    } else if (auto* change = std::get_if<MemberChangeItem>(&*single)) {
      RunMemberChange(shard, std::move(*change));
    } else {
      auto& created = std::get<CreatedItem>(*single);
      members_->ApplyChange(created.change);
      if (created.change.entry.has_value()) {
        Publish(std::move(*created.change.entry), {});
      }
      std::move(created.done)(absl::OkStatus());
    }
  }
}

void LogWriter::CommitAppends(Shard& shard, std::vector<AppendItem> items) {
  std::vector<storage::AppendRequest> batch;
  batch.reserve(items.size());
  for (AppendItem& item : items) batch.push_back(std::move(item.request));
  const absl::Time now = NextCommitTime(shard);
  const int64_t now_micros = absl::ToUnixMicros(now);

  const absl::Time started = absl::Now();
  absl::StatusOr<std::vector<storage::AppendOutcome>> outcomes =
      WithRetries<std::vector<storage::AppendOutcome>>(
          [&] { return log_->AppendMessages(batch, now); });
  const absl::Time committed = absl::Now();
  commit_micros_.fetch_add(absl::ToInt64Microseconds(committed - started));
  if (outcomes.ok()) {
    batches_.fetch_add(1);
    appended_.fetch_add(batch.size());
    metrics_.BatchCommitted(batch.size());
  }
  if (outcomes.ok() && outcomes->size() != items.size()) {
    outcomes = absl::InternalError("log returned a wrong number of outcomes");
  }
  if (!outcomes.ok()) {
    for (AppendItem& item : items) std::move(item.done)(outcomes.status());
    return;
  }

  // An outcome reported as a duplicate although its sent_at is this
  // commit's time was stored by an earlier try of this very batch whose
  // commit reply was lost: it is new to everyone, so it is acknowledged as
  // not duplicate and published. The first request naming a (conversation,
  // seq) stored now owns it; later ones in the batch are duplicates.
  absl::flat_hash_set<std::pair<uint64_t, uint64_t>> stored_now;
  std::vector<size_t> to_publish;
  for (size_t i = 0; i < items.size(); ++i) {
    storage::AppendOutcome& outcome = (*outcomes)[i];
    if (!outcome.status.ok()) {
      std::move(items[i].done)(outcome.status);
      continue;
    }
    const bool new_now =
        MicrosOf(outcome.entry.sent_at()) == now_micros &&
        stored_now
            .insert({outcome.entry.conversation_id(), outcome.entry.seq()})
            .second;
    if (new_now) to_publish.push_back(i);
    metrics_.SendCommitted(committed - items[i].enqueued_at);
    SendResult result;
    result.seq = outcome.entry.seq();
    result.sent_at = outcome.entry.sent_at();
    result.duplicate = !new_now;
    std::move(items[i].done)(std::move(result));
  }
  for (size_t i : to_publish) Publish(std::move((*outcomes)[i].entry), {});
}

void LogWriter::RunMemberChange(Shard& shard, MemberChangeItem item) {
  const std::string client_msg_id = MemberChangeClientMsgId();
  const absl::Time now = NextCommitTime(shard);
  absl::StatusOr<storage::MemberChange> change =
      WithRetries<storage::MemberChange>(
          [&] { return item.op(*log_, client_msg_id, now); });
  if (change.ok() && change->entry.has_value() &&
      MicrosOf(change->entry->sent_at()) == absl::ToUnixMicros(now)) {
    members_->ApplyChange(*change);
    // The subject of a removal or leave sees the entry that removes them.
    std::vector<uint64_t> also_to;
    const auto& event = change->entry->member_event();
    if (event.kind() == ::im::message::v1::MemberEvent::KIND_REMOVED ||
        event.kind() == ::im::message::v1::MemberEvent::KIND_LEFT) {
      also_to.assign(event.user_ids().begin(), event.user_ids().end());
      if (event.kind() == ::im::message::v1::MemberEvent::KIND_LEFT) {
        also_to.push_back(change->entry->sender_id());
      }
    }
    Publish(*change->entry, also_to);
  }
  std::move(item.done)(std::move(change));
}

void LogWriter::Publish(storage::Entry entry,
                        absl::Span<const uint64_t> also_to) {
  // On this shard's thread, so the members cannot change underneath.
  absl::StatusOr<MembersPtr> members =
      members_->GetBlocking(entry.conversation_id());
  if (!members.ok()) {
    // The entry is committed; live streams fetch it from the log when the
    // next entry of the conversation reaches them.
    spdlog::warn("not publishing conversation {} seq {}: {}",
                 entry.conversation_id(), entry.seq(),
                 members.status().ToString());
    return;
  }
  publisher_->PublishEntry(std::move(entry), **members, also_to);
}

}  // namespace im::message
