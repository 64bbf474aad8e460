#include <grpcpp/grpcpp.h>

#include <string>
#include <utility>

#include "services/history/history_suite.h"

namespace im::history::testing {

using ::testing::ElementsAre;

void HistoryServiceSuiteTest::SetUp() {
  HistorySuiteTest::SetUp();
  if (HasFatalFailure()) return;
  absl::StatusOr<std::unique_ptr<TokenCodec>> codec =
      TokenCodec::Create({TokenKey{1, std::string(32, 'k')}});
  ASSERT_TRUE(codec.ok()) << codec.status();
  codec_ = *std::move(codec);
  authenticator_ = std::make_unique<Authenticator>(codec_.get(), &revocations_);

  message_service_ = std::make_unique<FakeMessageService>(
      authenticator_.get(), db_->read_markers());
  absl::StatusOr<std::unique_ptr<GrpcServer>> message_server =
      GrpcServer::Start(ServerOptions{}, {message_service_.get()});
  ASSERT_TRUE(message_server.ok()) << message_server.status();
  message_server_ = *std::move(message_server);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeChannel(message_server_->address(), TlsOptions{});
  ASSERT_TRUE(channel.ok()) << channel.status();

  absl::StatusOr<std::unique_ptr<HistoryServiceImpl>> service =
      HistoryServiceImpl::Create(
          HistoryServiceOptions{}, db_->reader(), authenticator_.get(),
          message::v1::MessageService::NewStub(*std::move(channel)));
  ASSERT_TRUE(service.ok()) << service.status();
  service_ = *std::move(service);
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start(ServerOptions{}, {service_.get()});
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  stub_ = v1::HistoryService::NewStub(grpc::CreateChannel(
      server_->address(), grpc::InsecureChannelCredentials()));
}

void HistoryServiceSuiteTest::TearDown() {
  if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
  if (message_server_ != nullptr) message_server_->Shutdown(absl::ZeroDuration());
}

std::string HistoryServiceSuiteTest::Token(uint64_t user, uint64_t session) {
  Caller caller;
  caller.user_id = user;
  caller.session_id = session;
  caller.role = auth::v1::ROLE_USER;
  caller.expires_at = absl::Now() + absl::Minutes(10);
  return codec_->Mint(caller, absl::Now());
}

std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) AttachBearerToken(context.get(), token);
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(10));
  return context;
}

namespace {

// Every RPC once with `token`; their codes in RPC order.
std::vector<grpc::StatusCode> CallEveryRpc(v1::HistoryService::Stub& stub,
                                           const std::string& token,
                                           uint64_t conversation_id) {
  std::vector<grpc::StatusCode> codes;
  {
    v1::GetHistoryRequest request;
    request.set_conversation_id(conversation_id);
    v1::GetHistoryResponse response;
    codes.push_back(stub.GetHistory(Context(token).get(),
                                    request, &response)
                        .error_code());
  }
  {
    v1::GetMessagesRequest request;
    request.set_conversation_id(conversation_id);
    request.add_seqs(1);
    v1::GetMessagesResponse response;
    codes.push_back(
        stub.GetMessages(Context(token).get(), request,
                         &response)
            .error_code());
  }
  {
    v1::ListConversationsResponse response;
    codes.push_back(stub.ListConversations(
                            Context(token).get(),
                            v1::ListConversationsRequest(), &response)
                        .error_code());
  }
  {
    v1::SyncResponse response;
    codes.push_back(stub.Sync(Context(token).get(),
                              v1::SyncRequest(), &response)
                        .error_code());
  }
  {
    v1::MarkReadRequest request;
    request.set_conversation_id(conversation_id);
    request.set_seq(1);
    v1::MarkReadResponse response;
    codes.push_back(stub.MarkRead(Context(token).get(),
                                  request, &response)
                        .error_code());
  }
  return codes;
}

TEST_P(HistoryServiceSuiteTest, EveryRpcNeedsAValidUnrevokedToken) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t group = MakeGroup(alice, {}, At(1));
  const auto kUnauthenticated = grpc::StatusCode::UNAUTHENTICATED;
  const std::vector<grpc::StatusCode> all_unauthenticated(5, kUnauthenticated);
  EXPECT_EQ(CallEveryRpc(*stub_, "", group), all_unauthenticated);
  EXPECT_EQ(CallEveryRpc(*stub_, "v1.forged.token", group),
            all_unauthenticated);
  const std::string token = Token(alice, 7);
  EXPECT_EQ(CallEveryRpc(*stub_, token, group),
            std::vector<grpc::StatusCode>(5, grpc::StatusCode::OK));
  revocations_.Add(7, alice, absl::Now());
  EXPECT_EQ(CallEveryRpc(*stub_, token, group), all_unauthenticated);
  // Nothing was forwarded for the rejected MarkReads.
  EXPECT_EQ(message_service_->tokens(), std::vector<std::string>{token});
}

