#ifndef IM_SERVICES_MESSAGE_TESTING_MESSAGE_TEST_ENV_H_
#define IM_SERVICES_MESSAGE_TESTING_MESSAGE_TEST_ENV_H_

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "im/message/v1/message.grpc.pb.h"
#include "services/common/access_token.h"
#include "services/common/authenticator.h"
#include "services/common/grpc_server.h"
#include "services/message/message_service.h"
#include "services/presence/fake_device_presence_reporter.h"
#include "storage/database.h"

// An in-process message service on a loopback port over a fresh database,
// and test clients that talk to it over real gRPC.

namespace im::message::testing {

namespace v1 = ::im::message::v1;

// Makes a fresh, empty database per test (the fake, or MariaDB); null after
// reporting a test failure.
struct BackendFactory {
  std::string name;
  std::function<std::unique_ptr<storage::Database>()> make;
};

inline std::ostream& operator<<(std::ostream& os, const BackendFactory& f) {
  return os << f.name;
}

class MessageTestEnv {
 public:
  // Options suited to tests: generous rate limits, small pages.
  static MessageServiceOptions DefaultOptions();

  // Null (after a test failure) when the database or server cannot start.
  static std::unique_ptr<MessageTestEnv> Start(
      std::unique_ptr<storage::Database> db,
      const MessageServiceOptions& options = DefaultOptions());
  ~MessageTestEnv();

  storage::Database& db() { return *db_; }
  MessageServiceImpl& service() { return *service_; }
  RevocationSet& revocations() { return revocations_; }
  // Verifies the tokens Token() mints (for other services under test that
  // must accept the same callers).
  const Authenticator& authenticator() const { return *authenticator_; }
  presence::FakeDevicePresenceReporter& presence() { return presence_; }
  const std::string& address() const { return server_->address(); }

  // A person; returns the user id.
  uint64_t CreateUser(const std::string& name);
  // A service account; returns its user id.
  uint64_t CreateServiceAccount(const std::string& name);
  // An access token for `user_id` on device `session_id`.
  std::string Token(uint64_t user_id, uint64_t session_id,
                    auth::v1::Role role = auth::v1::ROLE_USER,
                    absl::Duration ttl = absl::Hours(1));
  // A new channel (its own connection) to the server.
  std::shared_ptr<grpc::Channel> NewChannel();
  // A stub on the shared channel.
  std::unique_ptr<v1::MessageService::Stub> Stub();

  // Creates a group owned by `owner` through the API; returns its id.
  uint64_t CreateGroup(const std::string& owner_token,
                       const std::vector<uint64_t>& members,
                       const std::string& title = "group");
  uint64_t Direct(const std::string& token, uint64_t other);

  // Every entry of a conversation in the log, ascending.
  std::vector<storage::Entry> Log(uint64_t conversation_id);

  // Drains and stops the server (idempotent).
  void Shutdown();

 private:
  MessageTestEnv() = default;

  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<TokenCodec> codec_;
  RevocationSet revocations_;
  std::unique_ptr<Authenticator> authenticator_;
  presence::FakeDevicePresenceReporter presence_;
  std::unique_ptr<MessageServiceImpl> service_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  int next_user_ = 0;
  bool shut_down_ = false;
};

// Adds `authorization: Bearer <token>`.
void Authorize(grpc::ClientContext* context, const std::string& token);

// A channel with a connection of its own to a plaintext server.
std::shared_ptr<grpc::Channel> NewTestChannel(const std::string& address);

// The frames one stream received, filled by its reader thread.
class FrameRecorder {
 public:
  void Add(const v1::ServerFrame& frame);
  void MarkEnded();
  // Waits until `done` holds for the frames so far; false on timeout or
  // when the stream ended without it.
  bool WaitFor(
      const std::function<bool(const std::vector<v1::ServerFrame>&)>& done,
      absl::Duration timeout);
  bool WaitEnded(absl::Duration timeout);
  std::vector<v1::ServerFrame> frames() const;
  bool ended() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<v1::ServerFrame> frames_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

// A Chat stream driven from the test thread; a reader thread records every
// frame the server sends.
class ChatClient {
 public:
  struct Options {
    // Sent as the first frame when set.
    std::optional<v1::Hello> hello = v1::Hello();
    // Start the reader thread at once (false: a client that does not read
    // until StartReading).
    bool read = true;
    // Channel to use; the env's shared channel when null.
    std::shared_ptr<grpc::Channel> channel;
  };

