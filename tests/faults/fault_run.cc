#include "tests/faults/fault_run.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "clients/cpp/chat_session.h"
#include "clients/cpp/im_client.h"
#include "spdlog/spdlog.h"
#include "tests/faults/queue_checker.h"
#include "tests/faults/stalled_consumer.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/service_cluster.h"

namespace im::faults {
namespace {

namespace v1 = ::im::message::v1;
using ::im::testing::Service;
using ::im::testing::ServiceCluster;
using ::im::testing::TcpProxy;

constexpr char kPassword[] = "fault-harness-password";
// A user's stream sends in flight beyond which its load thread waits (an
// outage must not queue without bound in the harness either).
constexpr int kMaxPendingPerUser = 400;
// Acked sends into the consumer's group while it is stopped: well beyond
// what its stream may queue (--stream_max_bytes below) plus the transport
// window.
constexpr int kStallFloodSends = 300;
// In parallel, so the writer commits them in batches.
constexpr int kStallFloodThreads = 6;

void Log(const std::string& line) {
  const absl::Time now = absl::Now();
  std::printf("[faults %s] %s\n",
              absl::FormatTime("%H:%M:%E3S", now, absl::LocalTimeZone()).c_str(),
              line.c_str());
  std::fflush(stdout);
}

// Codes after which a unary send was definitely not stored.
bool DefinitelyRefused(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
      return true;
    default:
      return false;
  }
}

// VmRSS of `pid` in KiB (0 when unreadable).
int64_t RssKib(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      int64_t kib = 0;
      status >> kib;
      return kib;
    }
    status.ignore(1 << 12, '\n');
  }
  return 0;
}

int RunShell(const std::string& command) {
  if (command.empty()) return -1;
  return std::system(command.c_str());
}

struct Conversation {
  uint64_t id = 0;
  std::string label;
  std::vector<int> members;  // user indexes
};

// One user: a client with a live Chat session (one device) and what that
// session delivered.
struct User {
  int index = 0;
  std::string name;
  uint64_t id = 0;
  std::unique_ptr<client::ImClient> client;
  // Owned by `client`; null once the session is stopped.
  client::ChatSession* chat = nullptr;
  client::ChatSession::Stats chat_stats;
  std::vector<uint64_t> conversations;  // ids
  std::thread load;
  absl::Mutex send_mu;
  uint64_t next_order ABSL_GUARDED_BY(send_mu) = 0;

  absl::Mutex mu;
  std::map<uint64_t, std::vector<LogEntry>> received ABSL_GUARDED_BY(mu);
  int pending ABSL_GUARDED_BY(mu) = 0;
  int disconnects ABSL_GUARDED_BY(mu) = 0;
};

class FaultRun {
 public:
  explicit FaultRun(const FaultRunOptions& options) : options_(options) {}
  int Run();

 private:
  absl::Status StartServices();
  client::ImClient::Options ClientOptions(const std::string& message_address,
                                          const std::string& device) const;
  absl::Status CreateUsersAndConversations();
  absl::Status StartSessions();
  void LoadLoop(User& user);
  // `via`: another client of the same user for a unary send. True when a
  // unary send was acked.
  bool SendOne(User& user, uint64_t conversation, bool unary,
               size_t text_bytes, client::ImClient* via = nullptr);
  void SubmitStreamSend(User& user, uint64_t conversation,
                        const std::string& id, const v1::Message& message);
  // True when acked.
  bool SubmitUnarySend(client::ImClient& client, uint64_t conversation,
                       const std::string& id, const v1::Message& message);
  void OnEvent(User& user, client::ChatEvent event);
  void InjectFaults();
  void Inject(const Fault& fault);
  void Heal();
  absl::Status WaitSettled();
  absl::StatusOr<std::map<uint64_t, uint64_t>> LastSeqs();
  void RetryUnknownUnarySends();
  absl::StatusOr<std::vector<LogEntry>> PageHistory(User& user,
                                                    uint64_t conversation);
  void PrintSummary(const CheckReport& report, bool verdict);

  size_t NewRecord(SendRecord record) {
    absl::MutexLock lock(&records_mu_);
    records_.push_back(std::move(record));
    by_id_[records_.back().client_msg_id] = records_.size() - 1;
    return records_.size() - 1;
  }

  const FaultRunOptions options_;
  std::unique_ptr<ServiceCluster> cluster_;
  std::unique_ptr<TcpProxy> proxy_;
  std::unique_ptr<StalledConsumer> consumer_;
  // User 1 again, straight to the message service (the stall's flood).
  std::unique_ptr<client::ImClient> flood_client_;
  std::vector<std::unique_ptr<User>> users_;
  std::vector<Conversation> conversations_;
  uint64_t everyone_conversation_ = 0;
  std::atomic<bool> stop_load_{false};