TEST_P(HistoryServiceSuiteTest, UnreadCountsFollowMarkReadFromAnotherDevice) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t group = MakeGroup(alice, {bob}, At(1));
  Send(group, alice, 9, At(2));  // 2..10
  const std::string phone = Token(bob, 1);
  const std::string laptop = Token(bob, 2);

  auto unread_on_phone = [&]() -> uint64_t {
    v1::ListConversationsResponse list;
    const grpc::Status status = stub_->ListConversations(
        Context(phone).get(), v1::ListConversationsRequest(), &list);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(list.conversations_size(), 1);
    return list.conversations_size() == 1
               ? list.conversations(0).unread_count()
               : ~uint64_t{0};
  };
  EXPECT_EQ(unread_on_phone(), 10u);

  v1::MarkReadRequest mark;
  mark.set_conversation_id(group);
  mark.set_seq(7);
  v1::MarkReadResponse marked;
  grpc::Status status = stub_->MarkRead(Context(laptop).get(), mark, &marked);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(marked.read_seq(), 7u);
  EXPECT_EQ(unread_on_phone(), 3u);
  // The hop carried the laptop's own token.
  EXPECT_THAT(message_service_->tokens(), ElementsAre(laptop));

  // Monotonic: a lower seq is a no-op that answers the stored marker.
  mark.set_seq(4);
  status = stub_->MarkRead(Context(phone).get(), mark, &marked);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(marked.read_seq(), 7u);
  EXPECT_EQ(unread_on_phone(), 3u);

  v1::SyncRequest sync;
  (*sync.mutable_cursors())[group] = 8;
  v1::SyncResponse changes;
  status = stub_->Sync(Context(phone).get(), sync, &changes);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(changes.changes_size(), 1);
  EXPECT_EQ(changes.changes(0).new_entries(), 2u);
  EXPECT_EQ(changes.changes(0).read_seq(), 7u);
  EXPECT_EQ(changes.changes(0).unread_count(), 3u);

  // Bob's own send moves his marker: nothing unread.
  Send(group, bob, 1, At(3));
  EXPECT_EQ(unread_on_phone(), 0u);
}

TEST_P(HistoryServiceSuiteTest, MarkReadErrorsAreTheMessageServicesCodes) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t mallory = MakeUser("mallory");
  const uint64_t group = MakeGroup(alice, {}, At(1));
  Send(group, alice, 4, At(2));  // 1..5

  auto mark = [&](uint64_t user, uint64_t conversation, uint64_t seq) {
    v1::MarkReadRequest request;
    request.set_conversation_id(conversation);
    request.set_seq(seq);
    v1::MarkReadResponse response;
    return stub_->MarkRead(Context(Token(user, 1)).get(), request, &response);
  };
  EXPECT_EQ(mark(alice, group, 0).error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(mark(alice, group, 6).error_code(), grpc::StatusCode::OUT_OF_RANGE);
  const grpc::Status foreign = mark(mallory, group, 1);
  const grpc::Status missing = mark(alice, group + 1000, 1);
  EXPECT_EQ(foreign.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(foreign.error_message(), missing.error_message());

  message_service_->FailWith(absl::UnavailableError("database down"));
  const grpc::Status down = mark(alice, group, 5);
  EXPECT_EQ(down.error_code(), grpc::StatusCode::UNAVAILABLE);
  message_service_->FailWith(absl::OkStatus());
  EXPECT_TRUE(mark(alice, group, 5).ok());

  // Without a reachable message service the caller gets UNAVAILABLE.
  message_server_->Shutdown(absl::ZeroDuration());
  EXPECT_EQ(mark(alice, group, 5).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_P(HistoryServiceSuiteTest, ReadsAnswerWithTheApiCodes) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t mallory = MakeUser("mallory");
  const uint64_t group = MakeGroup(alice, {}, At(1));
  Send(group, alice, 60, At(2));  // 1..61
  const std::string token = Token(alice, 1);

  v1::GetHistoryRequest request;
  request.set_conversation_id(group);
  v1::GetHistoryResponse page;
  grpc::Status status = stub_->GetHistory(Context(token).get(), request, &page);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(page.entries_size(), 50);
  EXPECT_EQ(page.entries(0).seq(), 12u);
  EXPECT_EQ(page.entries(49).seq(), 61u);
  EXPECT_TRUE(page.has_more());
  EXPECT_EQ(page.last_seq(), 61u);

  request.set_limit(201);
  EXPECT_EQ(stub_->GetHistory(Context(token).get(), request, &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  request.set_limit(10);
  const grpc::Status foreign =
      stub_->GetHistory(Context(Token(mallory, 2)).get(), request, &page);
  request.set_conversation_id(group + 1000);
  const grpc::Status missing =
      stub_->GetHistory(Context(token).get(), request, &page);
  EXPECT_EQ(foreign.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(foreign.error_message(), "conversation not found");
  EXPECT_EQ(missing.error_message(), "conversation not found");

  v1::ListConversationsRequest list;
  list.set_page_token("not-a-token");
  v1::ListConversationsResponse conversations;
  EXPECT_EQ(stub_->ListConversations(Context(token).get(), list, &conversations)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace im::history::testing
