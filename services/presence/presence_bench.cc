// Presence under load: N users with device leases, S subscribers watching W
// users each, and a steady rate of device connects/disconnects. Reports the
// presence updates delivered per second, the connect-to-notification delay,
// and the CPU and memory of the presence process.
//
// The presence server runs in a child process (this binary with
// --role=server) over the in-memory storage fake, so its CPU and RSS are
// measured alone; the load (lease clients, subscribers over a few shared
// channels) runs in the parent. Not part of the test suite.
//
//   bazel run //services/presence:presence_bench -- --seconds=30

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "services/common/access_token.h"
#include "services/common/authenticator.h"
#include "services/common/grpc_server.h"
#include "services/presence/presence_lease_client.h"
#include "services/presence/presence_service.h"
#include "storage/fake/fake_database.h"

ABSL_FLAG(std::string, role, "driver", "driver (default) or server (child)");
ABSL_FLAG(int, users, 50000, "users holding a device lease at any time");
ABSL_FLAG(int, spare_users, 5000,
          "extra users, so connects pick users who are offline");
ABSL_FLAG(int, subscribers, 1000, "Subscribe streams");
ABSL_FLAG(int, watch, 100, "users each subscriber watches");
ABSL_FLAG(int, churn_per_sec, 2000, "device connects + disconnects per second");
ABSL_FLAG(int, channels, 8, "gRPC connections the subscribers share");
ABSL_FLAG(int, nodes, 4, "message nodes (lease clients)");
ABSL_FLAG(int, seconds, 30, "measured seconds");
ABSL_FLAG(int, warmup_seconds, 5, "churn seconds before measuring");
ABSL_FLAG(int, server_threads, 4, "presence worker threads (server role)");

namespace im::presence {
namespace {

// Both roles mint and verify tokens with this key.
TokenKey BenchKey() { return TokenKey{1, std::string(32, 'b')}; }

int TotalUsers() {
  return absl::GetFlag(FLAGS_users) + absl::GetFlag(FLAGS_spare_users);
}
// Device users are 1..TotalUsers(); subscriber i is user TotalUsers()+1+i.
uint64_t ViewerId(int subscriber) { return TotalUsers() + 1 + subscriber; }
std::vector<uint64_t> WatchedBy(int subscriber) {
  std::vector<uint64_t> ids;
  const int watch = absl::GetFlag(FLAGS_watch);
  for (int j = 0; j < watch; ++j) {
    ids.push_back(static_cast<uint64_t>(
                      (static_cast<int64_t>(subscriber) * watch + j) %
                      TotalUsers()) +
                  1);
  }
  return ids;
}

void Die(const std::string& what) {
  std::cerr << "presence_bench: " << what << std::endl;
  std::exit(1);
}

// The child: users and one group per subscriber (with the users it
// watches) in the storage fake, the presence service, a port on stdout.
int RunServer() {
  storage::FakeDatabase database;
  const int total = TotalUsers() + absl::GetFlag(FLAGS_subscribers);
  for (int i = 1; i <= total; ++i) {
    storage::NewUser user;
    user.username = absl::StrCat("u", i);
    user.username_norm = user.username;
    user.display_name = user.username;
    user.created_at = absl::Now();
    auto created = database.users()->CreateUser(user);
    if (!created.ok() || created->id != static_cast<uint64_t>(i)) {
      Die("creating users: " + created.status().ToString());
    }
  }
  for (int s = 0; s < absl::GetFlag(FLAGS_subscribers); ++s) {
    auto group = database.log()->CreateGroup(ViewerId(s), "watch", WatchedBy(s),
                                             0, "", absl::Now());
    if (!group.ok()) Die("creating groups: " + group.status().ToString());
  }
  auto codec = TokenCodec::Create({BenchKey()});
  if (!codec.ok()) Die(codec.status().ToString());
  Authenticator authenticator(codec->get(), nullptr);
  PresenceServiceImpl::Options options;
  options.worker_threads = absl::GetFlag(FLAGS_server_threads);
  auto service = PresenceServiceImpl::Create(options, &authenticator,
                                             database.users(),
                                             database.reader(), nullptr);
  if (!service.ok()) Die(service.status().ToString());
  ServerOptions server_options;
  server_options.max_concurrent_streams = 1024;
  auto server = GrpcServer::Start(server_options, {service->get()});
  if (!server.ok()) Die(server.status().ToString());
  // The driver looks for this line (logs share stdout).
  std::cout << "presence_bench_port=" << (*server)->port() << std::endl;
  // Runs until the driver closes our stdin.
  char byte;
  while (read(STDIN_FILENO, &byte, 1) > 0) {
  }
  const PresenceServiceImpl::Stats stats = (*service)->stats();
  std::cerr << absl::StrFormat(
                   "server: leases %d, online %d, subscriptions %d, updates "
                   "sent %d in %d batches, last_seen rows %d",
                   stats.leases, stats.users_online, stats.subscriptions,
                   stats.updates_sent, stats.batches_sent,
                   stats.last_seen_rows_written)
            << std::endl;
  (*service)->Shutdown();
  (*server)->Shutdown(absl::Seconds(1));
  return 0;
}

struct ProcessUsage {
  double cpu_seconds = 0;
  long rss_kb = 0;
  long peak_rss_kb = 0;
};

ProcessUsage ReadUsage(pid_t pid) {
  ProcessUsage usage;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(stat, line);
  // Fields after the command name (which may hold spaces) start at ") ".
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  unsigned long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoul(field);
    if (i == 15) stime = std::stoul(field);
  }
  usage.cpu_seconds =
      static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) usage.rss_kb = std::stol(line.substr(6));
    if (line.rfind("VmHWM:", 0) == 0) {
      usage.peak_rss_kb = std::stol(line.substr(6));
    }
  }
  return usage;
}