  absl::Mutex records_mu_;
  std::vector<SendRecord> records_ ABSL_GUARDED_BY(records_mu_);
  absl::flat_hash_map<std::string, size_t> by_id_ ABSL_GUARDED_BY(records_mu_);
  // Unary sends whose outcome stayed unknown (indexes into records_).
  std::vector<size_t> unknown_unary_ ABSL_GUARDED_BY(records_mu_);
  // Sends rejected by the session itself (never written).
  int refused_locally_ ABSL_GUARDED_BY(records_mu_) = 0;

  absl::Mutex faults_mu_;
  std::map<FaultKind, int> injected_ ABSL_GUARDED_BY(faults_mu_);
  int stalls_ ABSL_GUARDED_BY(faults_mu_) = 0;
  // A stall is in progress: faults that would cut its stream wait.
  bool stall_active_ ABSL_GUARDED_BY(faults_mu_) = false;
  // Kill to SERVING again, per kill fault.
  std::map<FaultKind, std::vector<absl::Duration>> recoveries_
      ABSL_GUARDED_BY(faults_mu_);
  int64_t stall_rss_growth_kib_ ABSL_GUARDED_BY(faults_mu_) = 0;

  // Recovery facts for the summary.
  absl::Duration serving_after_;
  absl::Duration live_after_;
  bool services_recovered_ = false;
  bool sessions_recovered_ = false;
  bool sends_settled_ = false;
  bool consumer_caught_up_ = false;
  int unary_retried_ = 0;
  int unary_retry_duplicates_ = 0;
};

absl::Status FaultRun::StartServices() {
  ServiceCluster::Options options;
  options.binaries = options_.binaries;
  options.mysql_dsn = options_.mysql_dsn;
  options.work_dir = options_.work_dir;
  options.log_level = "info";
  options.restart_delay = absl::Milliseconds(500);
  // Small outbound queues, so a stalled consumer is cut within a few
  // seconds; no send rate limit (the harness paces itself).
  options.extra_flags[static_cast<size_t>(Service::kMessage)] = {
      "--stream_max_frames=64", "--stream_max_bytes=131072", "--send_rate=0"};
  absl::StatusOr<std::unique_ptr<ServiceCluster>> cluster =
      ServiceCluster::Start(options);
  if (!cluster.ok()) return cluster.status();
  cluster_ = *std::move(cluster);
  if (absl::Status serving = cluster_->WaitAllServing(absl::Seconds(90));
      !serving.ok()) {
    return serving;
  }
  absl::StatusOr<std::unique_ptr<TcpProxy>> proxy =
      TcpProxy::Start(cluster_->address(Service::kMessage));
  if (!proxy.ok()) return proxy.status();
  proxy_ = *std::move(proxy);
  return absl::OkStatus();
}

client::ImClient::Options FaultRun::ClientOptions(
    const std::string& message_address, const std::string& device) const {
  client::ImClient::Options options;
  options.endpoints.auth = cluster_->address(Service::kAuth);
  options.endpoints.message = message_address;
  options.endpoints.history = cluster_->address(Service::kHistory);
  options.endpoints.presence = cluster_->address(Service::kPresence);
  options.device_name = device;
  options.device_kind = auth::v1::DEVICE_KIND_CLI;
  // Short, so a unary send into an outage turns unknown quickly.
  options.rpc_timeout = absl::Seconds(3);
  return options;
}

absl::Status FaultRun::CreateUsersAndConversations() {
  for (int i = 0; i < options_.users; ++i) {
    auto user = std::make_unique<User>();
    user->index = i;
    user->name = absl::StrCat("f", options_.seed, "u", i);
    absl::StatusOr<std::unique_ptr<client::ImClient>> created =
        client::ImClient::Create(ClientOptions(proxy_->address(),
                                               absl::StrCat("harness-", i)));
    if (!created.ok()) return created.status();
    user->client = *std::move(created);
    absl::StatusOr<auth::v1::User> registered =
        user->client->Register(user->name, kPassword);
    if (!registered.ok()) return registered.status();
    user->id = registered->user_id();
    if (absl::Status login = user->client->Login(user->name, kPassword);
        !login.ok()) {
      return login;
    }
    users_.push_back(std::move(user));
  }
  auto add = [&](uint64_t id, std::string label, std::vector<int> members) {
    conversations_.push_back(Conversation{id, std::move(label), members});
    for (int member : members) users_[member]->conversations.push_back(id);
  };
  for (int a = 0; a < options_.users; ++a) {
    for (int b = a + 1; b < options_.users; ++b) {
      absl::StatusOr<v1::Conversation> direct =
          users_[a]->client->GetOrCreateDirect(users_[b]->id);
      if (!direct.ok()) return direct.status();
      add(direct->conversation_id(), absl::StrCat("direct u", a, "-u", b),
          {a, b});
    }
  }
  std::vector<uint64_t> others;
  std::vector<int> everyone = {0};
  for (int i = 1; i < options_.users; ++i) {
    others.push_back(users_[i]->id);
    everyone.push_back(i);
  }
  absl::StatusOr<v1::Conversation> all =
      users_[0]->client->CreateGroup("everyone", others);
  if (!all.ok()) return all.status();
  add(all->conversation_id(), "group everyone", everyone);
  everyone_conversation_ = all->conversation_id();
  if (options_.users >= 3) {
    absl::StatusOr<v1::Conversation> trio = users_[1]->client->CreateGroup(
        "trio", {users_[0]->id, users_[2]->id});
    if (!trio.ok()) return trio.status();
    add(trio->conversation_id(), "group trio", {1, 0, 2});
  }
  return absl::OkStatus();
}

