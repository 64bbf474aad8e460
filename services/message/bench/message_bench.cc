// Load measurements of the message service over real gRPC on loopback,
// with the server in this process on MariaDB (IM_TEST_MYSQL_* as for the
// mysql tests; a fresh database per run) or on the in-memory fake
// (--backend=fake). Not a test: it prints numbers.
//
//   bazel run //services/message/bench:message_bench -- --scenario=all
//
// Scenarios:
//   latency     fixed total rate over --pairs direct conversations, sends on
//               Chat streams: send->ack and send->deliver percentiles.
//   throughput  as fast as it goes with --window sends outstanding per
//               stream: the highest sustained durable rate.
//   fanout      one sender into a --group_size member group, every member
//               streaming: deliveries per second.
//   storage     ConversationLog::AppendMessages alone, per batch size and
//               number of conversations in a batch: what the writer's
//               group commit can get from the store.

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "services/message/testing/message_test_env.h"
#include "storage/fake/fake_database.h"
#include "storage/mysql/mysql_database.h"
#include "storage/testing/test_database.h"

ABSL_FLAG(std::string, scenario, "all", "latency, throughput, fanout or all");
ABSL_FLAG(std::string, backend, "mysql", "mysql or fake");
ABSL_FLAG(int, rate, 5000, "latency: messages per second in total");
ABSL_FLAG(int, seconds, 10, "latency/throughput: how long to send");
ABSL_FLAG(int, pairs, 100, "latency/throughput: direct conversations");
ABSL_FLAG(int, window, 32, "throughput: sends outstanding per stream");
ABSL_FLAG(int, group_size, 1000, "fanout: members");
ABSL_FLAG(int, fanout_messages, 300, "fanout: messages sent");
ABSL_FLAG(int, channels, 16, "client connections the streams spread over");
ABSL_FLAG(int, writer_shards, 4, "server: log writer shards");
ABSL_FLAG(int, pool_size, 24, "server: MySQL connections");
ABSL_FLAG(int, text_bytes, 100, "message size");

namespace im::message::bench {
namespace {

using testing::MessageTestEnv;
namespace v1 = ::im::message::v1;

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Latencies in microseconds.
class Histogram {
 public:
  void Add(int64_t micros) {
    absl::MutexLock lock(&mu_);
    values_.push_back(micros);
  }
  std::string Summary() {
    std::vector<int64_t> values;
    {
      absl::MutexLock lock(&mu_);
      values = values_;
    }
    if (values.empty()) return "no samples";
    std::sort(values.begin(), values.end());
    auto at = [&](double q) {
      return values[std::min(values.size() - 1,
                             static_cast<size_t>(q * values.size()))];
    };
    return absl::StrCat("n=", values.size(), " p50=", at(0.5) / 1000.0,
                        "ms p90=", at(0.9) / 1000.0, "ms p99=",
                        at(0.99) / 1000.0, "ms max=", values.back() / 1000.0,
                        "ms");
  }

