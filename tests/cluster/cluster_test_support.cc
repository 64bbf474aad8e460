#include "tests/cluster/cluster_test_support.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/message/testing/message_test_env.h"

namespace im::cluster_testing {

using ::im::message::testing::Authorize;

uint64_t CreateUser(storage::UserStore& users, const std::string& name) {
  storage::NewUser user;
  user.username = name;
  user.username_norm = absl::AsciiStrToLower(name);
  user.display_name = name;
  user.password_hash = "x";
  user.created_at = absl::Now();
  absl::StatusOr<storage::UserRecord> record = users.CreateUser(user);
  EXPECT_TRUE(record.ok()) << record.status();
  return record.ok() ? record->id : 0;
}

std::string Token(const TokenCodec& codec, uint64_t user_id,
                  uint64_t session_id) {
  Caller caller;
  caller.user_id = user_id;
  caller.session_id = session_id;
  caller.role = auth::v1::ROLE_USER;
  const absl::Time now = absl::Now();
  caller.expires_at = now + absl::Hours(1);
  return codec.Mint(caller, now);
}

grpc::Status Send(const std::shared_ptr<grpc::Channel>& channel,
                  const std::string& token, uint64_t conversation_id,
                  const std::string& client_msg_id, const std::string& text,
                  v1::SendAck* ack) {
  grpc::ClientContext context;
  Authorize(&context, token);
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::SendRequest request;
  request.set_conversation_id(conversation_id);
  request.set_client_msg_id(client_msg_id);
  request.mutable_message()->set_text(text);
  v1::SendResponse response;
  grpc::Status status =
      v1::MessageService::NewStub(channel)->Send(&context, request, &response);
  if (status.ok() && ack != nullptr) *ack = response.ack();
  return status;
}

uint64_t CreateGroup(const std::shared_ptr<grpc::Channel>& channel,
                     const std::string& token,
                     const std::vector<uint64_t>& members) {
  grpc::ClientContext context;
  Authorize(&context, token);
  v1::CreateGroupRequest request;
  request.set_title("cluster");
  for (uint64_t id : members) request.add_member_user_ids(id);
  v1::CreateGroupResponse response;
  grpc::Status status = v1::MessageService::NewStub(channel)->CreateGroup(
      &context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return status.ok() ? response.conversation().conversation_id() : 0;
}

grpc::Status AddMembers(const std::shared_ptr<grpc::Channel>& channel,
                        const std::string& token, uint64_t conversation_id,
                        const std::vector<uint64_t>& users) {
  grpc::ClientContext context;
  Authorize(&context, token);
  v1::AddMembersRequest request;
  request.set_conversation_id(conversation_id);
  for (uint64_t id : users) request.add_user_ids(id);
  v1::AddMembersResponse response;
  return v1::MessageService::NewStub(channel)->AddMembers(&context, request,
                                                          &response);
}

grpc::Status MarkRead(const std::shared_ptr<grpc::Channel>& channel,
                      const std::string& token, uint64_t conversation_id,
                      uint64_t seq) {
  grpc::ClientContext context;
  Authorize(&context, token);
  v1::MarkReadRequest request;
  request.set_conversation_id(conversation_id);
  request.set_seq(seq);
  v1::MarkReadResponse response;
  return v1::MessageService::NewStub(channel)->MarkRead(&context, request,
                                                        &response);
}

grpc::Status SetTyping(const std::shared_ptr<grpc::Channel>& channel,
                       const std::string& token, uint64_t conversation_id) {
  grpc::ClientContext context;
  Authorize(&context, token);
  v1::SetTypingRequest request;
  request.set_conversation_id(conversation_id);
  v1::SetTypingResponse response;
  return v1::MessageService::NewStub(channel)->SetTyping(&context, request,
                                                         &response);
}

RetryingSender::RetryingSender(std::shared_ptr<grpc::Channel> channel,
                               std::string token, uint64_t conversation_id)
    : channel_(std::move(channel)),
      token_(std::move(token)),
      conversation_id_(conversation_id),
      thread_([this] { Run(); }) {}

RetryingSender::~RetryingSender() { Stop(); }

void RetryingSender::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool RetryingSender::AwaitAcked(int count, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (acked_.load() < count && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  return acked_.load() >= count;
}

void RetryingSender::Run() {
  for (int i = 0; !stop_.load(); ++i) {
    const std::string id = absl::StrCat("m", i);
    for (;;) {
      v1::SendAck ack;
      if (Send(channel_, token_, conversation_id_, id, "x", &ack).ok()) {
        acked_.fetch_add(1);
        last_seq_.store(ack.seq());
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
}

std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> seqs;
  for (uint64_t s = first; s <= last; ++s) seqs.push_back(s);
  return seqs;
}

}  // namespace im::cluster_testing
