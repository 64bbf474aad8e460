#include "tests/faults/stalled_consumer.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <utility>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "clients/cpp/chat_session.h"
#include "clients/cpp/im_client.h"
#include "spdlog/spdlog.h"

namespace im::faults {
namespace {

namespace v1 = ::im::message::v1;

// Lines to the parent; the session's callback and the main thread both
// write.
class LineWriter {
 public:
  void Write(const std::string& line) {
    absl::MutexLock lock(&mu_);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

 private:
  absl::Mutex mu_;
};

}  // namespace

int RunConsumerProcess(const ConsumerConfig& config) {
  spdlog::set_level(spdlog::level::warn);
  LineWriter out;
  client::ImClient::Options options;
  options.endpoints.auth = config.auth_address;
  options.endpoints.message = config.message_address;
  options.endpoints.history = config.history_address;
  options.endpoints.presence = config.auth_address;  // never called
  options.device_name = "stalled-consumer";
  options.device_kind = auth::v1::DEVICE_KIND_CLI;
  options.rpc_timeout = absl::Seconds(5);
  // A small flow-control window that never grows: while this process is
  // stopped, the server can park little in the transport, so its own
  // bounded queue is what fills up.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8192);
  absl::StatusOr<client::Channels> channels =
      client::Channels::Connect(options.endpoints, &args);
  if (!channels.ok()) {
    std::cerr << "consumer: " << channels.status() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<client::ImClient>> im =
      client::ImClient::Create(options, &*channels);
  if (!im.ok()) {
    std::cerr << "consumer: " << im.status() << "\n";
    return 2;
  }
  absl::Status login;
  for (int attempt = 0; attempt < 30; ++attempt) {
    login = (*im)->Login(config.username, config.password);
    if (login.ok()) break;
    absl::SleepFor(absl::Milliseconds(500));
  }
  if (!login.ok()) {
    std::cerr << "consumer: login: " << login << "\n";
    return 2;
  }

  absl::Mutex mu;
  std::map<uint64_t, std::vector<LogEntry>> received;
  client::ChatSession::Options chat_options;
  chat_options.device.set_name("stalled-consumer");
  absl::StatusOr<client::ChatSession*> chat = (*im)->StartChat(
      chat_options, [&](client::ChatEvent event) {
        if (auto* entry = std::get_if<v1::Entry>(&event)) {
          absl::MutexLock lock(&mu);
          received[entry->conversation_id()].push_back(
              LogEntry{entry->conversation_id(), entry->seq(),
                       entry->sender_id(), entry->client_msg_id(),
                       entry->has_message()});
        } else if (auto* change = std::get_if<client::ConnectionChange>(&event)) {
          if (change->state == client::ChatState::kLive) out.Write("live");
          if (change->state == client::ChatState::kDisconnected ||
              change->state == client::ChatState::kSessionLost) {
            const std::string line = absl::StrCat(
                "disconnected ", static_cast<int>(change->status.code()), " ",
                change->status.message());
            std::cerr << absl::FormatTime(absl::Now()) << " " << line << "\n";
            out.Write(line);
          }
        }
      });
  if (!chat.ok()) {
    std::cerr << "consumer: " << chat.status() << "\n";
    return 2;
  }
  if (!(*chat)->WaitUntilLive(absl::Seconds(60))) {
    std::cerr << "consumer: the session did not go live\n";
    return 2;
  }
  out.Write("ready");

  std::string line;
  while (std::getline(std::cin, line)) {
    if (absl::StartsWith(line, "catchup")) {
      std::map<uint64_t, uint64_t> through;
      for (absl::string_view pair :
           absl::StrSplit(line.substr(7), ' ', absl::SkipEmpty())) {
        std::pair<std::string, std::string> parts = absl::StrSplit(pair, ':');
        uint64_t conversation = 0, seq = 0;
        if (absl::SimpleAtoi(parts.first, &conversation) &&
            absl::SimpleAtoi(parts.second, &seq)) {
          through[conversation] = seq;
        }
      }
      const absl::Time deadline = absl::Now() + absl::Seconds(60);
      bool caught = false;
      while (!caught && absl::Now() < deadline) {
        const absl::flat_hash_map<uint64_t, uint64_t> cursors =
            (*chat)->Cursors();
        caught = true;
        for (const auto& [conversation, seq] : through) {
          auto it = cursors.find(conversation);
          if (it == cursors.end() || it->second < seq) caught = false;
        }
        if (!caught) absl::SleepFor(absl::Milliseconds(100));
      }
      out.Write(caught ? "caught" : "behind");
    } else if (line == "report") {
      (*im)->StopChat();
      absl::MutexLock lock(&mu);
      for (const auto& [conversation, entries] : received) {
        for (const LogEntry& entry : entries) {
          out.Write(absl::StrCat("entry ", entry.conversation, " ", entry.seq,
                                 " ", entry.sender, " ",
                                 entry.is_message ? 1 : 0, " ",
                                 entry.client_msg_id));
        }
      }
      out.Write("end");
      return 0;
    }
  }
  return 0;
}

absl::StatusOr<std::unique_ptr<StalledConsumer>> StalledConsumer::Start(
    const std::string& binary, const ConsumerConfig& config,
    const std::string& log_file, absl::Duration timeout) {
  std::vector<std::string> args = {
      binary,
      "--role=consumer",
      absl::StrCat("--consumer_username=", config.username),
      absl::StrCat("--consumer_password=", config.password),
      absl::StrCat("--consumer_auth=", config.auth_address),
      absl::StrCat("--consumer_message=", config.message_address),
      absl::StrCat("--consumer_history=", config.history_address)};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  int to_child[2], from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) {
    return absl::InternalError("pipe failed");
  }
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(to_child[0], STDIN_FILENO);
    dup2(from_child[1], STDOUT_FILENO);
    const int log = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) dup2(log, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  std::unique_ptr<StalledConsumer> consumer(new StalledConsumer());
  consumer->pid_ = pid;
  consumer->to_child_ = to_child[1];
  consumer->from_child_ = from_child[0];
  StalledConsumer* raw = consumer.get();
  consumer->reader_ = std::thread([raw] { raw->ReadLines(); });
  absl::StatusOr<std::string> ready = consumer->AwaitLine(timeout);
  if (!ready.ok()) return ready.status();
  if (*ready != "ready") {
    return absl::InternalError(absl::StrCat("consumer said: ", *ready));
  }
  return consumer;
}

StalledConsumer::~StalledConsumer() {
  if (pid_ > 0) {
    kill(pid_, SIGCONT);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (to_child_ >= 0) close(to_child_);
  if (reader_.joinable()) reader_.join();
  if (from_child_ >= 0) close(from_child_);
}

void StalledConsumer::Stop() const { kill(pid_, SIGSTOP); }
void StalledConsumer::Continue() const { kill(pid_, SIGCONT); }

int StalledConsumer::cuts() const {
  absl::MutexLock lock(&mu_);
  return cuts_;
}

int StalledConsumer::disconnects() const {
  absl::MutexLock lock(&mu_);
  return disconnects_;
}

void StalledConsumer::ReadLines() {
  std::string pending;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(from_child_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer, static_cast<size_t>(n));
    size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      absl::MutexLock lock(&mu_);
      if (line == "live") {
        live_ = true;
      } else if (absl::StartsWith(line, "disconnected ")) {
        live_ = false;
        ++disconnects_;
        if (absl::StartsWith(line, "disconnected 8 ")) ++cuts_;
      } else {
        lines_.push_back(std::move(line));
      }
    }
  }
  absl::MutexLock lock(&mu_);
  eof_ = true;
}

bool StalledConsumer::WaitLive(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto live = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return live_; };
  return mu_.AwaitWithTimeout(absl::Condition(&live), timeout);
}