 private:
  absl::Mutex mu_;
  std::vector<int64_t> values_ ABSL_GUARDED_BY(mu_);
};

// A Chat stream on the callback API: frames go out one write at a time
// from a queue; every received frame goes to `on_frame`.
class BenchStream final
    : public grpc::ClientBidiReactor<v1::ClientFrame, v1::ServerFrame> {
 public:
  using OnFrame = std::function<void(const v1::ServerFrame&, int64_t now)>;

  BenchStream(v1::MessageService::Stub* stub, const std::string& token,
              OnFrame on_frame)
      : on_frame_(std::move(on_frame)) {
    testing::Authorize(&context_, token);
    stub->async()->Chat(&context_, this);
    v1::ClientFrame hello;
    hello.mutable_hello();
    Write(hello);
    StartRead(&incoming_);
    StartCall();
  }

  void Write(const v1::ClientFrame& frame) {
    absl::MutexLock lock(&mu_);
    outgoing_.push_back(frame);
    if (!writing_) {
      writing_ = true;
      StartWrite(&outgoing_.front());
    }
  }

  bool WaitReady(absl::Duration timeout) {
    return ready_.WaitForNotificationWithTimeout(timeout);
  }

  void Stop() {
    context_.TryCancel();
    done_.WaitForNotification();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    outgoing_.pop_front();
    if (ok && !outgoing_.empty()) {
      StartWrite(&outgoing_.front());
    } else {
      writing_ = false;
    }
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    const int64_t now = NowNanos();
    if (incoming_.has_ready() && !ready_.HasBeenNotified()) ready_.Notify();
    on_frame_(incoming_, now);
    StartRead(&incoming_);
  }
  void OnDone(const grpc::Status&) override { done_.Notify(); }

 private:
  grpc::ClientContext context_;
  OnFrame on_frame_;
  v1::ServerFrame incoming_;
  absl::Mutex mu_;
  std::deque<v1::ClientFrame> outgoing_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Notification ready_;
  absl::Notification done_;
};

// The send time travels in the text: "<nanos> padding".
std::string TextAt(int64_t nanos) {
  std::string text = absl::StrCat(nanos, " ");
  text.resize(std::max<size_t>(text.size(), absl::GetFlag(FLAGS_text_bytes)),
              'x');
  return text;
}
int64_t SentAt(const std::string& text) {
  int64_t nanos = 0;
  (void)absl::SimpleAtoi(text.substr(0, text.find(' ')), &nanos);
  return nanos;
}

v1::ClientFrame SendFrame(uint64_t request_id, uint64_t conversation_id,
                          const std::string& client_msg_id) {
  v1::ClientFrame frame;
  v1::SendFrame* send = frame.mutable_send();
  send->set_request_id(request_id);
  send->set_conversation_id(conversation_id);
  send->set_client_msg_id(client_msg_id);
  send->mutable_message()->set_text(TextAt(NowNanos()));
  return frame;
}

std::unique_ptr<storage::Database> MakeDatabase(
    std::unique_ptr<storage::testing::TestDatabase>* keep) {
  if (absl::GetFlag(FLAGS_backend) == "fake") {
    return std::make_unique<storage::FakeDatabase>();
  }
  storage::testing::TestDatabaseOptions options;
  options.pool_size = 2;
  absl::StatusOr<std::unique_ptr<storage::testing::TestDatabase>> test_db =
      storage::testing::TestDatabase::Create(options);
  if (!test_db.ok()) {
    std::fprintf(stderr, "%s\n", test_db.status().ToString().c_str());
    return nullptr;
  }
  storage::MysqlOptions mysql = (*test_db)->options();
  mysql.pool_size = absl::GetFlag(FLAGS_pool_size);
  absl::StatusOr<std::unique_ptr<storage::MysqlDatabase>> db =
      storage::MysqlDatabase::Create(mysql);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
    return nullptr;
  }
  *keep = *std::move(test_db);
  return *std::move(db);
}

struct Server {
  std::unique_ptr<storage::testing::TestDatabase> test_db;
  std::unique_ptr<MessageTestEnv> env;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::MessageService::Stub>> stubs;

