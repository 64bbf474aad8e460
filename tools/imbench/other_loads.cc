#include "tools/imbench/other_loads.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <ostream>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "im/presence/v1/presence.grpc.pb.h"
#include "services/common/authenticator.h"
#include "tools/imbench/latency_histogram.h"
#include "tools/imbench/proc_stats.h"
#include "tools/imbench/progress_ticker.h"

namespace im::imbench {

namespace message_v1 = ::im::message::v1;
namespace history_v1 = ::im::history::v1;
namespace presence_v1 = ::im::presence::v1;
using client::ChatEvent;
using client::ChatSession;
using client::ChatState;
using client::ConnectionChange;

namespace {

// Errors by kind, from many threads.
class ErrorCounts {
 public:
  void Add(const std::string& kind) {
    absl::MutexLock lock(&mu_);
    ++counts_[kind];
  }
  void AddTo(Report& report) {
    absl::MutexLock lock(&mu_);
    for (const auto& [kind, count] : counts_) report.AddError(kind, count);
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, uint64_t> counts_ ABSL_GUARDED_BY(mu_);
};

double Kib(uint64_t bytes) { return static_cast<double>(bytes) / 1024.0; }

}  // namespace

// ---------------------------------------------------------------- connect --

absl::Status RunConnect(Fleet& fleet, const ConnectOptions& options,
                        Report& report) {
  if (options.streams < 1 || options.streams_per_user < 1) {
    return absl::InvalidArgumentError("--streams and --streams_per_user must be positive");
  }
  const int users =
      (options.streams + options.streams_per_user - 1) / options.streams_per_user;
  if (absl::Status status = fleet.SignIn(users); !status.ok()) return status;

  struct Opened {
    absl::Time started;
    std::atomic<bool> live{false};
  };
  std::vector<std::unique_ptr<Opened>> opened;
  LatencyHistogram open_latency;
  std::atomic<int> live{0};
  std::atomic<int> ended{0};
  ErrorCounts errors;
  StopStreamsOnExit stop_streams(fleet);
  auto rss = [&]() -> uint64_t {
    if (options.server_pid == 0) return 0;
    absl::StatusOr<uint64_t> bytes = ReadRssBytes(options.server_pid);
    return bytes.ok() ? *bytes : 0;
  };
  const uint64_t server_before = rss();
  const uint64_t client_before = ReadRssBytes(getpid()).value_or(0);

  std::atomic<int> requested{0};
  ProgressTicker progress(options.progress, [&](absl::Duration elapsed) {
    return absl::StrFormat("t=%5.1fs opened %d live %d ended %d",
                           absl::ToDoubleSeconds(elapsed), requested.load(),
                           live.load(), ended.load());
  });
  const absl::Time ramp_start = absl::Now();
  for (int i = 0; i < options.streams; ++i, requested.fetch_add(1)) {
    const absl::Time due =
        ramp_start + absl::Seconds(i / std::max(1.0, options.open_rate));
    if (due > absl::Now()) absl::SleepFor(due - absl::Now());
    auto state = std::make_unique<Opened>();
    Opened* raw = state.get();
    raw->started = absl::Now();
    opened.push_back(std::move(state));
    ChatSession::Options stream_options;
    stream_options.replay_unlisted = false;
    absl::StatusOr<ChatSession*> chat = fleet.OpenStream(
        i / options.streams_per_user, stream_options,
        [raw, &open_latency, &live, &ended, &errors](ChatEvent event) {
          auto* change = std::get_if<ConnectionChange>(&event);
          if (change == nullptr) return;
          if (change->state == ChatState::kLive && !raw->live.exchange(true)) {
            open_latency.Record(absl::Now() - raw->started);
            live.fetch_add(1);
          } else if (change->state == ChatState::kDisconnected &&
                     !change->status.ok()) {
            ended.fetch_add(1);
            errors.Add("stream_end:" +
                       absl::StatusCodeToString(change->status.code()));
          }
        });
    if (!chat.ok()) return chat.status();
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (live.load() < options.streams && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  const absl::Duration ramp = absl::Now() - ramp_start;
  // Let allocations settle before reading memory.
  absl::SleepFor(absl::Seconds(2));
  const uint64_t server_live = rss();
  const uint64_t client_live = ReadRssBytes(getpid()).value_or(0);
  const int live_streams = live.load();
  const int ended_before_hold = ended.load();
  const absl::Time hold_end = absl::Now() + options.hold;
  if (hold_end > absl::Now()) absl::SleepFor(hold_end - absl::Now());
  const uint64_t server_end = rss();
  fleet.StopStreams();

  report.Set("streams", absl::StrCat(options.streams));
  report.Set("users", absl::StrCat(users));
  report.Set("message_channels", absl::StrCat(fleet.message_channels()));
  report.Set("server_pid", absl::StrCat(options.server_pid));
  report.Add("streams live", live_streams, "streams");
  report.Add("ramp-up time", absl::ToDoubleSeconds(ramp), "s");
  report.Add("streams ended while held",
             ended.load() - ended_before_hold, "streams");
  if (options.server_pid != 0) {
    report.Add("server RSS before", Kib(server_before) / 1024, "MiB");
    report.Add("server RSS with streams", Kib(server_live) / 1024, "MiB");
    report.Add("server RSS after hold", Kib(server_end) / 1024, "MiB");
    if (live_streams > 0 && server_live > server_before) {
      report.Add("server RSS per stream",
                 Kib(server_live - server_before) / live_streams, "KiB");
    }
  }
  if (live_streams > 0 && client_live > client_before) {
    report.Add("imbench RSS per stream",
               Kib(client_live - client_before) / live_streams, "KiB");
  }
  report.AddLatency("open->ready", open_latency);
  errors.AddTo(report);
  if (live_streams < options.streams) {
    report.failures.push_back(absl::StrCat(options.streams - live_streams,
                                           " streams never became live"));
  }
  report.verified = "every stream reached Ready";
  return absl::OkStatus();
}

// ---------------------------------------------------------------- history --

absl::Status RunHistory(Fleet& fleet, const HistoryLoadOptions& options,
                        Report& report) {
  if (options.page < 1 || options.page > 200 || options.messages < 2) {
    return absl::InvalidArgumentError("need --page 1-200 and --messages >= 2");
  }
  if (absl::Status status = fleet.SignIn(2); !status.ok()) return status;
  absl::StatusOr<message_v1::Conversation> direct =
      fleet.user(0).GetOrCreateDirect(fleet.user_id(1));
  if (!direct.ok()) return direct.status();
  const uint64_t conversation = direct->conversation_id();
  if (direct->last_seq() < static_cast<uint64_t>(options.messages)) {
    const int missing = options.messages - static_cast<int>(direct->last_seq());
    absl::BitGen rng;
    const std::string fill = absl::StrFormat("fill-%08x", absl::Uniform<uint32_t>(rng));
    absl::Status filled = Fleet::ParallelFor(missing, 8, [&](int i) -> absl::Status {
      message_v1::Message message;
      message.set_text(absl::StrCat("history filler ", i));
      return fleet.user(i % 2)
          .SendUnary(conversation, message, absl::StrCat(fill, "-", i))
          .status();
    });
    if (!filled.ok()) return filled;
  }
  absl::StatusOr<message_v1::GetConversationResponse> now =
      fleet.user(0).GetConversation(conversation);
  if (!now.ok()) return now.status();
  const uint64_t last_seq = now->conversation().last_seq();

  LatencyHistogram latency;
  ErrorCounts errors;
  std::atomic<uint64_t> next{0}, done{0}, bad_pages{0};
  const absl::Time start = absl::Now();
  const absl::Time end = start + options.duration;
  ProgressTicker progress(options.progress, [&](absl::Duration elapsed) {
    return absl::StrFormat("t=%5.1fs pages %llu  p99 %.1f ms",
                           absl::ToDoubleSeconds(elapsed), done.load(),
                           absl::ToDoubleMilliseconds(latency.Percentile(0.99)));
  });
  std::vector<std::thread> workers;
  for (int w = 0; w < std::max(1, options.concurrency); ++w) {
    workers.emplace_back([&, w] {
      absl::BitGen rng;
      for (;;) {
        const uint64_t k = next.fetch_add(1);
        const absl::Time due = start + absl::Seconds(k / options.rate);
        if (due >= end) return;
        if (due > absl::Now()) absl::SleepFor(due - absl::Now());
        const uint64_t anchor = absl::Uniform<uint64_t>(
            absl::IntervalClosed, rng, 2, last_seq + 1);
        absl::StatusOr<history_v1::GetHistoryResponse> page =
            fleet.user(w % 2).GetHistory(conversation, anchor,
                                         history_v1::DIRECTION_BEFORE,
                                         options.page);
        latency.Record(absl::Now() - due);
        done.fetch_add(1);
        if (!page.ok()) {
          errors.Add(absl::StatusCodeToString(page.status().code()));
          continue;
        }
        // Exactly the `page` entries before the anchor (seq 1 is the
        // conversation's creation, visible to both).
        const uint64_t want = std::min<uint64_t>(options.page, anchor - 1);
        bool good = static_cast<uint64_t>(page->entries_size()) == want;
        for (int i = 0; good && i < page->entries_size(); ++i) {
          good = page->entries(i).seq() == anchor - want + i;
        }
        if (!good) bad_pages.fetch_add(1);
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  const double seconds = absl::ToDoubleSeconds(options.duration);
  report.Set("conversation", absl::StrCat(conversation));
  report.Set("entries", absl::StrCat(last_seq));
  report.Set("page", absl::StrCat(options.page));
  report.Set("concurrency", absl::StrCat(options.concurrency));
  report.Add("offered rate", options.rate, "pages/s");
  report.Add("achieved rate", done.load() / seconds, "pages/s");
  report.AddLatency("page read", latency);
  errors.AddTo(report);
  if (bad_pages.load() > 0) {
    report.failures.push_back(absl::StrCat(
        bad_pages.load(), " pages were not exactly the entries before the anchor"));
  }
  report.verified = "every page holds exactly the entries before its anchor";
  return absl::OkStatus();
}

// --------------------------------------------------------------- presence --

absl::Status RunPresence(Fleet& fleet, const PresenceLoadOptions& options,
                         Report& report) {
  if (options.churners < 1 || options.churners > 999) {
    return absl::InvalidArgumentError("--churners must be 1-999");
  }
  const int watcher = options.churners;
  if (absl::Status status = fleet.SignIn(options.churners + 1); !status.ok()) {
    return status;
  }
  // One group, so the watcher may see every churner.
  std::vector<uint64_t> ids;
  for (int u = 0; u < options.churners; ++u) ids.push_back(fleet.user_id(u));
  absl::StatusOr<message_v1::Conversation> group =
      fleet.user(watcher).CreateGroup("imbench presence", ids);
  if (!group.ok()) return group.status();

  struct Churner {
    absl::Mutex mu;
    // When the churner went live / closed its stream; cleared when seen.
    absl::Time online_at ABSL_GUARDED_BY(mu) = absl::InfinitePast();
    absl::Time offline_at ABSL_GUARDED_BY(mu) = absl::InfinitePast();
    int transitions ABSL_GUARDED_BY(mu) = 0;
    int seen ABSL_GUARDED_BY(mu) = 0;
  };
  std::vector<std::unique_ptr<Churner>> churners;
  absl::flat_hash_map<uint64_t, Churner*> by_id;
  for (int u = 0; u < options.churners; ++u) {
    churners.push_back(std::make_unique<Churner>());
    by_id[fleet.user_id(u)] = churners.back().get();
  }
  LatencyHistogram online_latency, offline_latency;
  ErrorCounts errors;

  auto stub = presence_v1::PresenceService::NewStub(
      fleet.user(watcher).channels().presence);
  grpc::ClientContext context;
  AttachBearerToken(&context, fleet.user(watcher).tokens().AccessToken());
  presence_v1::SubscribeRequest request;
  for (uint64_t id : ids) request.add_user_ids(id);
  std::unique_ptr<grpc::ClientReader<presence_v1::PresenceBatch>> reader =
      stub->Subscribe(&context, request);
  std::thread watching([&] {
    presence_v1::PresenceBatch batch;
    while (reader->Read(&batch)) {
      const absl::Time now = absl::Now();
      if (batch.snapshot()) continue;
      for (const presence_v1::Presence& p : batch.presences()) {
        auto it = by_id.find(p.user_id());
        if (it == by_id.end()) continue;
        Churner& c = *it->second;
        absl::MutexLock lock(&c.mu);
        if (p.state() == presence_v1::PRESENCE_STATE_ONLINE &&
            c.online_at != absl::InfinitePast()) {
          online_latency.Record(now - c.online_at);
          c.online_at = absl::InfinitePast();
          ++c.seen;
        } else if (p.state() == presence_v1::PRESENCE_STATE_OFFLINE &&
                   c.offline_at != absl::InfinitePast()) {
          offline_latency.Record(now - c.offline_at);
          c.offline_at = absl::InfinitePast();
          ++c.seen;
        }
      }
    }
  });

  const absl::Time end = absl::Now() + options.duration;
  std::atomic<int> cycles{0};
  ProgressTicker progress(options.progress, [&](absl::Duration elapsed) {
    return absl::StrFormat("t=%5.1fs online cycles %d  seen online %llu",
                           absl::ToDoubleSeconds(elapsed), cycles.load(),
                           online_latency.count());
  });
  std::vector<std::thread> threads;
  for (int u = 0; u < options.churners; ++u) {
    threads.emplace_back([&, u] {
      Churner& c = *churners[u];
      absl::BitGen rng;
      // Spread the first connects over one cycle.
      absl::SleepFor(absl::Seconds(absl::Uniform(
          rng, 0.0, absl::ToDoubleSeconds(options.online_for + options.offline_for))));
      while (absl::Now() + options.online_for + options.offline_for < end) {
        ChatSession::Options stream_options;
        stream_options.replay_unlisted = false;
        absl::StatusOr<ChatSession*> chat =
            fleet.OpenStream(u, stream_options, nullptr);
        if (!chat.ok() || !(*chat)->WaitUntilLive(absl::Seconds(30))) {
          errors.Add("stream_not_live");
          if (chat.ok()) fleet.CloseStream(*chat);
          absl::SleepFor(options.offline_for);
          continue;
        }
        {
          absl::MutexLock lock(&c.mu);
          c.online_at = absl::Now();
          ++c.transitions;
        }
        cycles.fetch_add(1);
        absl::SleepFor(options.online_for);
        fleet.CloseStream(*chat);
        {
          absl::MutexLock lock(&c.mu);
          c.offline_at = absl::Now();
          ++c.transitions;
        }
        absl::SleepFor(options.offline_for);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  // The last offline notices need the grace period and a coalesce window.
  absl::SleepFor(absl::Seconds(5));
  context.TryCancel();
  watching.join();

  int transitions = 0, seen = 0;
  for (auto& c : churners) {
    absl::MutexLock lock(&c->mu);
    transitions += c->transitions;
    seen += c->seen;
  }
  report.Set("churners", absl::StrCat(options.churners));
  report.Set("online_for", absl::FormatDuration(options.online_for));
  report.Set("offline_for", absl::FormatDuration(options.offline_for));
  report.Add("transitions", transitions, "changes");
  report.Add("transitions seen by watcher", seen, "changes");
  report.AddLatency("live->seen online", online_latency);
  report.AddLatency("closed->seen offline", offline_latency);
  errors.AddTo(report);
  if (seen < transitions) {
    report.failures.push_back(absl::StrCat(
        transitions - seen, " presence changes never reached the watcher"));
  }
  report.verified = "the watcher saw every online and offline change";
  return absl::OkStatus();
}

}  // namespace im::imbench
