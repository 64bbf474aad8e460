#include "tests/support/service_cluster.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/common/health_probe.h"

namespace im::testing {
namespace {

size_t Index(Service service) { return static_cast<size_t>(service); }

}  // namespace

const char* ServiceName(Service service) {
  switch (service) {
    case Service::kAuth:
      return "auth";
    case Service::kPresence:
      return "presence";
    case Service::kMessage:
      return "message";
    case Service::kHistory:
      return "history";
  }
  return "?";
}

const char* HealthName(Service service) {
  switch (service) {
    case Service::kAuth:
      return "im.auth.v1.AuthService";
    case Service::kPresence:
      return "im.presence.v1.PresenceService";
    case Service::kMessage:
      return "im.message.v1.MessageService";
    case Service::kHistory:
      return "im.history.v1.HistoryService";
  }
  return "?";
}

absl::StatusOr<int> PickFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const int error = errno;
    close(fd);
    return absl::InternalError(std::strerror(error));
  }
  close(fd);
  return ntohs(address.sin_port);
}

absl::StatusOr<std::unique_ptr<ServiceCluster>> ServiceCluster::Start(
    const Options& options) {
  std::unique_ptr<ServiceCluster> cluster(new ServiceCluster(options));
  std::error_code error;
  std::filesystem::create_directories(options.work_dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create ", options.work_dir, ": ", error.message()));
  }
  cluster->key_file_ = absl::StrCat(options.work_dir, "/token_keys");
  {
    std::ofstream out(cluster->key_file_, std::ios::trunc);
    out << TokenCodec::GenerateKeyFile(1);
    if (!out) return absl::InternalError("cannot write the token key file");
  }
  absl::StatusOr<std::unique_ptr<TokenCodec>> codec =
      TokenCodec::FromKeyFile(cluster->key_file_);
  if (!codec.ok()) return codec.status();
  cluster->codec_ = *std::move(codec);

  std::array<std::string, 4> metrics;
  for (Service service : kAllServices) {
    for (std::string* address :
         {&cluster->addresses_[Index(service)], &metrics[Index(service)]}) {
      absl::StatusOr<int> port = PickFreePort();
      if (!port.ok()) return port.status();
      *address = absl::StrCat("127.0.0.1:", *port);
    }
  }
  const std::string& auth = cluster->address(Service::kAuth);
  for (Service service : kAllServices) {
    auto process = std::make_unique<Supervised>();
    process->service = service;
    process->log_file =
        absl::StrCat(options.work_dir, "/", ServiceName(service), ".log");
    std::vector<std::string>& argv = process->argv;
    argv = {options.binaries[Index(service)],
            absl::StrCat("--listen=", cluster->address(service)),
            absl::StrCat("--metrics_listen=", metrics[Index(service)]),
            absl::StrCat("--mysql_dsn=", options.mysql_dsn),
            absl::StrCat("--token_key_file=", cluster->key_file_),
            absl::StrCat("--log_level=", options.log_level)};
    switch (service) {
      case Service::kAuth:
        break;
      case Service::kPresence:
        argv.push_back(absl::StrCat("--auth_addr=", auth));
        break;
      case Service::kMessage:
        argv.push_back(absl::StrCat("--auth_addr=", auth));
        argv.push_back(absl::StrCat("--presence_addr=",
                                    cluster->address(Service::kPresence)));
        argv.push_back("--node_id=message-test");
        break;
      case Service::kHistory:
        argv.push_back(absl::StrCat("--auth_addr=", auth));
        argv.push_back(absl::StrCat("--message_addr=",
                                    cluster->address(Service::kMessage)));
        break;
    }
    for (const std::string& flag : options.extra_flags[Index(service)]) {
      argv.push_back(flag);
    }
    cluster->processes_[Index(service)] = std::move(process);
  }
  for (auto& process : cluster->processes_) {
    Supervised* raw = process.get();
    ServiceCluster* self = cluster.get();
    process->thread = std::thread([self, raw] { self->Supervise(raw); });
  }
  return cluster;
}

ServiceCluster::~ServiceCluster() { Stop(); }