  v1::MessageService::Stub* stub(size_t i) {
    return stubs[i % stubs.size()].get();
  }
};

bool StartServer(Server& server) {
  std::unique_ptr<storage::Database> db = MakeDatabase(&server.test_db);
  if (db == nullptr) return false;
  MessageServiceOptions options = MessageTestEnv::DefaultOptions();
  options.writer.shards = absl::GetFlag(FLAGS_writer_shards);
  options.worker_threads = 8;
  server.env = MessageTestEnv::Start(std::move(db), options);
  if (server.env == nullptr) return false;
  for (int i = 0; i < absl::GetFlag(FLAGS_channels); ++i) {
    server.channels.push_back(server.env->NewChannel());
    server.stubs.push_back(v1::MessageService::NewStub(server.channels.back()));
  }
  return true;
}

// Direct conversations between senders[i] and receivers[i], each side with
// one Chat stream.
struct Pairs {
  std::vector<uint64_t> conversations;
  std::vector<std::unique_ptr<BenchStream>> senders;
  std::vector<std::unique_ptr<BenchStream>> receivers;
};

void OpenPairs(Server& server, int count, const BenchStream::OnFrame& on_sender,
               const BenchStream::OnFrame& on_receiver, Pairs& pairs) {
  MessageTestEnv& env = *server.env;
  for (int i = 0; i < count; ++i) {
    const uint64_t a = env.CreateUser(absl::StrCat("a", i));
    const uint64_t b = env.CreateUser(absl::StrCat("b", i));
    const std::string ta = env.Token(a, 2 * i + 1);
    pairs.conversations.push_back(env.Direct(ta, b));
    pairs.senders.push_back(
        std::make_unique<BenchStream>(server.stub(2 * i), ta, on_sender));
    pairs.receivers.push_back(std::make_unique<BenchStream>(
        server.stub(2 * i + 1), env.Token(b, 2 * i + 2), on_receiver));
  }
  for (auto& s : pairs.senders) s->WaitReady(absl::Seconds(30));
  for (auto& r : pairs.receivers) r->WaitReady(absl::Seconds(30));
}

void ClosePairs(Pairs& pairs) {
  for (auto& s : pairs.senders) s->Stop();
  for (auto& r : pairs.receivers) r->Stop();
}

void RunLatency(Server& server) {
  Histogram ack_latency;
  Histogram deliver_latency;
  // request id -> send time, per sender (request ids are global).
  absl::Mutex mu;
  absl::flat_hash_map<uint64_t, int64_t> sent_at;
  std::atomic<int> errors{0};
  Pairs pairs;
  OpenPairs(
      server, absl::GetFlag(FLAGS_pairs),
      [&](const v1::ServerFrame& frame, int64_t now) {
        if (frame.has_error()) ++errors;
        if (!frame.has_ack()) return;
        absl::MutexLock lock(&mu);
        auto it = sent_at.find(frame.ack().request_id());
        if (it == sent_at.end()) return;
        ack_latency.Add((now - it->second) / 1000);
        sent_at.erase(it);
      },
      [&](const v1::ServerFrame& frame, int64_t now) {
        if (frame.has_entry() && frame.entry().has_message()) {
          deliver_latency.Add(
              (now - SentAt(frame.entry().message().text())) / 1000);
        }
      },
      pairs);
  const int rate = absl::GetFlag(FLAGS_rate);
  const int seconds = absl::GetFlag(FLAGS_seconds);
  const int64_t interval = 1000000000LL / rate;
  const int64_t start = NowNanos();
  const int64_t total = static_cast<int64_t>(rate) * seconds;
  for (int64_t n = 0; n < total; ++n) {
    const int64_t due = start + n * interval;
    while (NowNanos() < due) {
      if (due - NowNanos() > 200000) absl::SleepFor(absl::Microseconds(100));
    }
    const size_t pair = n % pairs.senders.size();
    v1::ClientFrame frame =
        SendFrame(n + 1, pairs.conversations[pair], absl::StrCat("l", n));
    {
      absl::MutexLock lock(&mu);
      sent_at[n + 1] = NowNanos();
    }
    pairs.senders[pair]->Write(frame);
  }
  const double send_seconds = (NowNanos() - start) / 1e9;
  absl::SleepFor(absl::Seconds(2));
  std::printf("latency: %d msg/s offered for %ds (achieved %.0f/s), %d pairs, "
              "%d errors\n  send->ack     %s\n  send->deliver %s\n",
              rate, seconds, total / send_seconds, absl::GetFlag(FLAGS_pairs),
              errors.load(), ack_latency.Summary().c_str(),
              deliver_latency.Summary().c_str());
  ClosePairs(pairs);
}

void RunThroughput(Server& server) {
  const int window = absl::GetFlag(FLAGS_window);
  std::atomic<int64_t> acked{0};
  std::atomic<int64_t> delivered{0};
  std::atomic<int> errors{0};
  std::atomic<bool> stop{false};
  Pairs pairs;
  std::vector<std::atomic<uint64_t>> next(absl::GetFlag(FLAGS_pairs));
  // Each ack releases the next send on that stream (closed loop).
  OpenPairs(
      server, absl::GetFlag(FLAGS_pairs),
      [&](const v1::ServerFrame& frame, int64_t) {
        if (frame.has_error()) ++errors;
        if (!frame.has_ack() && !frame.has_error()) return;
        ++acked;
        const uint64_t request = frame.has_ack() ? frame.ack().request_id()
                                                 : frame.error().request_id();
        const size_t pair = request >> 32;
        if (stop.load()) return;
        const uint64_t n = next[pair].fetch_add(1);
        pairs.senders[pair]->Write(SendFrame((pair << 32) | n,
                                             pairs.conversations[pair],
                                             absl::StrCat("t", pair, "-", n)));
      },
      [&](const v1::ServerFrame& frame, int64_t) {
        if (frame.has_entry()) ++delivered;
      },
      pairs);
  const int64_t start = NowNanos();
  for (size_t pair = 0; pair < pairs.senders.size(); ++pair) {
    for (int i = 0; i < window; ++i) {
      const uint64_t n = next[pair].fetch_add(1);
      pairs.senders[pair]->Write(SendFrame((pair << 32) | n,
                                           pairs.conversations[pair],
                                           absl::StrCat("t", pair, "-", n)));
    }
  }
  // Count over the middle of the run, after a warm-up second.
  absl::SleepFor(absl::Seconds(1));
  const int64_t acked0 = acked.load();
  const int64_t t0 = NowNanos();
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_seconds)));
  const int64_t acked1 = acked.load();
  const int64_t t1 = NowNanos();
  stop = true;
  absl::SleepFor(absl::Seconds(2));
  const LogWriter::Stats writer = server.env->service().writer_stats();
  std::printf("throughput: %d pairs x %d outstanding, %d errors: %.0f durable "
              "msgs/s acked (%lld acked, %lld delivered in %.1fs total)\n"
              "  writer: %llu batches, %.1f sends/batch, %.2f ms/batch\n",
              absl::GetFlag(FLAGS_pairs), window, errors.load(),
              (acked1 - acked0) / ((t1 - t0) / 1e9),
              static_cast<long long>(acked.load()),
              static_cast<long long>(delivered.load()),
              (NowNanos() - start) / 1e9,
              static_cast<unsigned long long>(writer.batches),
              writer.batches ? static_cast<double>(writer.appended) / writer.batches : 0.0,
              writer.batches ? writer.commit_micros / 1000.0 / writer.batches : 0.0);
  ClosePairs(pairs);
}