// Connect-to-notification delays, 1 ms buckets up to 10 s.
class DelayHistogram {
 public:
  void Add(absl::Duration delay) {
    int64_t ms = absl::ToInt64Milliseconds(delay);
    ms = std::max<int64_t>(0, std::min<int64_t>(ms, kBuckets - 1));
    buckets_[ms].fetch_add(1, std::memory_order_relaxed);
  }
  int64_t Percentile(double p) const {
    uint64_t total = 0;
    for (const auto& b : buckets_) total += b.load();
    if (total == 0) return -1;
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += buckets_[i].load();
      if (seen >= p * total) return i;
    }
    return kBuckets - 1;
  }

 private:
  static constexpr int kBuckets = 10000;
  std::atomic<uint64_t> buckets_[kBuckets] = {};
};

// Shared by the churn driver and the subscribers: when each user last
// connected (unix micros, 0 = not measured).
struct Shared {
  explicit Shared(int users) : connected_at_us(users + 1) {}
  std::vector<std::atomic<int64_t>> connected_at_us;
  std::atomic<bool> measuring{false};
  std::atomic<uint64_t> updates{0};
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> snapshots{0};
  DelayHistogram online_delay;
};

// One Subscribe stream, read with the callback API (no thread per stream).
class Subscriber final : public grpc::ClientReadReactor<v1::PresenceBatch> {
 public:
  Subscriber(v1::PresenceService::Stub* stub, const std::string& token,
             const std::vector<uint64_t>& watched, Shared* shared)
      : shared_(shared) {
    AttachBearerToken(&context_, token);
    for (uint64_t id : watched) request_.add_user_ids(id);
    stub->async()->Subscribe(&context_, &request_, this);
    StartRead(&batch_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    if (batch_.snapshot()) {
      shared_->snapshots.fetch_add(1);
    } else if (shared_->measuring.load(std::memory_order_relaxed)) {
      shared_->batches.fetch_add(1, std::memory_order_relaxed);
      shared_->updates.fetch_add(batch_.presences_size(),
                                 std::memory_order_relaxed);
      const int64_t now_us = absl::ToUnixMicros(absl::Now());
      for (const v1::Presence& presence : batch_.presences()) {
        if (presence.state() != v1::PRESENCE_STATE_ONLINE) continue;
        const int64_t at = shared_->connected_at_us[presence.user_id()].load(
            std::memory_order_relaxed);
        if (at > 0) shared_->online_delay.Add(absl::Microseconds(now_us - at));
      }
    }
    StartRead(&batch_);
  }
  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    done_ = true;
    status_ = status;
  }
  void Cancel() { context_.TryCancel(); }
  grpc::Status WaitDone() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    return status_;
  }

 private:
  Shared* const shared_;
  grpc::ClientContext context_;
  v1::SubscribeRequest request_;
  v1::PresenceBatch batch_;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