absl::Status FaultRun::StartSessions() {
  for (auto& user : users_) {
    client::ChatSession::Options options;
    options.device.set_name(absl::StrCat("harness-", user->index));
    User* raw = user.get();
    absl::StatusOr<client::ChatSession*> chat = user->client->StartChat(
        options, [this, raw](client::ChatEvent event) {
          OnEvent(*raw, std::move(event));
        });
    if (!chat.ok()) return chat.status();
    user->chat = *chat;
  }
  for (auto& user : users_) {
    if (!user->chat->WaitUntilLive(absl::Seconds(30))) {
      return absl::DeadlineExceededError(
          absl::StrCat(user->name, "'s session did not go live"));
    }
  }
  if (std::find(options_.faults.begin(), options_.faults.end(),
                FaultKind::kStallConsumer) != options_.faults.end()) {
    ConsumerConfig config;
    config.username = users_[0]->name;
    config.password = kPassword;
    config.auth_address = cluster_->address(Service::kAuth);
    // Directly: the proxy would buffer what the stopped process does not
    // read, and the server would never see it fall behind.
    config.message_address = cluster_->address(Service::kMessage);
    config.history_address = cluster_->address(Service::kHistory);
    absl::StatusOr<std::unique_ptr<StalledConsumer>> consumer =
        StalledConsumer::Start(options_.harness_binary, config,
                               absl::StrCat(options_.work_dir, "/consumer.log"),
                               absl::Seconds(60));
    if (!consumer.ok()) return consumer.status();
    consumer_ = *std::move(consumer);
    absl::StatusOr<std::unique_ptr<client::ImClient>> flood_client =
        client::ImClient::Create(ClientOptions(
            cluster_->address(Service::kMessage), "flooder"));
    if (!flood_client.ok()) return flood_client.status();
    flood_client_ = *std::move(flood_client);
    if (absl::Status login = flood_client_->Login(users_[1]->name, kPassword);
        !login.ok()) {
      return login;
    }
  }
  return absl::OkStatus();
}

void FaultRun::OnEvent(User& user, client::ChatEvent event) {
  if (auto* entry = std::get_if<v1::Entry>(&event)) {
    absl::MutexLock lock(&user.mu);
    user.received[entry->conversation_id()].push_back(
        LogEntry{entry->conversation_id(), entry->seq(), entry->sender_id(),
                 entry->client_msg_id(), entry->has_message()});
  } else if (auto* outcome = std::get_if<client::SendOutcome>(&event)) {
    if (outcome->state == client::SendOutcome::State::kPending) return;
    {
      absl::MutexLock lock(&records_mu_);
      auto it = by_id_.find(outcome->client_msg_id);
      if (it != by_id_.end()) {
        SendRecord& record = records_[it->second];
        record.attempts = outcome->attempts;
        if (outcome->state == client::SendOutcome::State::kAcked) {
          record.outcome = SendOutcome::kAcked;
          record.acked_seq = outcome->seq;
        } else {
          record.outcome = SendOutcome::kFailed;
        }
      }
    }
    absl::MutexLock lock(&user.mu);
    --user.pending;
  } else if (auto* change = std::get_if<client::ConnectionChange>(&event)) {
    if (change->state == client::ChatState::kDisconnected) {
      absl::MutexLock lock(&user.mu);
      ++user.disconnects;
    }
  }
}

void FaultRun::SubmitStreamSend(User& user, uint64_t conversation,
                                const std::string& id,
                                const v1::Message& message) {
  {
    absl::MutexLock lock(&user.mu);
    ++user.pending;
  }
  absl::StatusOr<std::string> sent = user.chat->Send(conversation, message, id);
  if (!sent.ok()) {
    // Refused by the session before anything was written.
    absl::MutexLock lock(&records_mu_);
    records_[by_id_[id]].outcome = SendOutcome::kFailed;
    ++refused_locally_;
    absl::MutexLock user_lock(&user.mu);
    --user.pending;
  }
}