void RunStorage(Server& server) {
  MessageTestEnv& env = *server.env;
  storage::ConversationLog& log = *env.db().log();
  std::vector<uint64_t> conversations;
  std::vector<uint64_t> senders;
  for (int i = 0; i < 100; ++i) {
    const uint64_t a = env.CreateUser(absl::StrCat("sa", i));
    const uint64_t b = env.CreateUser(absl::StrCat("sb", i));
    conversations.push_back(env.Direct(env.Token(a, 1), b));
    senders.push_back(a);
  }
  int64_t next_id = 0;
  for (int spread : {1, 100}) {
    for (int batch_size : {1, 16, 64, 256}) {
      const int rounds = std::max(4, 1024 / batch_size);
      const int64_t start = NowNanos();
      for (int r = 0; r < rounds; ++r) {
        std::vector<storage::AppendRequest> batch(batch_size);
        for (int i = 0; i < batch_size; ++i) {
          const int c = i % spread;
          batch[i].conversation_id = conversations[c];
          batch[i].sender_id = senders[c];
          batch[i].client_msg_id = absl::StrCat("s", next_id++);
          batch[i].message.set_text(TextAt(0));
        }
        absl::StatusOr<std::vector<storage::AppendOutcome>> result =
            log.AppendMessages(batch, absl::Now());
        if (!result.ok()) {
          std::printf("storage: %s\n", result.status().ToString().c_str());
          return;
        }
      }
      const double seconds = (NowNanos() - start) / 1e9;
      std::printf("storage: batch %3d over %3d conversations: %.2f ms/batch, "
                  "%.0f rows/s\n",
                  batch_size, spread, seconds * 1000 / rounds,
                  rounds * batch_size / seconds);
    }
  }
}

