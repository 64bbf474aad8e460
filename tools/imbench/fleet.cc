#include "tools/imbench/fleet.h"

#include <arpa/inet.h>
#include <grpcpp/create_channel_posix.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "services/common/grpc_server.h"

namespace im::imbench {
namespace {

// A connection from 127.0.0.<source> to `address` (IPv4 host:port), made
// here so the source address can be chosen, handed to gRPC as a channel.
absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelFromSource(
    const std::string& address, int source) {
  std::vector<std::string> parts = absl::StrSplit(address, ':');
  int port = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &port)) {
    return absl::InvalidArgumentError("need host:port, got " + address);
  }
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(static_cast<uint16_t>(port));
  const std::string host = parts[0] == "localhost" ? "127.0.0.1" : parts[0];
  if (inet_pton(AF_INET, host.c_str(), &target.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        "--source_addresses needs an IPv4 message address, got " + address);
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::ResourceExhaustedError(strerror(errno));
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_port = 0;
  local.sin_addr.s_addr = htonl((127u << 24) | static_cast<uint32_t>(source));
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof(target)) != 0) {
    const std::string error = strerror(errno);
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("connect from 127.0.0.", source, ": ", error));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  return grpc::CreateCustomInsecureChannelFromFd(address, fd, args);
}

}  // namespace

