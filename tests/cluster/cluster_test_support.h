#ifndef IM_TESTS_CLUSTER_CLUSTER_TEST_SUPPORT_H_
#define IM_TESTS_CLUSTER_CLUSTER_TEST_SUPPORT_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "im/message/v1/message.grpc.pb.h"
#include "services/common/access_token.h"
#include "storage/user_store.h"

// Calls and checks shared by the multi-node tests (in-process nodes and
// real binaries alike).

namespace im::cluster_testing {

namespace v1 = ::im::message::v1;

// A user in `users`; 0 after failing the test.
uint64_t CreateUser(storage::UserStore& users, const std::string& name);

// An access token for (user, session), valid for an hour.
std::string Token(const TokenCodec& codec, uint64_t user_id,
                  uint64_t session_id);

// Unary calls on `channel` as the holder of `token`.
grpc::Status Send(const std::shared_ptr<grpc::Channel>& channel,
                  const std::string& token, uint64_t conversation_id,
                  const std::string& client_msg_id, const std::string& text,
                  v1::SendAck* ack = nullptr);
// The group's id; 0 after failing the test.
uint64_t CreateGroup(const std::shared_ptr<grpc::Channel>& channel,
                     const std::string& token,
                     const std::vector<uint64_t>& members);
grpc::Status AddMembers(const std::shared_ptr<grpc::Channel>& channel,
                        const std::string& token, uint64_t conversation_id,
                        const std::vector<uint64_t>& users);
grpc::Status MarkRead(const std::shared_ptr<grpc::Channel>& channel,
                      const std::string& token, uint64_t conversation_id,
                      uint64_t seq);
grpc::Status SetTyping(const std::shared_ptr<grpc::Channel>& channel,
                       const std::string& token, uint64_t conversation_id);

// Sends "m0", "m1", ... into one conversation, one after another, from a
// thread of its own; a send that fails is retried with the same
// client_msg_id until acknowledged (what a client does across a node kill
// or an outage). Stops in the destructor at the latest.
class RetryingSender {
 public:
  RetryingSender(std::shared_ptr<grpc::Channel> channel, std::string token,
                 uint64_t conversation_id);
  ~RetryingSender();

  // True once `count` sends are acknowledged; false after `timeout`.
  bool AwaitAcked(int count, absl::Duration timeout = absl::Seconds(30));
  // Finishes the send in progress (until acknowledged) and stops.
  void Stop();

  int acked() const { return acked_.load(); }
  // The seq of the last acknowledged send.
  uint64_t last_seq() const { return last_seq_.load(); }

 private:
  void Run();

  const std::shared_ptr<grpc::Channel> channel_;
  const std::string token_;
  const uint64_t conversation_id_;
  std::atomic<bool> stop_{false};
  std::atomic<int> acked_{0};
  std::atomic<uint64_t> last_seq_{0};
  std::thread thread_;
};

// first, first + 1, ..., last.
std::vector<uint64_t> Range(uint64_t first, uint64_t last);

}  // namespace im::cluster_testing

#endif  // IM_TESTS_CLUSTER_CLUSTER_TEST_SUPPORT_H_