absl::StatusOr<std::string> StalledConsumer::AwaitLine(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !lines_.empty() || eof_;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
    return absl::DeadlineExceededError("the consumer did not answer in time");
  }
  if (lines_.empty()) {
    return absl::UnavailableError("the consumer exited");
  }
  std::string line = std::move(lines_.front());
  lines_.erase(lines_.begin());
  return line;
}

void StalledConsumer::Send(const std::string& line) {
  const std::string data = line + "\n";
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(to_child_, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

absl::Status StalledConsumer::CatchUp(const std::map<uint64_t, uint64_t>& through,
                                      absl::Duration timeout) {
  std::string line = "catchup";
  for (const auto& [conversation, seq] : through) {
    absl::StrAppend(&line, " ", conversation, ":", seq);
  }
  Send(line);
  absl::StatusOr<std::string> answer = AwaitLine(timeout);
  if (!answer.ok()) return answer.status();
  if (*answer != "caught") {
    return absl::DeadlineExceededError(
        absl::StrCat("the consumer did not catch up (", *answer, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<uint64_t, std::vector<LogEntry>>>
StalledConsumer::Report(absl::Duration timeout) {
  Send("report");
  std::map<uint64_t, std::vector<LogEntry>> received;
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    absl::StatusOr<std::string> line = AwaitLine(deadline - absl::Now());
    if (!line.ok()) return line.status();
    if (*line == "end") break;
    std::vector<std::string> parts =
        absl::StrSplit(*line, absl::MaxSplits(' ', 5));
    LogEntry entry;
    int is_message = 0;
    if (parts.size() < 5 || parts[0] != "entry" ||
        !absl::SimpleAtoi(parts[1], &entry.conversation) ||
        !absl::SimpleAtoi(parts[2], &entry.seq) ||
        !absl::SimpleAtoi(parts[3], &entry.sender) ||
        !absl::SimpleAtoi(parts[4], &is_message)) {
      return absl::InternalError(absl::StrCat("bad report line: ", *line));
    }
    entry.is_message = is_message != 0;
    entry.client_msg_id = parts.size() > 5 ? parts[5] : "";
    received[entry.conversation].push_back(entry);
  }
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = 0;
  return received;
}

}  // namespace im::faults