bool FaultRun::SubmitUnarySend(client::ImClient& client, uint64_t conversation,
                               const std::string& id,
                               const v1::Message& message) {
  absl::StatusOr<v1::SendAck> ack =
      client.SendUnary(conversation, message, id);
  absl::MutexLock lock(&records_mu_);
  const size_t index = by_id_[id];
  SendRecord& record = records_[index];
  if (ack.ok()) {
    record.outcome = SendOutcome::kAcked;
    record.acked_seq = ack->seq();
  } else if (DefinitelyRefused(ack.status().code())) {
    record.outcome = SendOutcome::kFailed;
  } else {
    record.outcome = SendOutcome::kUnknown;
    unknown_unary_.push_back(index);
  }
  return ack.ok();
}

bool FaultRun::SendOne(User& user, uint64_t conversation, bool unary,
                       size_t text_bytes, client::ImClient* via) {
  // Order numbers follow the session's submission order (the load thread
  // and a flood may both send for one user).
  user.send_mu.Lock();
  const uint64_t order = ++user.next_order;
  const std::string id =
      absl::StrCat("f", options_.seed, "-u", user.index, "-", order);
  v1::Message message;
  std::string text = absl::StrCat(id, " ");
  text.resize(std::max(text.size(), text_bytes), 'x');
  message.set_text(text);
  SendRecord record;
  record.sender = user.id;
  record.conversation = conversation;
  record.client_msg_id = id;
  record.order = order;
  record.ordered = !unary;
  NewRecord(std::move(record));
  if (unary) {
    user.send_mu.Unlock();
    return SubmitUnarySend(via != nullptr ? *via : *user.client, conversation,
                           id, message);
  }
  SubmitStreamSend(user, conversation, id, message);
  user.send_mu.Unlock();
  return false;
}

void FaultRun::LoadLoop(User& user) {
  std::mt19937_64 rng(options_.seed * 1000003 + user.index);
  std::exponential_distribution<double> gap(options_.sends_per_second_per_user);
  std::uniform_real_distribution<double> unit(0, 1);
  std::uniform_int_distribution<size_t> length(8, 600);
  while (!stop_load_.load()) {
    absl::SleepFor(absl::Seconds(std::min(gap(rng), 1.0)));
    {
      absl::MutexLock lock(&user.mu);
      if (user.pending >= kMaxPendingPerUser) continue;
    }
    const uint64_t conversation = user.conversations[std::uniform_int_distribution<
        size_t>(0, user.conversations.size() - 1)(rng)];
    const bool unary = unit(rng) < options_.unary_fraction;
    SendOne(user, conversation, unary, length(rng));
  }
}

// Faults that would end or starve the stalled consumer's stream (it is
// connected straight to the message service; the flood and the load go
// through MariaDB and the proxy).
bool CutsTheStalledStream(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKillMessage:
    case FaultKind::kMysqlRestart:
    case FaultKind::kMysqlKill:
    case FaultKind::kProxyReset:
    case FaultKind::kProxyBlackhole:
      return true;
    default:
      return false;
  }
}