void RunFanout(Server& server) {
  MessageTestEnv& env = *server.env;
  const int size = absl::GetFlag(FLAGS_group_size);
  const int messages = absl::GetFlag(FLAGS_fanout_messages);
  std::vector<uint64_t> ids;
  std::vector<std::string> tokens;
  for (int i = 0; i < size; ++i) {
    ids.push_back(env.CreateUser(absl::StrCat("g", i)));
    tokens.push_back(env.Token(ids.back(), 100000 + i));
  }
  const uint64_t group = env.CreateGroup(
      tokens[0], std::vector<uint64_t>(ids.begin() + 1, ids.end()));
  std::atomic<int64_t> deliveries{0};
  std::atomic<int64_t> last_delivery{0};
  Histogram deliver_latency;
  std::vector<std::unique_ptr<BenchStream>> streams;
  for (int i = 0; i < size; ++i) {
    streams.push_back(std::make_unique<BenchStream>(
        server.stub(i), tokens[i],
        [&](const v1::ServerFrame& frame, int64_t now) {
          if (!frame.has_entry()) return;
          ++deliveries;
          last_delivery = now;
          if (frame.entry().seq() % 16 == 0) {
            deliver_latency.Add(
                (now - SentAt(frame.entry().message().text())) / 1000);
          }
        }));
  }
  for (auto& s : streams) s->WaitReady(absl::Seconds(60));
  const int64_t start = NowNanos();
  // Paced a little under what one sender's stream carries, so the queue
  // limits are not what is measured.
  for (int i = 0; i < messages; ++i) {
    streams[0]->Write(SendFrame(i + 1, group, absl::StrCat("f", i)));
  }
  const int64_t expected = static_cast<int64_t>(size) * messages;
  for (int i = 0; i < 600 && deliveries.load() < expected; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  const double seconds = (last_delivery.load() - start) / 1e9;
  std::printf("fanout: %d members x %d messages: %lld of %lld deliveries in "
              "%.2fs = %.0f deliveries/s\n  send->deliver (sampled) %s\n",
              size, messages, static_cast<long long>(deliveries.load()),
              static_cast<long long>(expected), seconds,
              deliveries.load() / seconds, deliver_latency.Summary().c_str());
  for (auto& s : streams) s->Stop();
}

}  // namespace
}  // namespace im::message::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // As message_main does (see there).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::string scenario = absl::GetFlag(FLAGS_scenario);
  auto run = [&](const char* name, void (*body)(im::message::bench::Server&)) {
    if (scenario != "all" && scenario != name) return true;
    im::message::bench::Server server;  // a fresh server and database each
    if (!im::message::bench::StartServer(server)) return false;
    body(server);
    std::fflush(stdout);
    return true;
  };
  if (!run("latency", im::message::bench::RunLatency)) return 1;
  if (!run("throughput", im::message::bench::RunThroughput)) return 1;
  if (!run("fanout", im::message::bench::RunFanout)) return 1;
  if (!run("storage", im::message::bench::RunStorage)) return 1;
  return 0;
}
