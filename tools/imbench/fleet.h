#ifndef IM_TOOLS_IMBENCH_FLEET_H_
#define IM_TOOLS_IMBENCH_FLEET_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "clients/cpp/chat_session.h"
#include "clients/cpp/im_client.h"

namespace im::imbench {

struct FleetOptions {
  client::Endpoints endpoints;
  // Users are <user_prefix>-<index>; existing ones are reused (same
  // password).
  std::string user_prefix = "imbench";
  std::string password = "imbench-password-1";
  // Connections to the message service the streams are spread over; 0 =
  // one per `streams_per_channel` streams.
  int message_channels = 0;
  int streams_per_channel = 100;
  // > 0: each message connection is bound to 127.0.0.<1..N> (a fresh
  // source address range for ports; plaintext only, no reconnect of the
  // connection itself: a broken one fails its streams).
  int source_addresses = 0;
  // With several nodes in endpoints.message ("a,b"): user i's streams go
  // to node i % nodes (in `direct` the two users of a pair then sit on
  // different nodes: every delivery crosses nodes) instead of round robin.
  bool pin_users_to_nodes = false;
  // Parallel sign-ins (argon2 on the server bounds them anyway).
  int setup_threads = 8;
  int runtime_threads = 4;
  absl::Duration rpc_timeout = absl::Seconds(30);
};

// Many signed-in users and their Chat streams in one process, on shared
// channels and one client runtime: every session is the client library's
// (ImClient for sign-in and calls, ChatSession for streams).
class Fleet {
 public:
  static absl::StatusOr<std::unique_ptr<Fleet>> Create(
      const FleetOptions& options, int expected_streams);
  // Stops every stream, then the clients.
  ~Fleet();

  // Registers (or reuses) users [0, count) and signs each in.
  absl::Status SignIn(int count);
  int users() const { return static_cast<int>(clients_.size()); }
  client::ImClient& user(int index) { return *clients_[index]; }
  uint64_t user_id(int index) const { return user_ids_[index]; }
  std::string username(int index) const;

  // A new stream for user `index` on the next message channel (round
  // robin). Starts it at once.
  absl::StatusOr<client::ChatSession*> OpenStream(
      int index, client::ChatSession::Options options,
      client::ChatSession::EventCallback callback);
  // Stops one stream and forgets it (blocking).
  void CloseStream(client::ChatSession* stream);
  // Stops and forgets every stream (blocking).
  void StopStreams();
  int message_channels() const { return static_cast<int>(message_channels_.size()); }

  // Runs fn(i) for i in [0, count) on `threads` threads; the first error.
  static absl::Status ParallelFor(int count, int threads,
                                  const std::function<absl::Status(int)>& fn);

 private:
  Fleet(const FleetOptions& options) : options_(options) {}
  absl::Status MakeChannels(int expected_streams);

  const FleetOptions options_;
  std::shared_ptr<client::ClientRuntime> runtime_;
  client::Channels shared_;
  std::vector<std::shared_ptr<grpc::Channel>> message_channels_;
  std::vector<std::unique_ptr<client::ImClient>> clients_;
  std::vector<uint64_t> user_ids_;
  absl::Mutex streams_mu_;
  std::vector<std::unique_ptr<client::ChatSession>> streams_
      ABSL_GUARDED_BY(streams_mu_);
  std::atomic<uint64_t> next_channel_{0};
  // pin_users_to_nodes: message_channels_ holds pinned_nodes_ channels per
  // round, channel c going to node c % pinned_nodes_; 0 when not pinned.
  int pinned_nodes_ = 0;
};

// Stops a fleet's streams when it goes out of scope. Declare it after
// whatever the streams' callbacks use, so that outlives the streams on
// every return path.
class StopStreamsOnExit {
 public:
  explicit StopStreamsOnExit(Fleet& fleet) : fleet_(fleet) {}
  ~StopStreamsOnExit() { fleet_.StopStreams(); }
  StopStreamsOnExit(const StopStreamsOnExit&) = delete;
  StopStreamsOnExit& operator=(const StopStreamsOnExit&) = delete;

 private:
  Fleet& fleet_;
};

}  // namespace im::imbench

#endif  // IM_TOOLS_IMBENCH_FLEET_H_