void FaultRun::Inject(const Fault& fault) {
  {
    absl::MutexLock lock(&faults_mu_);
    if (fault.kind == FaultKind::kStallConsumer) {
      stall_active_ = true;
    } else if (CutsTheStalledStream(fault.kind)) {
      // The schedule keeps these off a stall's planned window, but the
      // stall starts only once the consumer is live again, which can push
      // it past that window: wait for it to end instead of ending the
      // stalled stream some other way than by its overflow.
      auto stall_over = [this]() ABSL_SHARED_LOCKS_REQUIRED(faults_mu_) {
        return !stall_active_;
      };
      faults_mu_.Await(absl::Condition(&stall_over));
    }
    ++injected_[fault.kind];
  }
  Log(absl::StrCat("fault ", DescribeFault(fault)));
  // Records how long the service took from the kill to SERVING again
  // (the hold, the supervisor's restart delay and its start-up).
  auto kill_service = [&](Service service) {
    const absl::Time killed_at = absl::Now();
    absl::Status killed = cluster_->Kill(service, SIGKILL, fault.hold);
    if (!killed.ok()) {
      Log(absl::StrCat("  ", killed.ToString()));
      return;
    }
    absl::SleepFor(absl::Milliseconds(50));
    if (cluster_->WaitServing(service, options_.recovery_timeout).ok()) {
      absl::MutexLock lock(&faults_mu_);
      recoveries_[fault.kind].push_back(absl::Now() - killed_at);
    }
  };
  switch (fault.kind) {
    case FaultKind::kKillMessage:
      kill_service(Service::kMessage);
      break;
    case FaultKind::kKillHistory:
      kill_service(Service::kHistory);
      break;
    case FaultKind::kKillPresence:
      kill_service(Service::kPresence);
      break;
    case FaultKind::kKillAuth:
      kill_service(Service::kAuth);
      break;
    case FaultKind::kMysqlRestart:
    case FaultKind::kMysqlKill: {
      const std::string& command = fault.kind == FaultKind::kMysqlKill
                                       ? options_.mysql_kill_cmd
                                       : options_.mysql_stop_cmd;
      if (const int rc = RunShell(command); rc != 0) {
        Log(absl::StrCat("  stopping MariaDB failed (", rc, ")"));
      }
      absl::SleepFor(fault.hold);
      if (const int rc = RunShell(options_.mysql_start_cmd); rc != 0) {
        Log(absl::StrCat("  starting MariaDB failed (", rc, ")"));
      }
      break;
    }
    case FaultKind::kDropStreams: {
      std::mt19937_64 rng(options_.seed + absl::ToInt64Milliseconds(fault.at));
      for (int i = 0; i < fault.count; ++i) {
        users_[std::uniform_int_distribution<size_t>(0, users_.size() - 1)(rng)]
            ->chat->DropStream();
      }
      break;
    }
    case FaultKind::kStallConsumer: {
      if (consumer_ == nullptr) {
        absl::MutexLock lock(&faults_mu_);
        stall_active_ = false;
        break;
      }
      const int64_t before = RssKib(cluster_->pid(Service::kMessage));
      int64_t peak = before;
      if (!consumer_->WaitLive(absl::Seconds(15))) {
        Log("  the consumer is not live; stopping it anyway");
      }
      const int cuts_before = consumer_->cuts();
      const int disconnects_before = consumer_->disconnects();
      consumer_->Stop();
      // The hold counts from the stop, flood included, so the stall ends
      // where the schedule has it end (it keeps other faults off it).
      const absl::Time until = absl::Now() + fault.hold;
      // A burst into the group the consumer is in, so its bounded stream
      // queue overflows whatever the background load is. Unary, straight
      // to the message service: through the flooder's own stream (cut by
      // the burst too) or the proxy it slows to a trickle on a busy
      // machine.
      User& flooder = *users_[1];
      const absl::Time flood_start = absl::Now();
      // Until that many are acked (committed, so routed to the stopped
      // device), whatever the writer's state after earlier faults.
      std::atomic<int> flood_acked{0};
      std::atomic<int> flood_sent{0};
      const absl::Time flood_deadline = until;
      std::vector<std::thread> flood;
      for (int t = 0; t < kStallFloodThreads; ++t) {
        flood.emplace_back([&] {
          while (flood_acked.load() < kStallFloodSends &&
                 absl::Now() < flood_deadline) {
            flood_sent.fetch_add(1);
            if (SendOne(flooder, everyone_conversation_, true, 1000,
                        flood_client_.get())) {
              flood_acked.fetch_add(1);
            }
          }
        });
      }
      for (std::thread& thread : flood) thread.join();
      Log(absl::StrCat("  flood: ", flood_acked.load(), " of ",
                       flood_sent.load(), " sends acked in ",
                       absl::FormatDuration(absl::Now() - flood_start)));
      while (absl::Now() < until) {
        absl::SleepFor(absl::Milliseconds(200));
        peak = std::max(peak, RssKib(cluster_->pid(Service::kMessage)));
      }
      consumer_->Continue();
      // The server ends an overflowing stream once its write in flight
      // completes, so the consumer learns of the cut only after it reads
      // again: keep the faults that wait for the stall off until it has
      // (or its stream ended some other way, or 5 s passed).
      const absl::Time drained_by = absl::Now() + absl::Seconds(5);
      while (consumer_->cuts() == cuts_before &&
             consumer_->disconnects() == disconnects_before &&
             absl::Now() < drained_by) {
        absl::SleepFor(absl::Milliseconds(20));
      }
      absl::MutexLock lock(&faults_mu_);
      stall_active_ = false;
      ++stalls_;
      stall_rss_growth_kib_ = std::max(stall_rss_growth_kib_, peak - before);
      break;
    }
    case FaultKind::kProxyReset:
      proxy_->CutAll();
      break;
    case FaultKind::kProxyBlackhole:
      proxy_->SetBlackholeToClient(true);
      absl::SleepFor(fault.hold);
      proxy_->SetBlackholeToClient(false);
      proxy_->CutAll();
      break;
    case FaultKind::kCount:
      break;
  }
}

void FaultRun::InjectFaults() {
  const std::vector<Fault> schedule =
      MakeSchedule(options_.seed, options_.duration, options_.faults);
  Log(absl::StrCat("schedule: ", schedule.size(), " faults over ",
                   absl::FormatDuration(options_.duration)));
  const absl::Time start = absl::Now();
  std::vector<std::thread> running;
  for (const Fault& fault : schedule) {
    absl::SleepFor(start + fault.at - absl::Now());
    running.emplace_back([this, fault] { Inject(fault); });
  }
  for (std::thread& thread : running) thread.join();
  absl::SleepFor(start + options_.duration - absl::Now());
}

