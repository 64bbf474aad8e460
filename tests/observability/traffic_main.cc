// Drives a little of everything through the running services so that their
// metrics move: registration, logins (one wrong password), a direct
// conversation, sends over unary Send (one retried: a duplicate) and over
// Chat, live delivery to the peer's Chat stream, a read marker, history
// reads, presence queries and a subscription, and a logout (a revoked
// session). Exits 0 when every step answered as the API promises, else
// prints the failed step and exits 1. Used by prometheus_e2e_test.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "im/auth/v1/auth.grpc.pb.h"
#include "im/history/v1/history.grpc.pb.h"
#include "im/message/v1/message.grpc.pb.h"
#include "im/presence/v1/presence.grpc.pb.h"

ABSL_FLAG(std::string, auth_addr, "127.0.0.1:50051", "auth service");
ABSL_FLAG(std::string, presence_addr, "127.0.0.1:50052", "presence service");
ABSL_FLAG(std::string, message_addr, "127.0.0.1:50053", "message service");
ABSL_FLAG(std::string, history_addr, "127.0.0.1:50054", "history service");
ABSL_FLAG(std::string, user_prefix, "obs",
          "prefix of the two usernames registered (a random suffix follows)");

namespace im {
namespace {

namespace authpb = ::im::auth::v1;
namespace historypb = ::im::history::v1;
namespace messagepb = ::im::message::v1;
namespace presencepb = ::im::presence::v1;

constexpr char kPassword[] = "correct horse battery staple";
constexpr int kUnarySends = 5;
constexpr int kChatSends = 3;

absl::Status Check(const grpc::Status& status, absl::string_view step) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(step, ": ", status.error_message()));
}

absl::Status Expect(bool condition, absl::string_view what) {
  return condition ? absl::OkStatus() : absl::InternalError(what);
}

#define RETURN_IF_ERROR(expr)             \
  do {                                    \
    absl::Status status_ = (expr);        \
    if (!status_.ok()) return status_;    \
  } while (false)

std::unique_ptr<grpc::ClientContext> Context(const std::string& token = "") {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(20));
  if (!token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }
  return context;
}

std::shared_ptr<grpc::Channel> Channel(const std::string& address) {
  return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
}

struct Session {
  uint64_t user_id = 0;
  std::string token;
};

class Traffic {
 public:
  Traffic()
      : auth_(authpb::AuthService::NewStub(
            Channel(absl::GetFlag(FLAGS_auth_addr)))),
        message_(messagepb::MessageService::NewStub(
            Channel(absl::GetFlag(FLAGS_message_addr)))),
        history_(historypb::HistoryService::NewStub(
            Channel(absl::GetFlag(FLAGS_history_addr)))),
        presence_(presencepb::PresenceService::NewStub(
            Channel(absl::GetFlag(FLAGS_presence_addr)))) {}

