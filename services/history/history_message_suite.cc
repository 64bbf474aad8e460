#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "services/history/history_suite.h"
#include "services/message/testing/message_test_env.h"

// History next to the real message service: MarkRead through history is
// the message service's own operation, receipt broadcast included.

namespace im::history::testing {

namespace mv1 = ::im::message::v1;
using ::im::message::testing::MessageTestEnv;
using ::im::message::testing::SubscribeClient;

void HistoryWithMessageServiceTest::SetUp() {
  env_ = MessageTestEnv::Start(GetParam().make());
  ASSERT_NE(env_, nullptr);
  absl::StatusOr<std::unique_ptr<HistoryServiceImpl>> service =
      HistoryServiceImpl::Create(
          HistoryServiceOptions{}, env_->db().reader(), &env_->authenticator(),
          mv1::MessageService::NewStub(env_->NewChannel()));
  ASSERT_TRUE(service.ok()) << service.status();
  service_ = *std::move(service);
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start(ServerOptions{}, {service_.get()});
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  stub_ = v1::HistoryService::NewStub(grpc::CreateChannel(
      server_->address(), grpc::InsecureChannelCredentials()));
}

void HistoryWithMessageServiceTest::TearDown() {
  if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
  if (env_ != nullptr) env_->Shutdown();
}

uint64_t HistoryWithMessageServiceTest::Unread(const std::string& token) {
  v1::ListConversationsResponse list;
  const grpc::Status status = stub_->ListConversations(
      Context(token).get(), v1::ListConversationsRequest(), &list);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(list.conversations_size(), 1);
  return list.conversations_size() == 1 ? list.conversations(0).unread_count()
                                        : ~uint64_t{0};
}

namespace {

bool HasReceipt(const std::vector<mv1::ServerFrame>& frames,
                uint64_t conversation_id, uint64_t user_id, uint64_t seq) {
  for (const mv1::ServerFrame& frame : frames) {
    if (frame.has_receipt() &&
        frame.receipt().conversation_id() == conversation_id &&
        frame.receipt().user_id() == user_id &&
        frame.receipt().read_seq() == seq) {
      return true;
    }
  }
  return false;
}

TEST_P(HistoryWithMessageServiceTest, MarkReadThroughHistoryIsBroadcast) {
  const uint64_t alice = env_->CreateUser("alice");
  const uint64_t bob = env_->CreateUser("bob");
  const std::string alice_phone = env_->Token(alice, 1);
  const std::string alice_laptop = env_->Token(alice, 2);
  const std::string bob_phone = env_->Token(bob, 3);
  const uint64_t group = env_->CreateGroup(alice_phone, {bob});
  ASSERT_NE(group, 0u);
  for (int i = 0; i < 5; ++i) {  // seqs 2..6 from bob
    mv1::SendRequest send;
    send.set_conversation_id(group);
    send.set_client_msg_id(absl::StrCat("b", i));
    send.mutable_message()->set_text("hi");
    mv1::SendResponse sent;
    grpc::ClientContext context;
    message::testing::Authorize(&context, bob_phone);
    ASSERT_TRUE(env_->Stub()->Send(&context, send, &sent).ok());
    ASSERT_EQ(sent.ack().seq(), 2u + i);
  }
  EXPECT_EQ(Unread(alice_phone), 5u);

  SubscribeClient bob_stream(*env_, bob_phone, mv1::SubscribeRequest());
  ASSERT_TRUE(bob_stream.WaitFor([](const auto& frames) {
    for (const auto& f : frames) {
      if (f.has_ready()) return true;
    }
    return false;
  }));

  v1::MarkReadRequest mark;
  mark.set_conversation_id(group);
  mark.set_seq(4);
  v1::MarkReadResponse marked;
  const grpc::Status status =
      stub_->MarkRead(Context(alice_laptop).get(), mark, &marked);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(marked.read_seq(), 4u);
  // Bob's device hears of it, from the message service's one broadcast.
  EXPECT_TRUE(bob_stream.WaitFor([&](const auto& frames) {
    return HasReceipt(frames, group, alice, 4);
  }));
  // Alice's phone sees the new count at once.
  EXPECT_EQ(Unread(alice_phone), 2u);

  // The two RPCs are one operation: same answers, same codes.
  mark.set_seq(99);
  const grpc::Status history_out_of_range =
      stub_->MarkRead(Context(alice_laptop).get(), mark, &marked);
  mv1::MarkReadRequest direct;
  direct.set_conversation_id(group);
  direct.set_seq(99);
  mv1::MarkReadResponse direct_marked;
  grpc::ClientContext context;
  message::testing::Authorize(&context, alice_laptop);
  const grpc::Status message_out_of_range =
      env_->Stub()->MarkRead(&context, direct, &direct_marked);
  EXPECT_EQ(history_out_of_range.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(message_out_of_range.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(history_out_of_range.error_message(),
            message_out_of_range.error_message());
}

}  // namespace
}  // namespace im::history::testing