void FaultRun::Heal() {
  proxy_->SetBlackholeToClient(false);
  if (consumer_ != nullptr) consumer_->Continue();
  RunShell(options_.mysql_start_cmd);
}

absl::StatusOr<std::map<uint64_t, uint64_t>> FaultRun::LastSeqs() {
  std::map<uint64_t, uint64_t> last;
  for (const Conversation& conversation : conversations_) {
    User& member = *users_[conversation.members[0]];
    absl::StatusOr<history::v1::GetHistoryResponse> page =
        member.client->GetHistory(conversation.id, 0,
                                  history::v1::DIRECTION_BEFORE, 1);
    if (!page.ok()) return page.status();
    last[conversation.id] = page->last_seq();
  }
  return last;
}

absl::Status FaultRun::WaitSettled() {
  // Services back by themselves (the supervisor restarts what was killed).
  const absl::Time healed = absl::Now();
  absl::Status serving = cluster_->WaitAllServing(options_.recovery_timeout);
  serving_after_ = absl::Now() - healed;
  services_recovered_ = serving.ok();
  if (!serving.ok()) return serving;
  // Sessions reconnect by themselves.
  sessions_recovered_ = true;
  for (auto& user : users_) {
    if (!user->chat->WaitUntilLive(options_.recovery_timeout)) {
      sessions_recovered_ = false;
      return absl::DeadlineExceededError(absl::StrCat(
          user->name, "'s session is not live (",
          client::ChatStateName(user->chat->state()), ")"));
    }
  }
  live_after_ = absl::Now() - healed;
  // Retried sends settle.
  const absl::Time deadline = absl::Now() + options_.recovery_timeout;
  for (;;) {
    int pending = 0;
    for (auto& user : users_) {
      absl::MutexLock lock(&user->mu);
      pending += user->pending;
    }
    if (pending == 0) break;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(pending, " stream sends still pending"));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  sends_settled_ = true;
  return absl::OkStatus();
}

void FaultRun::RetryUnknownUnarySends() {
  std::vector<size_t> unknown;
  {
    absl::MutexLock lock(&records_mu_);
    unknown = unknown_unary_;
  }
  // Every other one: a client retrying with the same id after an unknown
  // outcome must get one stored copy, whatever happened the first time.
  for (size_t i = 0; i < unknown.size(); i += 2) {
    SendRecord record;
    {
      absl::MutexLock lock(&records_mu_);
      record = records_[unknown[i]];
    }
    User* sender = nullptr;
    for (auto& user : users_) {
      if (user->id == record.sender) sender = user.get();
    }
    v1::Message message;
    message.set_text(absl::StrCat(record.client_msg_id, " retry"));
    absl::StatusOr<v1::SendAck> ack = sender->client->SendUnary(
        record.conversation, message, record.client_msg_id);
    ++unary_retried_;
    if (!ack.ok()) continue;
    if (ack->duplicate()) ++unary_retry_duplicates_;
    absl::MutexLock lock(&records_mu_);
    records_[unknown[i]].outcome = SendOutcome::kAcked;
    records_[unknown[i]].acked_seq = ack->seq();
  }
}

absl::StatusOr<std::vector<LogEntry>> FaultRun::PageHistory(
    User& user, uint64_t conversation) {
  std::vector<LogEntry> log;
  uint64_t after = 0;
  for (;;) {
    absl::StatusOr<history::v1::GetHistoryResponse> page =
        user.client->GetHistory(conversation, after,
                                history::v1::DIRECTION_AFTER, 200);
    if (!page.ok()) return page.status();
    for (const v1::Entry& entry : page->entries()) {
      log.push_back(LogEntry{entry.conversation_id(), entry.seq(),
                             entry.sender_id(), entry.client_msg_id(),
                             entry.has_message()});
      after = entry.seq();
    }
    if (!page->has_more()) return log;
  }
}