  absl::Status Run() {
    const std::string suffix = absl::StrCat(absl::ToUnixMicros(absl::Now()));
    const std::string alice_name =
        absl::StrCat(absl::GetFlag(FLAGS_user_prefix), "a", suffix);
    const std::string bob_name =
        absl::StrCat(absl::GetFlag(FLAGS_user_prefix), "b", suffix);
    RETURN_IF_ERROR(Register(alice_name));
    RETURN_IF_ERROR(Register(bob_name));
    absl::StatusOr<Session> alice = Login(alice_name, kPassword);
    if (!alice.ok()) return alice.status();
    absl::StatusOr<Session> bob = Login(bob_name, kPassword);
    if (!bob.ok()) return bob.status();
    absl::StatusOr<Session> wrong = Login(alice_name, "wrong password!");
    RETURN_IF_ERROR(Expect(absl::IsUnauthenticated(wrong.status()),
                           "a wrong password is not UNAUTHENTICATED"));

    // Bob listens on Chat; alice's messages are delivered there live.
    grpc::ClientContext bob_chat_context;
    bob_chat_context.AddMetadata("authorization",
                                 absl::StrCat("Bearer ", bob->token));
    auto bob_chat = message_->Chat(&bob_chat_context);
    messagepb::ClientFrame hello;
    hello.mutable_hello()->mutable_device()->set_kind(
        authpb::DEVICE_KIND_CLI);
    hello.mutable_hello()->mutable_device()->set_name("e2e");
    RETURN_IF_ERROR(Expect(bob_chat->Write(hello), "bob's Chat hello"));
    RETURN_IF_ERROR(WaitFor(bob_chat.get(), messagepb::ServerFrame::kReady,
                            "bob's Chat Ready"));

    auto direct_context = Context(alice->token);
    messagepb::GetOrCreateDirectRequest direct_request;
    direct_request.set_user_id(bob->user_id);
    messagepb::GetOrCreateDirectResponse direct;
    RETURN_IF_ERROR(Check(message_->GetOrCreateDirect(
                              direct_context.get(), direct_request, &direct),
                          "GetOrCreateDirect"));
    const uint64_t conversation = direct.conversation().conversation_id();

    for (int i = 0; i < kUnarySends; ++i) {
      RETURN_IF_ERROR(SendUnary(*alice, conversation, absl::StrCat("u", i),
                                /*expect_duplicate=*/false));
    }
    RETURN_IF_ERROR(SendUnary(*alice, conversation, "u0",
                              /*expect_duplicate=*/true));

    grpc::ClientContext alice_chat_context;
    alice_chat_context.AddMetadata("authorization",
                                   absl::StrCat("Bearer ", alice->token));
    auto alice_chat = message_->Chat(&alice_chat_context);
    RETURN_IF_ERROR(Expect(alice_chat->Write(hello), "alice's Chat hello"));
    for (int i = 0; i < kChatSends; ++i) {
      messagepb::ClientFrame send;
      send.mutable_send()->set_request_id(i + 1);
      send.mutable_send()->set_conversation_id(conversation);
      send.mutable_send()->set_client_msg_id(absl::StrCat("c", i));
      send.mutable_send()->mutable_message()->set_text(
          absl::StrCat("chat message ", i));
      RETURN_IF_ERROR(Expect(alice_chat->Write(send), "alice's Chat send"));
      RETURN_IF_ERROR(WaitFor(alice_chat.get(), messagepb::ServerFrame::kAck,
                              "alice's SendAck"));
      // Her own stream gets the entry after the ack.
      RETURN_IF_ERROR(WaitFor(alice_chat.get(),
                              messagepb::ServerFrame::kEntry,
                              "alice's own entry"));
    }

    // Bob's stream gets every entry: the unary and the Chat sends.
    uint64_t last_seq = 0;
    for (int received = 0; received < kUnarySends + kChatSends;) {
      messagepb::ServerFrame frame;
      RETURN_IF_ERROR(Expect(bob_chat->Read(&frame), "bob's live entries"));
      if (frame.has_entry() && frame.entry().has_message()) {
        last_seq = frame.entry().seq();
        ++received;
      }
    }
    auto read_context = Context(bob->token);
    messagepb::MarkReadRequest read_request;
    read_request.set_conversation_id(conversation);
    read_request.set_seq(last_seq);
    messagepb::MarkReadResponse read;
    RETURN_IF_ERROR(Check(
        message_->MarkRead(read_context.get(), read_request, &read),
        "MarkRead"));

    auto history_context = Context(alice->token);
    historypb::GetHistoryRequest history_request;
    history_request.set_conversation_id(conversation);
    historypb::GetHistoryResponse history;
    RETURN_IF_ERROR(Check(history_->GetHistory(history_context.get(),
                                               history_request, &history),
                          "GetHistory"));
    auto list_context = Context(bob->token);
    historypb::ListConversationsResponse conversations;
    RETURN_IF_ERROR(Check(history_->ListConversations(list_context.get(), {},
                                                      &conversations),
                          "ListConversations"));

    // Bob is online once the message node's lease for his Chat stream
    // reached presence.
    RETURN_IF_ERROR(AwaitOnline(*alice, bob->user_id));
    {
      auto subscribe_context = Context(alice->token);
      presencepb::SubscribeRequest subscribe;
      subscribe.add_user_ids(bob->user_id);
      auto updates = presence_->Subscribe(subscribe_context.get(), subscribe);
      presencepb::PresenceBatch batch;
      RETURN_IF_ERROR(
          Expect(updates->Read(&batch), "presence Subscribe snapshot"));
      subscribe_context->TryCancel();
      (void)updates->Finish();
    }

    alice_chat->WritesDone();
    alice_chat_context.TryCancel();
    (void)alice_chat->Finish();
    bob_chat->WritesDone();
    bob_chat_context.TryCancel();
    (void)bob_chat->Finish();

    auto logout_context = Context(bob->token);
    authpb::LogoutResponse logout;
    RETURN_IF_ERROR(
        Check(auth_->Logout(logout_context.get(), {}, &logout), "Logout"));
    return absl::OkStatus();
  }