  ChatClient(MessageTestEnv& env, const std::string& token, Options options);
  ChatClient(MessageTestEnv& env, const std::string& token)
      : ChatClient(env, token, Options()) {}
  // To any message server (`channel`; options.channel is ignored), for
  // example another node of a cluster.
  ChatClient(std::shared_ptr<grpc::Channel> channel, const std::string& token,
             const Options& options);
  // Cancels the stream if it is still open.
  ~ChatClient();

  static v1::Hello ResumeHello(
      const absl::flat_hash_map<uint64_t, uint64_t>& cursors,
      bool replay_unlisted = false);

  bool Write(const v1::ClientFrame& frame);
  bool Send(uint64_t request_id, uint64_t conversation_id,
            const std::string& client_msg_id, const std::string& text);
  void StartReading();

  // Waits until `done` holds for the frames so far; false on timeout.
  bool WaitFor(const std::function<bool(const std::vector<v1::ServerFrame>&)>& done,
               absl::Duration timeout = absl::Seconds(10));
  // The ack or error for `request_id` (fails the test on timeout).
  std::optional<v1::SendAck> AwaitAck(uint64_t request_id,
                                      absl::Duration timeout = absl::Seconds(10));
  std::optional<v1::Error> AwaitError(uint64_t request_id,
                                      absl::Duration timeout = absl::Seconds(10));
  // Waits for the Ready frame.
  bool AwaitReady(absl::Duration timeout = absl::Seconds(10));
  // Waits until an entry of `conversation_id` with seq >= `seq` arrived.
  bool AwaitSeq(uint64_t conversation_id, uint64_t seq,
                absl::Duration timeout = absl::Seconds(10));

  std::vector<v1::ServerFrame> frames() const;
  // Entries of one conversation in arrival order.
  std::vector<v1::Entry> Entries(uint64_t conversation_id) const;
  std::vector<uint64_t> Seqs(uint64_t conversation_id) const;
  // The highest seq received per conversation.
  absl::flat_hash_map<uint64_t, uint64_t> Cursors() const;

  // Half-closes and waits for the server's status.
  grpc::Status Finish(absl::Duration timeout = absl::Seconds(10));
  // Waits until the server ended the stream and returns its status
  // (UNKNOWN "timeout" when it did not end in time).
  grpc::Status AwaitEnd(absl::Duration timeout = absl::Seconds(10));
  // Cancels from the client side and returns the final status.
  grpc::Status Cancel();
  bool ended() const;

 private:
  void ReadLoop();
  grpc::Status CollectStatus();

  std::unique_ptr<v1::MessageService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ClientFrame, v1::ServerFrame>>
      stream_;
  std::thread reader_;
  FrameRecorder recorder_;
  bool reading_ = false;
  bool half_closed_ = false;
  std::optional<grpc::Status> status_;
};

// A Subscribe stream recording frames like ChatClient.
class SubscribeClient {
 public:
  SubscribeClient(MessageTestEnv& env, const std::string& token,
                  const v1::SubscribeRequest& request);
  ~SubscribeClient();

  bool WaitFor(const std::function<bool(const std::vector<v1::ServerFrame>&)>& done,
               absl::Duration timeout = absl::Seconds(10));
  std::vector<v1::ServerFrame> frames() const;
  grpc::Status AwaitEnd(absl::Duration timeout = absl::Seconds(10));

 private:
  std::unique_ptr<v1::MessageService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::ServerFrame>> stream_;
  std::thread reader_;
  FrameRecorder recorder_;
  std::optional<grpc::Status> status_;
};

// Entries of `conversation_id` among `frames`, in order.
std::vector<v1::Entry> EntriesOf(const std::vector<v1::ServerFrame>& frames,
                                 uint64_t conversation_id);

}  // namespace im::message::testing

#endif  // IM_SERVICES_MESSAGE_TESTING_MESSAGE_TEST_ENV_H_