absl::Status Fleet::ParallelFor(int count, int threads,
                                const std::function<absl::Status(int)>& fn) {
  std::atomic<int> next{0};
  absl::Mutex mu;
  absl::Status first;
  std::vector<std::thread> workers;
  for (int t = 0; t < std::max(1, threads); ++t) {
    workers.emplace_back([&] {
      for (int i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
        absl::Status status = fn(i);
        if (!status.ok()) {
          absl::MutexLock lock(&mu);
          if (first.ok()) first = status;
          next.store(count);
        }
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  return first;
}

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::Create(
    const FleetOptions& options, int expected_streams) {
  std::unique_ptr<Fleet> fleet(new Fleet(options));
  client::ClientRuntime::Options runtime;
  runtime.worker_threads = options.runtime_threads;
  fleet->runtime_ = client::ClientRuntime::Make(runtime);
  if (absl::Status status = fleet->MakeChannels(expected_streams);
      !status.ok()) {
    return status;
  }
  return fleet;
}

absl::Status Fleet::MakeChannels(int expected_streams) {
  absl::StatusOr<client::Channels> shared =
      client::Channels::Connect(options_.endpoints);
  if (!shared.ok()) return shared.status();
  shared_ = *std::move(shared);
  int count = options_.message_channels;
  if (count <= 0) {
    count = std::max(1, (expected_streams + options_.streams_per_channel - 1) /
                            std::max(1, options_.streams_per_channel));
  }
  std::vector<std::string> nodes;
  if (options_.pin_users_to_nodes) {
    nodes = absl::StrSplit(options_.endpoints.message, ',');
    pinned_nodes_ = static_cast<int>(nodes.size());
    count = (count + pinned_nodes_ - 1) / pinned_nodes_ * pinned_nodes_;
  }
  for (int i = 0; i < count; ++i) {
    if (pinned_nodes_ > 0) {
      grpc::ChannelArguments args;
      args.SetInt("grpc.use_local_subchannel_pool", 1);
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(
          nodes[i % pinned_nodes_], options_.endpoints.tls, args);
      if (!channel.ok()) return channel.status();
      message_channels_.push_back(*std::move(channel));
      continue;
    }
    if (options_.source_addresses > 0) {
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
          ChannelFromSource(options_.endpoints.message,
                            1 + i % options_.source_addresses);
      if (!channel.ok()) return channel.status();
      message_channels_.push_back(*std::move(channel));
      continue;
    }
    // A local subchannel pool gives each channel its own connection.
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        MakeChannel(options_.endpoints.message, options_.endpoints.tls, args);
    if (!channel.ok()) return channel.status();
    message_channels_.push_back(*std::move(channel));
  }
  return absl::OkStatus();
}

Fleet::~Fleet() {
  StopStreams();
  clients_.clear();
}

std::string Fleet::username(int index) const {
  return absl::StrCat(options_.user_prefix, "-", index);
}

namespace {

// Runs `call` again while the server answers RESOURCE_EXHAUSTED (the
// credential queue is full, or a throttle: registrations of taken names and
// failed logins per address), backing off up to about 2 minutes in all.
absl::Status RetryWhileThrottled(const std::function<absl::Status()>& call) {
  absl::Status status = call();
  for (int attempt = 0; absl::IsResourceExhausted(status) && attempt < 50;
       ++attempt) {
    absl::SleepFor(absl::Milliseconds(200 + 100 * attempt));
    status = call();
  }
  return status;
}

}  // namespace

absl::Status Fleet::SignIn(int count) {
  const int first = static_cast<int>(clients_.size());
  if (count <= first) return absl::OkStatus();
  clients_.resize(count);
  user_ids_.resize(count);
  return ParallelFor(count - first, options_.setup_threads, [&](int offset) {
    const int index = first + offset;
    client::ImClient::Options options;
    options.endpoints = options_.endpoints;
    options.device_name = absl::StrCat("imbench-", index);
    options.device_kind = auth::v1::DEVICE_KIND_SERVER;
    options.rpc_timeout = options_.rpc_timeout;
    absl::StatusOr<std::unique_ptr<client::ImClient>> made =
        client::ImClient::Create(options, &shared_, runtime_);
    if (!made.ok()) return made.status();
    const std::string name = username(index);
    absl::Status registered = RetryWhileThrottled([&] {
      return (*made)->Register(name, options_.password, name).status();
    });
    if (!registered.ok() && !absl::IsAlreadyExists(registered)) {
      return absl::Status(
          registered.code(),
          absl::StrCat("register ", name, ": ", registered.message()));
    }
    absl::Status login = RetryWhileThrottled(
        [&] { return (*made)->Login(name, options_.password); });
    if (!login.ok()) {
      return absl::Status(login.code(),
                          absl::StrCat("login ", name, ": ", login.message()));
    }
    user_ids_[index] = (*made)->user_id();
    clients_[index] = *std::move(made);
    return absl::OkStatus();
  });
}

absl::StatusOr<client::ChatSession*> Fleet::OpenStream(
    int index, client::ChatSession::Options options,
    client::ChatSession::EventCallback callback) {
  client::ImClient& owner = *clients_[index];
  client::ChatSession::Dependencies deps;
  size_t channel = next_channel_.fetch_add(1) % message_channels_.size();
  if (pinned_nodes_ > 0) {
    channel = channel / pinned_nodes_ * pinned_nodes_ +
              static_cast<size_t>(index % pinned_nodes_);
  }
  deps.message_channel = message_channels_[channel];
  deps.history_channel = shared_.history;
  deps.tokens = &owner.tokens();
  deps.runtime = runtime_;
  if (options.device.name().empty()) {
    options.device.set_kind(auth::v1::DEVICE_KIND_SERVER);
    options.device.set_name(absl::StrCat("imbench-", index));
  }
  absl::StatusOr<std::unique_ptr<client::ChatSession>> session =
      client::ChatSession::Create(options, std::move(deps),
                                  std::move(callback));
  if (!session.ok()) return session.status();
  client::ChatSession* started = session->get();
  {
    absl::MutexLock lock(&streams_mu_);
    streams_.push_back(*std::move(session));
  }
  started->Start();
  return started;
}

void Fleet::CloseStream(client::ChatSession* stream) {
  std::unique_ptr<client::ChatSession> closing;
  {
    absl::MutexLock lock(&streams_mu_);
    for (auto& owned : streams_) {
      if (owned.get() == stream) {
        closing = std::move(owned);
        owned = std::move(streams_.back());
        streams_.pop_back();
        break;
      }
    }
  }
  if (closing != nullptr) closing->Stop();
}

void Fleet::StopStreams() {
  std::vector<std::unique_ptr<client::ChatSession>> streams;
  {
    absl::MutexLock lock(&streams_mu_);
    streams.swap(streams_);
  }
  for (auto& stream : streams) stream->Stop();
}

}  // namespace im::imbench