void ServiceCluster::Supervise(Supervised* process) {
  // Prepared before fork: the child may only make async-signal-safe calls.
  std::vector<char*> argv;
  for (std::string& arg : process->argv) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::string log_file = process->log_file;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      // Waits out a requested downtime (or the restart delay).
      while (!stopping_ && absl::Now() < process->restart_not_before) {
        changed_.WaitWithDeadline(&mu_, process->restart_not_before);
      }
      if (stopping_) return;
    }
    const pid_t pid = fork();
    if (pid == 0) {
      // The service dies with its supervisor thread, so an aborted test
      // leaves nothing behind.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int log = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (log >= 0) {
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
      }
      const int null = open("/dev/null", O_RDONLY);
      if (null >= 0) dup2(null, STDIN_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    {
      absl::MutexLock lock(&mu_);
      if (pid < 0) {
        process->restart_not_before = absl::Now() + options_.restart_delay;
        continue;
      }
      process->pid = pid;
      ++process->stats.starts;
      // Stop() may have run between the check above and the fork.
      if (stopping_) kill(pid, SIGTERM);
      changed_.SignalAll();
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    absl::MutexLock lock(&mu_);
    process->pid = 0;
    ++process->stats.exits;
    if (!process->exit_expected && !stopping_) {
      ++process->stats.unexpected_exits;
      if (WIFSIGNALED(status)) ++process->stats.crashes;
      process->stats.last_unexpected_status = status;
      std::ofstream(log_file, std::ios::app)
          << "service_cluster: " << ServiceName(process->service)
          << " exited unexpectedly, wait status " << status << "\n";
    }
    process->exit_expected = false;
    process->restart_not_before =
        std::max(process->restart_not_before,
                 absl::Now() + options_.restart_delay);
    changed_.SignalAll();
  }
}

void ServiceCluster::Stop(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& process : processes_) {
      if (process != nullptr && process->pid > 0) kill(process->pid, SIGTERM);
    }
    changed_.SignalAll();
    const absl::Time deadline = absl::Now() + grace;
    auto all_down = [this] {
      for (auto& process : processes_) {
        if (process != nullptr && process->pid > 0) return false;
      }
      return true;
    };
    while (!all_down() && absl::Now() < deadline) {
      changed_.WaitWithDeadline(&mu_, deadline);
    }
    for (auto& process : processes_) {
      if (process != nullptr && process->pid > 0) kill(process->pid, SIGKILL);
    }
  }
  for (auto& process : processes_) {
    if (process != nullptr && process->thread.joinable()) {
      process->thread.join();
    }
  }
}

const std::string& ServiceCluster::address(Service service) const {
  return addresses_[Index(service)];
}

absl::Status ServiceCluster::WaitServing(Service service,
                                         absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  // Reconnect quickly: the default backoff (1 s, growing) after a refused
  // connection would inflate the measured recovery time.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
  auto channel = grpc::CreateCustomChannel(
      address(service), grpc::InsecureChannelCredentials(), args);
  std::string last = "no answer";
  while (absl::Now() < deadline) {
    absl::StatusOr<HealthStatus> health =
        CheckHealth(channel, HealthName(service), absl::Seconds(1));
    if (health.ok() && *health == HealthStatus::kServing) {
      return absl::OkStatus();
    }
    last = health.ok() ? std::string(HealthStatusName(*health))
                       : health.status().ToString();
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(ServiceName(service), " not SERVING within ",
                   absl::FormatDuration(timeout), " (last: ", last, ")"));
}

absl::Status ServiceCluster::WaitAllServing(absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  for (Service service : kAllServices) {
    absl::Status status =
        WaitServing(service, std::max(deadline - absl::Now(), absl::Seconds(1)));
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status ServiceCluster::Kill(Service service, int signal,
                                  absl::Duration down_for) {
  absl::MutexLock lock(&mu_);
  Supervised& process = *processes_[Index(service)];
  if (process.pid <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(ServiceName(service), " is not running"));
  }
  if (signal == SIGKILL || signal == SIGTERM) {
    process.exit_expected = true;
    process.restart_not_before = absl::Now() + down_for;
  }
  if (kill(process.pid, signal) != 0) {
    return absl::InternalError(std::strerror(errno));
  }
  return absl::OkStatus();
}

pid_t ServiceCluster::pid(Service service) const {
  absl::MutexLock lock(&mu_);
  return processes_[Index(service)]->pid;
}

ServiceCluster::ProcessStats ServiceCluster::stats(Service service) const {
  absl::MutexLock lock(&mu_);
  return processes_[Index(service)]->stats;
}

}  // namespace im::testing