 private:
  absl::Status Register(const std::string& username) {
    auto context = Context();
    authpb::RegisterRequest request;
    request.set_username(username);
    request.set_password(kPassword);
    request.set_display_name(username);
    authpb::RegisterResponse response;
    return Check(auth_->Register(context.get(), request, &response),
                 "Register");
  }

  absl::StatusOr<Session> Login(const std::string& username,
                                const std::string& password) {
    auto context = Context();
    authpb::LoginRequest request;
    request.set_username(username);
    request.set_password(password);
    request.set_device_name("e2e");
    request.set_device_kind(authpb::DEVICE_KIND_CLI);
    authpb::LoginResponse response;
    RETURN_IF_ERROR(
        Check(auth_->Login(context.get(), request, &response), "Login"));
    return Session{response.tokens().user_id(),
                   response.tokens().access_token()};
  }

  absl::Status SendUnary(const Session& sender, uint64_t conversation,
                         const std::string& client_msg_id,
                         bool expect_duplicate) {
    auto context = Context(sender.token);
    messagepb::SendRequest request;
    request.set_conversation_id(conversation);
    request.set_client_msg_id(client_msg_id);
    request.mutable_message()->set_text(
        absl::StrCat("unary message ", client_msg_id));
    messagepb::SendResponse response;
    RETURN_IF_ERROR(
        Check(message_->Send(context.get(), request, &response), "Send"));
    return Expect(response.ack().duplicate() == expect_duplicate,
                  expect_duplicate ? "a retried send is not a duplicate"
                                   : "a first send is a duplicate");
  }

  // Queries `user` until presence says ONLINE (10 s at most).
  absl::Status AwaitOnline(const Session& viewer, uint64_t user) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    for (;;) {
      auto context = Context(viewer.token);
      presencepb::QueryRequest query;
      query.add_user_ids(user);
      presencepb::QueryResponse presences;
      RETURN_IF_ERROR(
          Check(presence_->Query(context.get(), query, &presences), "Query"));
      if (presences.presences_size() == 1 &&
          presences.presences(0).state() == presencepb::PRESENCE_STATE_ONLINE) {
        return absl::OkStatus();
      }
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            "bob is not ONLINE while his Chat stream is open");
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  }

  // Reads frames until one of `kind`; an Error frame fails.
  absl::Status WaitFor(
      grpc::ClientReaderWriter<messagepb::ClientFrame,
                               messagepb::ServerFrame>* stream,
      messagepb::ServerFrame::FrameCase kind, absl::string_view what) {
    messagepb::ServerFrame frame;
    while (stream->Read(&frame)) {
      if (frame.frame_case() == kind) return absl::OkStatus();
      if (frame.has_error()) {
        return absl::InternalError(
            absl::StrCat(what, ": ", frame.error().message()));
      }
    }
    return absl::UnavailableError(absl::StrCat(what, ": stream ended"));
  }

  std::unique_ptr<authpb::AuthService::Stub> auth_;
  std::unique_ptr<messagepb::MessageService::Stub> message_;
  std::unique_ptr<historypb::HistoryService::Stub> history_;
  std::unique_ptr<presencepb::PresenceService::Stub> presence_;
};

}  // namespace
}  // namespace im

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = im::Traffic().Run();
  if (!status.ok()) {
    std::fprintf(stderr, "traffic failed: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("traffic done\n");
  return 0;
}