int RunDriver(const char* self) {
  // The server child, started before any thread exists here.
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) Die("pipe");
  const pid_t child = fork();
  if (child < 0) Die("fork");
  if (child == 0) {
    dup2(to_child[0], STDIN_FILENO);
    dup2(from_child[1], STDOUT_FILENO);
    close(to_child[1]);
    close(from_child[0]);
    std::vector<std::string> args = {
        self, "--role=server",
        absl::StrCat("--users=", absl::GetFlag(FLAGS_users)),
        absl::StrCat("--spare_users=", absl::GetFlag(FLAGS_spare_users)),
        absl::StrCat("--subscribers=", absl::GetFlag(FLAGS_subscribers)),
        absl::StrCat("--watch=", absl::GetFlag(FLAGS_watch)),
        absl::StrCat("--server_threads=", absl::GetFlag(FLAGS_server_threads))};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(self, argv.data());
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  FILE* child_out = fdopen(from_child[0], "r");
  int port = 0;
  char line[512];
  while (port == 0 && fgets(line, sizeof(line), child_out) != nullptr) {
    if (sscanf(line, "presence_bench_port=%d", &port) != 1) port = 0;
  }
  if (port == 0) Die("server did not start");
  const std::string address = absl::StrCat("127.0.0.1:", port);
  std::cout << "presence server pid " << child << " on " << address
            << std::endl;
  const auto report_rss = [child](const char* phase) {
    const ProcessUsage usage = ReadUsage(child);
    std::cout << absl::StrFormat("presence RSS %s: %.1f MiB", phase,
                                 usage.rss_kb / 1024.0)
              << std::endl;
  };
  // Mostly the storage fake (users, groups): the baseline to subtract.
  report_rss("after start-up (storage fake filled)");

  const int users = absl::GetFlag(FLAGS_users);
  const int total_users = TotalUsers();
  const int subscribers = absl::GetFlag(FLAGS_subscribers);
  auto codec = TokenCodec::Create({BenchKey()});
  if (!codec.ok()) Die(codec.status().ToString());
  InternalTokenSource internal_tokens(codec->get());
  Shared shared(total_users);

  // Lease clients: user u's device is served by node u % nodes.
  const int nodes = absl::GetFlag(FLAGS_nodes);
  std::vector<std::unique_ptr<PresenceLeaseClient>> clients;
  auto lease_channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  for (int n = 0; n < nodes; ++n) {
    PresenceLeaseClient::Options options;
    options.node_id = absl::StrCat("bench-node-", n);
    auto client = PresenceLeaseClient::Create(
        options, lease_channel, [&] { return internal_tokens.Token(); });
    if (!client.ok()) Die(client.status().ToString());
    clients.push_back(*std::move(client));
  }
  const auto stream = [](int user) {
    DeviceStream s;
    s.user_id = user;
    s.session_id = user;
    s.device_kind = auth::v1::DEVICE_KIND_MOBILE;
    s.device_name = "phone";
    return s;
  };
  std::vector<char> online(total_users + 1, 0);
  const absl::Time lease_start = absl::Now();
  for (int u = 1; u <= users; ++u) {
    clients[u % nodes]->OnStreamOpened(stream(u));
    online[u] = 1;
  }
  const auto leases_held = [&] {
    size_t held = 0;
    for (const auto& c : clients) held += c->stats().leases_held;
    return held;
  };
  while (leases_held() < static_cast<size_t>(users)) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::cout << absl::StrFormat("%d leases opened in %.2f s", users,
                               absl::ToDoubleSeconds(absl::Now() - lease_start))
            << std::endl;
  report_rss("with the leases");

  // Subscribers, spread over a few connections (a distinct channel argument
  // keeps gRPC from sharing one connection).
  std::vector<std::unique_ptr<v1::PresenceService::Stub>> stubs;
  for (int c = 0; c < absl::GetFlag(FLAGS_channels); ++c) {
    grpc::ChannelArguments args;
    args.SetInt("im.bench.channel", c);
    stubs.push_back(v1::PresenceService::NewStub(grpc::CreateCustomChannel(
        address, grpc::InsecureChannelCredentials(), args)));
  }
  std::vector<std::unique_ptr<Subscriber>> subs;
  const absl::Time subscribe_start = absl::Now();
  for (int s = 0; s < subscribers; ++s) {
    Caller viewer;
    viewer.user_id = ViewerId(s);
    viewer.session_id = ViewerId(s);
    viewer.role = auth::v1::ROLE_USER;
    viewer.expires_at = absl::Now() + absl::Hours(1);
    subs.push_back(std::make_unique<Subscriber>(
        stubs[s % stubs.size()].get(), (*codec)->Mint(viewer, absl::Now()),
        WatchedBy(s), &shared));
  }
  while (shared.snapshots.load() < static_cast<uint64_t>(subscribers)) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::cout << absl::StrFormat(
                   "%d subscriptions (%d users each) got snapshots in %.2f s",
                   subscribers, absl::GetFlag(FLAGS_watch),
                   absl::ToDoubleSeconds(absl::Now() - subscribe_start))
            << std::endl;
  report_rss("with the subscriptions");

  // Churn: every 10 ms, half the ops disconnect a random online user and
  // half connect a random offline one.
  std::atomic<bool> stop_churn{false};
  std::atomic<uint64_t> churn_ops{0};
  std::thread churn([&] {
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<int> pick(1, total_users);
    const int per_tick = std::max(1, absl::GetFlag(FLAGS_churn_per_sec) / 100);
    absl::Time next = absl::Now();
    while (!stop_churn.load()) {
      for (int i = 0; i < per_tick; ++i) {
        const bool connect = i % 2 == 0;
        int u = pick(rng);
        while (online[u] == (connect ? 1 : 0)) u = pick(rng);
        if (connect) {
          shared.connected_at_us[u].store(absl::ToUnixMicros(absl::Now()));
          clients[u % nodes]->OnStreamOpened(stream(u));
          online[u] = 1;
        } else {
          shared.connected_at_us[u].store(0);
          clients[u % nodes]->OnStreamClosed(u, u);
          online[u] = 0;
        }
      }
      churn_ops += per_tick;
      next += absl::Milliseconds(10);
      absl::SleepFor(next - absl::Now());
    }
  });

  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_warmup_seconds)));
  const ProcessUsage usage_start = ReadUsage(child);
  const ProcessUsage self_start = ReadUsage(getpid());
  const uint64_t churn_start = churn_ops.load();
  const absl::Time start = absl::Now();
  shared.measuring = true;
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_seconds)));
  shared.measuring = false;
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  const ProcessUsage usage_end = ReadUsage(child);
  const ProcessUsage self_end = ReadUsage(getpid());
  const uint64_t churn_done = churn_ops.load() - churn_start;
  stop_churn = true;
  churn.join();

  uint64_t opens = 0, closes = 0, failed = 0, resyncs = 0;
  for (const auto& c : clients) {
    const PresenceLeaseClient::Stats s = c->stats();
    opens += s.opens_sent;
    closes += s.closes_sent;
    failed += s.failed_calls;
    resyncs += s.resyncs;
  }
  std::cout << absl::StrFormat(
      "\nmeasured %.1f s: churn %.0f connects+disconnects/s\n"
      "delivered: %.0f presence updates/s in %.0f batches/s "
      "(%.2f updates per batch)\n"
      "connect -> ONLINE at subscriber: p50 %d ms, p99 %d ms\n"
      "presence process: CPU %.1f%% of one core, RSS %.1f MiB (peak %.1f "
      "MiB)\n"
      "driver process: CPU %.1f%% of one core\n"
      "lease RPCs (whole run): %d opens, %d closes, %d failed, %d resyncs\n",
      elapsed, churn_done / elapsed, shared.updates.load() / elapsed,
      shared.batches.load() / elapsed,
      shared.batches.load() == 0
          ? 0.0
          : static_cast<double>(shared.updates.load()) / shared.batches.load(),
      shared.online_delay.Percentile(0.5), shared.online_delay.Percentile(0.99),
      100.0 * (usage_end.cpu_seconds - usage_start.cpu_seconds) / elapsed,
      usage_end.rss_kb / 1024.0, usage_end.peak_rss_kb / 1024.0,
      100.0 * (self_end.cpu_seconds - self_start.cpu_seconds) / elapsed, opens,
      closes, failed, resyncs);

  for (auto& sub : subs) sub->Cancel();
  for (auto& sub : subs) sub->WaitDone();
  for (auto& c : clients) c->Shutdown(absl::ZeroDuration());
  close(to_child[1]);  // the server stops when its stdin closes
  int status = 0;
  waitpid(child, &status, 0);
  return 0;
}

}  // namespace
}  // namespace im::presence

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_role) == "server") {
    return im::presence::RunServer();
  }
  return im::presence::RunDriver("/proc/self/exe");
}
