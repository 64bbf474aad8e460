#ifndef IM_TESTS_CLUSTER_CLUSTER_TEST_SUPPORT_H_
#define IM_TESTS_CLUSTER_CLUSTER_TEST_SUPPORT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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

// first, first + 1, ..., last.
std::vector<uint64_t> Range(uint64_t first, uint64_t last);

}  // namespace im::cluster_testing

#endif  // IM_TESTS_CLUSTER_CLUSTER_TEST_SUPPORT_H_