void FaultRun::PrintSummary(const CheckReport& report, bool verdict) {
  std::printf("\n=== fault run seed %llu: %d users, %zu conversations, "
              "%s of faults\n",
              static_cast<unsigned long long>(options_.seed), options_.users,
              conversations_.size(),
              absl::FormatDuration(options_.duration).c_str());
  std::string faults;
  int total = 0;
  {
    absl::MutexLock lock(&faults_mu_);
    for (const auto& [kind, count] : injected_) {
      absl::StrAppend(&faults, faults.empty() ? "" : ", ", FaultKindName(kind),
                      " ", count);
      total += count;
    }
  }
  std::printf("  faults injected   %d: %s\n", total, faults.c_str());
  {
    absl::MutexLock lock(&faults_mu_);
    std::string recoveries;
    for (const auto& [kind, times] : recoveries_) {
      absl::Duration sum, worst;
      for (absl::Duration time : times) {
        sum += time;
        worst = std::max(worst, time);
      }
      absl::StrAppend(&recoveries, recoveries.empty() ? "" : "; ",
                      FaultKindName(kind), " mean ",
                      absl::FormatDuration(absl::Trunc(
                          sum / static_cast<int64_t>(times.size()),
                          absl::Milliseconds(1))),
                      " max ",
                      absl::FormatDuration(
                          absl::Trunc(worst, absl::Milliseconds(1))));
    }
    std::printf("  kill to SERVING   %s\n", recoveries.c_str());
  }
  std::printf("  sends             %llu: acked %llu, failed %llu, unknown %llu"
              " (unary retried %d, of which already stored %d)\n",
              static_cast<unsigned long long>(report.sends),
              static_cast<unsigned long long>(report.acked),
              static_cast<unsigned long long>(report.failed),
              static_cast<unsigned long long>(report.unknown), unary_retried_,
              unary_retry_duplicates_);
  std::printf("  lost %llu | duplicated %llu | unexpected %llu | "
              "failed-but-stored %llu | recovered %llu\n",
              static_cast<unsigned long long>(report.lost),
              static_cast<unsigned long long>(report.duplicated),
              static_cast<unsigned long long>(report.unexpected),
              static_cast<unsigned long long>(report.failed_but_stored),
              static_cast<unsigned long long>(report.recovered));
  std::printf("  ack seq mismatches %llu | seq gaps %llu | order violations "
              "%llu%s | history divergences %llu | delivery mismatches %llu\n",
              static_cast<unsigned long long>(report.ack_seq_mismatches),
              static_cast<unsigned long long>(report.seq_gaps),
              static_cast<unsigned long long>(report.order_violations),
              options_.require_sender_order ? "" : " (reported only)",
              static_cast<unsigned long long>(report.history_divergences),
              static_cast<unsigned long long>(report.delivery_mismatches));
  std::string services;
  int crashes = 0, gave_up = 0;
  for (Service service : testing::kAllServices) {
    const ServiceCluster::ProcessStats stats = cluster_->stats(service);
    absl::StrAppend(&services, services.empty() ? "" : ", ",
                    testing::ServiceName(service), " ", stats.starts - 1);
    crashes += stats.crashes;
    gave_up += stats.unexpected_exits - stats.crashes;
  }
  std::printf("  services          starts after the first: %s; crashes %d; "
              "non-zero exits (start-up without MariaDB) %d; SERVING %s after "
              "healing\n",
              services.c_str(), crashes, gave_up,
              services_recovered_
                  ? absl::StrCat("within ", absl::FormatDuration(serving_after_))
                        .c_str()
                  : "NOT");
  uint64_t streams = 0, retries = 0, duplicate_acks = 0, gaps = 0;
  for (auto& user : users_) {
    const client::ChatSession::Stats& stats = user->chat_stats;
    streams += stats.streams_opened;
    retries += stats.send_retries;
    duplicate_acks += stats.sends_acked_duplicate;
    gaps += stats.gaps;
  }
  std::printf("  clients           streams opened %llu, send retries %llu, "
              "duplicate acks %llu, gaps filled %llu; live %s after healing\n",
              static_cast<unsigned long long>(streams),
              static_cast<unsigned long long>(retries),
              static_cast<unsigned long long>(duplicate_acks),
              static_cast<unsigned long long>(gaps),
              sessions_recovered_
                  ? absl::StrCat("within ", absl::FormatDuration(live_after_))
                        .c_str()
                  : "NOT");
  if (consumer_ != nullptr) {
    absl::MutexLock lock(&faults_mu_);
    std::printf("  stalled consumer  stalls %d, cut RESOURCE_EXHAUSTED %d "
                "times (disconnects %d), message RSS grew <= %lld KiB "
                "while stalled; caught up: %s\n",
                stalls_, consumer_->cuts(), consumer_->disconnects(),
                static_cast<long long>(stall_rss_growth_kib_),
                consumer_caught_up_ ? "yes" : "NO");
  }
  for (const std::string& problem : report.problems) {
    std::printf("  ! %s\n", problem.c_str());
  }
  std::printf("  RESULT: %s\n\n", verdict ? "PASS" : "FAIL");
  std::fflush(stdout);
}

int FaultRun::Run() {
  Log(absl::StrCat("seed ", options_.seed, ": starting services (logs in ",
                   options_.work_dir, ")"));
  if (absl::Status status = StartServices(); !status.ok()) {
    Log(absl::StrCat("cannot start: ", status.ToString()));
    return 1;
  }
  if (absl::Status status = CreateUsersAndConversations(); !status.ok()) {
    Log(absl::StrCat("cannot set up users: ", status.ToString()));
    return 1;
  }
  if (absl::Status status = StartSessions(); !status.ok()) {
    Log(absl::StrCat("cannot start sessions: ", status.ToString()));
    return 1;
  }
  Log(absl::StrCat(users_.size(), " users, ", conversations_.size(),
                   " conversations; load starts"));
  for (auto& user : users_) {
    User* raw = user.get();
    user->load = std::thread([this, raw] { LoadLoop(*raw); });
  }
  absl::SleepFor(options_.warmup);
  InjectFaults();
  Heal();
  Log("healed; load cools down");
  absl::SleepFor(options_.cooldown);
  stop_load_.store(true);
  for (auto& user : users_) user->load.join();

  bool settled = true;
  if (absl::Status status = WaitSettled(); !status.ok()) {
    Log(absl::StrCat("not settled: ", status.ToString()));
    settled = false;
  }
  std::map<uint64_t, uint64_t> last;
  if (settled) {
    absl::StatusOr<std::map<uint64_t, uint64_t>> seqs = LastSeqs();
    if (seqs.ok()) {
      last = *seqs;
    } else {
      Log(absl::StrCat("cannot read last seqs: ", seqs.status().ToString()));
      settled = false;
    }
  }
  // Every session catches up to what was committed.
  const absl::Time deadline = absl::Now() + options_.recovery_timeout;
  for (auto& user : users_) {
    for (uint64_t conversation : user->conversations) {
      while (settled && user->chat->Cursors()[conversation] < last[conversation] &&
             absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(50));
      }
    }
  }
  std::map<uint64_t, std::vector<LogEntry>> consumer_received;
  if (consumer_ != nullptr) {
    std::map<uint64_t, uint64_t> through;
    for (uint64_t conversation : users_[0]->conversations) {
      through[conversation] = last[conversation];
    }
    absl::Status caught = consumer_->CatchUp(through, absl::Seconds(70));
    consumer_caught_up_ = caught.ok();
    if (!caught.ok()) Log(absl::StrCat("consumer: ", caught.ToString()));
    absl::StatusOr<std::map<uint64_t, std::vector<LogEntry>>> report =
        consumer_->Report(absl::Seconds(30));
    if (report.ok()) {
      consumer_received = *std::move(report);
    } else {
      Log(absl::StrCat("consumer report: ", report.status().ToString()));
      consumer_caught_up_ = false;
    }
  }
  // StopChat destroys the session: keep its counters for the summary.
  for (auto& user : users_) {
    user->chat_stats = user->chat->stats();
    user->chat = nullptr;
    user->client->StopChat();
  }
  RetryUnknownUnarySends();

  // Every member pages the whole log of every conversation.
  std::vector<MemberView> views;
  for (const Conversation& conversation : conversations_) {
    for (int member : conversation.members) {
      User& user = *users_[member];
      MemberView view;
      view.name = absl::StrCat(user.name, " (", conversation.label, ")");
      view.conversation = conversation.id;
      absl::StatusOr<std::vector<LogEntry>> history =
          PageHistory(user, conversation.id);
      if (!history.ok()) {
        Log(absl::StrCat("cannot page ", view.name, ": ",
                         history.status().ToString()));
        settled = false;
        continue;
      }
      view.history = *std::move(history);
      {
        absl::MutexLock lock(&user.mu);
        view.received = user.received[conversation.id];
      }
      view.required_through = last[conversation.id];
      views.push_back(view);
      if (member == 0 && consumer_ != nullptr) {
        view.name = absl::StrCat(user.name, " consumer device (",
                                 conversation.label, ")");
        view.received = consumer_received[conversation.id];
        views.push_back(std::move(view));
      }
    }
  }
  std::vector<SendRecord> records;
  {
    absl::MutexLock lock(&records_mu_);
    records = records_;
  }
  const CheckReport report = CheckQueue(records, views);
  int crashes = 0;
  for (Service service : testing::kAllServices) {
    crashes += cluster_->stats(service).crashes;
  }
  bool stall_cut = true;
  if (consumer_ != nullptr) {
    absl::MutexLock lock(&faults_mu_);
    stall_cut = stalls_ == 0 || consumer_->cuts() > 0;
  }
  bool every_kind = true;
  {
    absl::MutexLock lock(&faults_mu_);
    for (FaultKind kind : options_.faults) {
      if (injected_[kind] == 0) {
        every_kind = false;
        Log(absl::StrCat("fault ", FaultKindName(kind), " never injected"));
      }
    }
  }
  CheckReport judged = report;
  if (!options_.require_sender_order) judged.order_violations = 0;
  const bool verdict = judged.ok() && settled && services_recovered_ &&
                       every_kind &&
                       sessions_recovered_ && sends_settled_ && crashes == 0 &&
                       stall_cut && (consumer_ == nullptr || consumer_caught_up_);
  PrintSummary(report, verdict);
  cluster_->Stop();
  return verdict ? 0 : 1;
}

}  // namespace

int RunFaultRun(const FaultRunOptions& options) {
  FaultRun run(options);
  return run.Run();
}

}  // namespace im::faults
