// Bad input over real gRPC against the real service binaries on MariaDB:
// oversize frames, invalid UTF-8 in every stored string field, huge
// metadata maps, out-of-range limits, other users' conversations, bad
// tokens and malformed page tokens. Each case asserts its exact status
// code; after each test every service is still the same process, SERVING,
// and the conversations written before the test read back unchanged.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "im/auth/v1/auth.grpc.pb.h"
#include "im/history/v1/history.grpc.pb.h"
#include "im/message/v1/message.grpc.pb.h"
#include "im/presence/v1/presence.grpc.pb.h"
#include "services/common/access_token.h"
#include "services/common/authenticator.h"
#include "services/history/page_token.h"
#include "storage/testing/test_database.h"
#include "tests/support/raw_rpc.h"
#include "tests/support/service_cluster.h"

namespace im {
namespace {

using ::im::testing::RawBidiStream;
using ::im::testing::RawCall;
using ::im::testing::RawReply;
using ::im::testing::RawServerStream;
using ::im::testing::Service;
using ::im::testing::ServiceCluster;
using Code = ::grpc::StatusCode;

namespace authv1 = ::im::auth::v1;
namespace historyv1 = ::im::history::v1;
namespace messagev1 = ::im::message::v1;
namespace presencev1 = ::im::presence::v1;

constexpr char kInvalidUtf8[] = "caf\xc3 \xff\xfe \xed\xa0\x80";
constexpr char kPassword[] = "correct horse battery";
// Beyond the servers' 1 MiB max receive size.
constexpr size_t kOversize = size_t{2} << 20;
constexpr uint64_t kMissingConversation = uint64_t{1} << 50;

std::string Path(Service service, const std::string& method) {
  return absl::StrCat("/", testing::HealthName(service), "/", method);
}

struct User {
  uint64_t id = 0;
  uint64_t session = 0;
  std::string token;
};

// What a conversation's log looked like: (seq, sender, client_msg_id, text).
using LogDigest = std::vector<std::tuple<uint64_t, uint64_t, std::string,
                                         std::string>>;

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Serializing the invalid UTF-8 on purpose logs an error per field.
    google::protobuf::SetLogHandler(nullptr);
    database_ = storage::testing::TestDatabase::CreateOrFail().release();
    if (database_ == nullptr) return;
    ServiceCluster::Options options;
    for (Service service : testing::kAllServices) {
      const std::string name = testing::ServiceName(service);
      options.binaries[static_cast<size_t>(service)] =
          std::filesystem::absolute(
              absl::StrCat("services/", name, "/", name, "_main"))
              .string();
    }
    options.mysql_dsn = database_->dsn();
    options.work_dir = absl::StrCat(
        std::getenv("TEST_TMPDIR") != nullptr ? std::getenv("TEST_TMPDIR")
                                              : "/tmp",
        "/bad_input_cluster");
    options.extra_flags[static_cast<size_t>(Service::kAuth)] = {
        "--admin_usernames=root"};
    absl::StatusOr<std::unique_ptr<ServiceCluster>> cluster =
        ServiceCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = cluster->release();
    ASSERT_TRUE(cluster_->WaitAllServing(absl::Seconds(60)).ok())
        << "services did not start; logs in " << options.work_dir;
    for (Service service : testing::kAllServices) {
      channels_[service] = grpc::CreateChannel(
          cluster_->address(service), grpc::InsecureChannelCredentials());
      pids_[service] = cluster_->pid(service);
    }
    Seed();
  }

  static void TearDownTestSuite() {
    if (cluster_ != nullptr) cluster_->Stop();
    delete cluster_;
    cluster_ = nullptr;
    delete database_;
    database_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr) << "the cluster did not start";
    ASSERT_NE(alice_.id, 0u) << "seeding failed";
  }

  // The promise of this suite: the bad input changed nothing.
  void TearDown() override {
    if (cluster_ == nullptr) return;
    for (Service service : testing::kAllServices) {
      EXPECT_EQ(cluster_->pid(service), pids_[service])
          << testing::ServiceName(service) << " was restarted";
      EXPECT_EQ(cluster_->stats(service).unexpected_exits, 0)
          << testing::ServiceName(service) << " crashed";
      EXPECT_TRUE(cluster_->WaitServing(service, absl::Seconds(5)).ok())
          << testing::ServiceName(service) << " is not SERVING";
    }
    for (const auto& [conversation, baseline] : baselines_) {
      EXPECT_EQ(Digest(conversation), baseline)
          << "conversation " << conversation << " changed";
    }
    authv1::LookupUsersRequest lookup;
    for (const char* name : {"alice", "bob", "carol", "root"}) {
      lookup.add_usernames(name);
    }
    authv1::LookupUsersResponse users;
    grpc::ClientContext context;
    AttachBearerToken(&context, alice_.token);
    ASSERT_TRUE(authv1::AuthService::NewStub(channels_[Service::kAuth])
                    ->LookupUsers(&context, lookup, &users)
                    .ok());
    EXPECT_EQ(users.users_size(), 4);
  }

  static User Register(const std::string& name) {
    auto auth = authv1::AuthService::NewStub(channels_[Service::kAuth]);
    {
      grpc::ClientContext context;
      authv1::RegisterRequest request;
      request.set_username(name);
      request.set_password(kPassword);
      authv1::RegisterResponse response;
      grpc::Status status = auth->Register(&context, request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
    }
    grpc::ClientContext context;
    authv1::LoginRequest request;
    request.set_username(name);
    request.set_password(kPassword);
    request.set_device_name("bad-input test");
    authv1::LoginResponse response;
    grpc::Status status = auth->Login(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return User{response.tokens().user_id(), response.tokens().session_id(),
                response.tokens().access_token()};
  }

  static void Seed() {
    alice_ = Register("alice");
    bob_ = Register("bob");
    carol_ = Register("carol");
    root_ = Register("root");
    {
      auto auth = authv1::AuthService::NewStub(channels_[Service::kAuth]);
      grpc::ClientContext context;
      AttachBearerToken(&context, root_.token);
      authv1::CreateServiceAccountRequest request;
      request.set_name("badbot");
      authv1::CreateServiceAccountResponse created;
      ASSERT_TRUE(auth->CreateServiceAccount(&context, request, &created).ok());
      grpc::ClientContext exchange_context;
      authv1::ExchangeApiKeyRequest exchange;
      exchange.set_api_key(created.api_key());
      authv1::ExchangeApiKeyResponse exchanged;
      ASSERT_TRUE(
          auth->ExchangeApiKey(&exchange_context, exchange, &exchanged).ok());
      service_ = User{exchanged.tokens().user_id(),
                      exchanged.tokens().session_id(),
                      exchanged.tokens().access_token()};
    }
    auto message = messagev1::MessageService::NewStub(channels_[Service::kMessage]);
    {
      grpc::ClientContext context;
      AttachBearerToken(&context, alice_.token);
      messagev1::GetOrCreateDirectRequest request;
      request.set_user_id(bob_.id);
      messagev1::GetOrCreateDirectResponse response;
      ASSERT_TRUE(message->GetOrCreateDirect(&context, request, &response).ok());
      direct_ = response.conversation().conversation_id();
    }
    group_ = CreateGroup(alice_, {bob_.id}, "alice and bob");
    carol_group_ = CreateGroup(carol_, {}, "carol alone");
    scratch_ = CreateGroup(alice_, {}, "scratch");
    int n = 0;
    for (auto [user, conversation] :
         {std::pair{&alice_, direct_}, std::pair{&bob_, direct_},
          std::pair{&alice_, group_}, std::pair{&bob_, group_},
          std::pair{&carol_, carol_group_}}) {
      grpc::ClientContext context;
      AttachBearerToken(&context, user->token);
      messagev1::SendRequest request;
      request.set_conversation_id(conversation);
      request.set_client_msg_id(absl::StrCat("seed-", ++n));
      request.mutable_message()->set_text(absl::StrCat("seed ", n, " \xe2\x9c\x93"));
      messagev1::SendResponse response;
      ASSERT_TRUE(message->Send(&context, request, &response).ok());
    }
    for (uint64_t conversation : {direct_, group_, carol_group_}) {
      baselines_[conversation] = Digest(conversation);
      ASSERT_FALSE(baselines_[conversation].empty());
    }
  }

  static uint64_t CreateGroup(const User& owner,
                              const std::vector<uint64_t>& members,
                              const std::string& title) {
    auto message = messagev1::MessageService::NewStub(channels_[Service::kMessage]);
    grpc::ClientContext context;
    AttachBearerToken(&context, owner.token);
    messagev1::CreateGroupRequest request;
    request.set_title(title);
    for (uint64_t member : members) request.add_member_user_ids(member);
    messagev1::CreateGroupResponse response;
    grpc::Status status = message->CreateGroup(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.conversation().conversation_id();
  }

  // Every entry of `conversation`, read through the history service by a
  // member.
  static LogDigest Digest(uint64_t conversation) {
    const std::string& token =
        conversation == carol_group_ ? carol_.token : alice_.token;
    auto history = historyv1::HistoryService::NewStub(channels_[Service::kHistory]);
    LogDigest digest;
    uint64_t after = 0;
    for (;;) {
      grpc::ClientContext context;
      AttachBearerToken(&context, token);
      historyv1::GetHistoryRequest request;
      request.set_conversation_id(conversation);
      request.set_anchor_seq(after);
      request.set_direction(historyv1::DIRECTION_AFTER);
      request.set_limit(200);
      historyv1::GetHistoryResponse response;
      grpc::Status status = history->GetHistory(&context, request, &response);
      EXPECT_TRUE(status.ok()) << "GetHistory of " << conversation << ": "
                               << status.error_code() << " "
                               << status.error_message();
      if (!status.ok()) return digest;
      for (const messagev1::Entry& entry : response.entries()) {
        digest.emplace_back(entry.seq(), entry.sender_id(),
                            entry.client_msg_id(),
                            entry.has_message() ? entry.message().text() : "");
        after = entry.seq();
      }
      if (!response.has_more()) return digest;
    }
  }

  static RawReply Call(Service service, const std::string& method,
                       const std::string& request, const std::string& token) {
    RawCall call(Path(service, method));
    call.token = token;
    return testing::RawUnary(channels_[service], call, request);
  }

  struct Case {
    std::string name;
    Service service;
    std::string method;
    std::string request;  // wire bytes
    std::string token;
    Code want;
  };

  static void RunCases(const std::vector<Case>& cases) {
    for (const Case& c : cases) {
      RawReply reply = Call(c.service, c.method, c.request, c.token);
      EXPECT_EQ(reply.status.error_code(), c.want)
          << c.name << ": " << testing::ServiceName(c.service) << "."
          << c.method << " answered " << reply.status.error_code() << " \""
          << reply.status.error_message() << "\"";
    }
  }

  static messagev1::SendRequest SendTo(uint64_t conversation,
                                       const std::string& client_msg_id,
                                       const std::string& text) {
    messagev1::SendRequest request;
    request.set_conversation_id(conversation);
    request.set_client_msg_id(client_msg_id);
    request.mutable_message()->set_text(text);
    return request;
  }

  // A Chat stream's frames after writing `frames` and half-closing.
  struct ChatResult {
    std::vector<messagev1::ServerFrame> frames;
    grpc::Status status;
  };
  static ChatResult Chat(const std::string& token,
                         const std::vector<std::string>& frames) {
    RawCall call(Path(Service::kMessage, "Chat"));
    call.token = token;
    RawBidiStream stream(channels_[Service::kMessage], call);
    for (const std::string& frame : frames) {
      if (!stream.Write(frame)) break;
    }
    stream.WritesDone();
    ChatResult result;
    std::string wire;
    while (stream.Read(&wire)) {
      messagev1::ServerFrame frame;
      EXPECT_TRUE(frame.ParseFromString(wire));
      result.frames.push_back(frame);
    }
    result.status = stream.Finish();
    return result;
  }

  static std::string SendFrame(uint64_t request_id, uint64_t conversation,
                               const std::string& client_msg_id,
                               const messagev1::Message& message) {
    messagev1::ClientFrame frame;
    frame.mutable_send()->set_request_id(request_id);
    frame.mutable_send()->set_conversation_id(conversation);
    frame.mutable_send()->set_client_msg_id(client_msg_id);
    *frame.mutable_send()->mutable_message() = message;
    return frame.SerializeAsString();
  }

  static messagev1::Message Text(const std::string& text) {
    messagev1::Message message;
    message.set_text(text);
    return message;
  }

  // The Error frame for `request_id`, or an Error with code -1.
  static messagev1::Error ErrorFor(const ChatResult& result,
                                   uint64_t request_id) {
    for (const messagev1::ServerFrame& frame : result.frames) {
      if (frame.has_error() && frame.error().request_id() == request_id) {
        return frame.error();
      }
    }
    messagev1::Error none;
    none.set_code(-1);
    return none;
  }
  static bool AckedFor(const ChatResult& result, uint64_t request_id) {
    for (const messagev1::ServerFrame& frame : result.frames) {
      if (frame.has_ack() && frame.ack().request_id() == request_id) {
        return frame.ack().seq() > 0;
      }
    }
    return false;
  }

  static storage::testing::TestDatabase* database_;
  static ServiceCluster* cluster_;
  static std::map<Service, std::shared_ptr<grpc::Channel>> channels_;
  static std::map<Service, pid_t> pids_;
  static User alice_, bob_, carol_, root_, service_;
  static uint64_t direct_, group_, carol_group_, scratch_;
  static std::map<uint64_t, LogDigest> baselines_;
};

storage::testing::TestDatabase* BadInputTest::database_ = nullptr;
ServiceCluster* BadInputTest::cluster_ = nullptr;
std::map<Service, std::shared_ptr<grpc::Channel>> BadInputTest::channels_;
std::map<Service, pid_t> BadInputTest::pids_;
User BadInputTest::alice_, BadInputTest::bob_, BadInputTest::carol_,
    BadInputTest::root_, BadInputTest::service_;
uint64_t BadInputTest::direct_ = 0, BadInputTest::group_ = 0,
         BadInputTest::carol_group_ = 0, BadInputTest::scratch_ = 0;
std::map<uint64_t, LogDigest> BadInputTest::baselines_;

TEST_F(BadInputTest, OversizeFrames) {
  const std::string huge(kOversize, 'x');
  authv1::RegisterRequest registration;
  registration.set_username("mallory");
  registration.set_password(kPassword);
  registration.set_display_name(huge);
  historyv1::GetMessagesRequest many_seqs;
  many_seqs.set_conversation_id(direct_);
  // Packed varints of 3 bytes each: 700000 of them pass 1 MiB.
  for (uint64_t i = 0; i < 700000; ++i) many_seqs.add_seqs(i + 1);
  presencev1::QueryRequest many_users;
  for (uint64_t i = 0; i < 700000; ++i) many_users.add_user_ids(i + 1);
  RunCases({
      {"send beyond max receive size", Service::kMessage, "Send",
       SendTo(group_, "oversize-1", huge).SerializeAsString(), alice_.token,
       Code::RESOURCE_EXHAUSTED},
      {"send beyond the text limit", Service::kMessage, "Send",
       SendTo(group_, "oversize-2", std::string(8 * 1024 + 1, 'x'))
           .SerializeAsString(),
       alice_.token, Code::INVALID_ARGUMENT},
      {"register beyond max receive size", Service::kAuth, "Register",
       registration.SerializeAsString(), "", Code::RESOURCE_EXHAUSTED},
      {"history request beyond max receive size", Service::kHistory,
       "GetMessages", many_seqs.SerializeAsString(), alice_.token,
       Code::RESOURCE_EXHAUSTED},
      {"presence request beyond max receive size", Service::kPresence, "Query",
       many_users.SerializeAsString(), alice_.token, Code::RESOURCE_EXHAUSTED},
  });
  // Exactly at the text limit is fine (into the scratch group).
  RunCases({{"send at the text limit", Service::kMessage, "Send",
             SendTo(scratch_, "at-limit", std::string(8 * 1024, 'y'))
                 .SerializeAsString(),
             alice_.token, Code::OK}});

  // On a stream: a text over the limit fails that request only...
  ChatResult over_limit =
      Chat(alice_.token, {SendFrame(7, group_, "stream-over",
                                    Text(std::string(8 * 1024 + 1, 'z'))),
                          SendFrame(8, scratch_, "stream-ok", Text("fine"))});
  EXPECT_EQ(ErrorFor(over_limit, 7).code(),
            static_cast<int>(Code::INVALID_ARGUMENT));
  EXPECT_TRUE(AckedFor(over_limit, 8)) << "the stream did not go on";
  EXPECT_TRUE(over_limit.status.ok()) << over_limit.status.error_message();
  // ...a frame over the max receive size ends the stream.
  ChatResult over_max =
      Chat(alice_.token, {SendFrame(9, group_, "stream-huge", Text(huge))});
  EXPECT_EQ(over_max.status.error_code(), Code::RESOURCE_EXHAUSTED)
      << over_max.status.error_message();
  EXPECT_EQ(ErrorFor(over_max, 9).code(), -1);
}

TEST_F(BadInputTest, InvalidUtf8InEveryStoredString) {
  std::vector<Case> cases;
  auto add = [&](const std::string& name, Service service,
                 const std::string& method,
                 const google::protobuf::Message& request,
                 const std::string& token) {
    cases.push_back({name, service, method, request.SerializeAsString(), token,
                     Code::INVALID_ARGUMENT});
  };
  for (const char* field : {"username", "password", "display_name"}) {
    authv1::RegisterRequest request;
    request.set_username("utf8user");
    request.set_password(kPassword);
    request.set_display_name("Utf8 User");
    request.GetReflection()->SetString(
        &request, request.GetDescriptor()->FindFieldByName(field),
        kInvalidUtf8);
    add(absl::StrCat("Register.", field), Service::kAuth, "Register", request,
        "");
  }
  {
    authv1::LoginRequest request;
    request.set_username("alice");
    request.set_password(kPassword);
    request.set_device_name(kInvalidUtf8);
    add("Login.device_name", Service::kAuth, "Login", request, "");
  }
  for (const char* field : {"name", "description"}) {
    authv1::CreateServiceAccountRequest request;
    request.set_name("utf8bot");
    request.GetReflection()->SetString(
        &request, request.GetDescriptor()->FindFieldByName(field),
        kInvalidUtf8);
    add(absl::StrCat("CreateServiceAccount.", field), Service::kAuth,
        "CreateServiceAccount", request, root_.token);
  }
  {
    messagev1::SendRequest good = SendTo(group_, "utf8-1", "text");
    messagev1::SendRequest request = good;
    request.set_client_msg_id(kInvalidUtf8);
    add("Send.client_msg_id", Service::kMessage, "Send", request, alice_.token);
    request = good;
    request.mutable_message()->set_text(kInvalidUtf8);
    add("Send.message.text", Service::kMessage, "Send", request, alice_.token);
    request = good;
    request.mutable_message()->set_content_type(kInvalidUtf8);
    add("Send.message.content_type", Service::kMessage, "Send", request,
        alice_.token);
    request = good;
    (*request.mutable_message()->mutable_metadata())[kInvalidUtf8] = "v";
    add("Send.message.metadata key", Service::kMessage, "Send", request,
        alice_.token);
    request = good;
    (*request.mutable_message()->mutable_metadata())["k"] = kInvalidUtf8;
    add("Send.message.metadata value", Service::kMessage, "Send", request,
        alice_.token);

    messagev1::PublishRequest publish;
    publish.set_user_id(alice_.id);
    publish.set_client_msg_id("utf8-publish");
    publish.mutable_message()->set_text(kInvalidUtf8);
    add("Publish.message.text", Service::kMessage, "Publish", publish,
        service_.token);
  }
  {
    messagev1::CreateGroupRequest request;
    request.set_title(kInvalidUtf8);
    add("CreateGroup.title", Service::kMessage, "CreateGroup", request,
        alice_.token);
  }
  {
    presencev1::SetStatusRequest request;
    request.set_status_text(kInvalidUtf8);
    add("SetStatus.status_text", Service::kPresence, "SetStatus", request,
        alice_.token);
  }
  RunCases(cases);

  // Subscribe's device name (shown by presence).
  messagev1::SubscribeRequest subscribe;
  subscribe.mutable_device()->set_name(kInvalidUtf8);
  RawCall call(Path(Service::kMessage, "Subscribe"));
  call.token = alice_.token;
  RawServerStream stream(channels_[Service::kMessage], call,
                         subscribe.SerializeAsString());
  std::string ignored;
  EXPECT_FALSE(stream.Read(&ignored));
  EXPECT_EQ(stream.Finish().error_code(), Code::INVALID_ARGUMENT);

  // On Chat: the frame's request fails, the stream goes on.
  messagev1::Message metadata_key = Text("t");
  (*metadata_key.mutable_metadata())[kInvalidUtf8] = "v";
  ChatResult chat = Chat(
      alice_.token, {SendFrame(21, group_, "chat-utf8-1", Text(kInvalidUtf8)),
                     SendFrame(22, group_, "chat-utf8-2", metadata_key),
                     SendFrame(23, group_, kInvalidUtf8, Text("t")),
                     SendFrame(24, scratch_, "chat-utf8-ok", Text("ok"))});
  for (uint64_t request_id : {21, 22, 23}) {
    EXPECT_EQ(ErrorFor(chat, request_id).code(),
              static_cast<int>(Code::INVALID_ARGUMENT))
        << "request " << request_id;
  }
  EXPECT_TRUE(AckedFor(chat, 24));
  EXPECT_TRUE(chat.status.ok()) << chat.status.error_message();
}

TEST_F(BadInputTest, HugeMetadataMaps) {
  auto with_metadata = [](int entries, size_t key_bytes, size_t value_bytes) {
    messagev1::SendRequest request =
        SendTo(group_, absl::StrCat("meta-", entries, "-", key_bytes, "-",
                                    value_bytes),
               "text");
    for (int i = 0; i < entries; ++i) {
      std::string key;
      if (key_bytes > 0) {
        key = absl::StrCat("k", i);
        key.resize(std::max(key.size(), key_bytes), 'k');
      }
      (*request.mutable_message()->mutable_metadata())[key] =
          std::string(value_bytes, 'v');
    }
    return request.SerializeAsString();
  };
  RunCases({
      {"17 entries", Service::kMessage, "Send", with_metadata(17, 1, 1),
       alice_.token, Code::INVALID_ARGUMENT},
      {"20000 entries", Service::kMessage, "Send", with_metadata(20000, 1, 1),
       alice_.token, Code::INVALID_ARGUMENT},
      {"key of 65 bytes", Service::kMessage, "Send", with_metadata(1, 65, 1),
       alice_.token, Code::INVALID_ARGUMENT},
      {"value of 1025 bytes", Service::kMessage, "Send",
       with_metadata(1, 1, 1025), alice_.token, Code::INVALID_ARGUMENT},
      {"4 KiB + in total", Service::kMessage, "Send",
       with_metadata(5, 1, 1000), alice_.token, Code::INVALID_ARGUMENT},
      {"empty key", Service::kMessage, "Send", with_metadata(1, 0, 1),
       alice_.token, Code::INVALID_ARGUMENT},
  });
  // A map of 20000 entries on the stream: that request fails, nothing else.
  messagev1::Message huge_map = Text("t");
  for (int i = 0; i < 20000; ++i) {
    (*huge_map.mutable_metadata())[absl::StrCat("k", i)] = "v";
  }
  ChatResult chat = Chat(alice_.token, {SendFrame(31, group_, "huge-map", huge_map)});
  EXPECT_EQ(ErrorFor(chat, 31).code(), static_cast<int>(Code::INVALID_ARGUMENT));
  // At the bounds: 16 entries of 64-byte keys, 4 KiB in total.
  messagev1::SendRequest at_bounds = SendTo(scratch_, "meta-at-bounds", "t");
  for (int i = 0; i < 16; ++i) {
    std::string key = absl::StrCat("key", i);
    key.resize(64, 'k');
    (*at_bounds.mutable_message()->mutable_metadata())[key] =
        std::string(4 * 1024 / 16 - 64, 'v');
  }
  RunCases({{"16 entries, 4 KiB", Service::kMessage, "Send",
             at_bounds.SerializeAsString(), alice_.token, Code::OK}});
}

// A request naming only a conversation, on the wire.
template <typename Request>
std::string OnlyConversation(uint64_t conversation) {
  Request request;
  request.set_conversation_id(conversation);
  return request.SerializeAsString();
}

// A uint32 field set to -1 by a client that uses int32: protobuf reads the
// 10-byte varint truncated to 0xFFFFFFFF.
std::string WithNegativeUint32(const google::protobuf::Message& request,
                               int field_number) {
  std::string wire = request.SerializeAsString();
  wire.push_back(static_cast<char>(field_number << 3));  // varint
  for (int i = 0; i < 9; ++i) wire.push_back(static_cast<char>(0xff));
  wire.push_back(0x01);
  return wire;
}

TEST_F(BadInputTest, NegativeHugeAndZeroLimits) {
  auto history = [](uint32_t limit, uint64_t anchor,
                    historyv1::Direction direction) {
    historyv1::GetHistoryRequest request;
    request.set_conversation_id(group_);
    request.set_limit(limit);
    request.set_anchor_seq(anchor);
    request.set_direction(direction);
    return request;
  };
  historyv1::ListConversationsRequest list;
  historyv1::SyncRequest sync;
  messagev1::ListMembersRequest members;
  members.set_conversation_id(group_);
  historyv1::GetMessagesRequest no_seqs;
  no_seqs.set_conversation_id(group_);
  historyv1::GetMessagesRequest too_many_seqs = no_seqs;
  for (uint64_t i = 1; i <= 101; ++i) too_many_seqs.add_seqs(i);
  messagev1::MarkReadRequest read;
  read.set_conversation_id(group_);
  historyv1::MarkReadRequest history_read;
  history_read.set_conversation_id(group_);
  messagev1::CreateGroupRequest too_big;
  too_big.set_title("too big");
  for (uint64_t i = 0; i < 1001; ++i) too_big.add_member_user_ids(bob_.id);
  messagev1::PollRequest poll;
  (*poll.mutable_resume()->mutable_cursors())[group_] = 0;
  poll.set_max_entries(UINT32_MAX);
  poll.set_wait_ms(UINT32_MAX);

  auto wire = [](const google::protobuf::Message& m) {
    return m.SerializeAsString();
  };
  auto with_limit = [](auto request, uint32_t limit) {
    request.set_limit(limit);
    return request.SerializeAsString();
  };
  auto with_seq = [](auto request, uint64_t seq) {
    request.set_seq(seq);
    return request.SerializeAsString();
  };
  const std::string& token = alice_.token;
  RunCases({
      {"GetHistory limit 0 (default)", Service::kHistory, "GetHistory",
       wire(history(0, 0, historyv1::DIRECTION_BEFORE)), token, Code::OK},
      {"GetHistory limit 200", Service::kHistory, "GetHistory",
       wire(history(200, 0, historyv1::DIRECTION_BEFORE)), token, Code::OK},
      {"GetHistory limit 201", Service::kHistory, "GetHistory",
       wire(history(201, 0, historyv1::DIRECTION_BEFORE)), token,
       Code::INVALID_ARGUMENT},
      {"GetHistory limit -1", Service::kHistory, "GetHistory",
       WithNegativeUint32(history(0, 0, historyv1::DIRECTION_BEFORE), 4), token,
       Code::INVALID_ARGUMENT},
      {"GetHistory anchor beyond the end", Service::kHistory, "GetHistory",
       wire(history(10, UINT64_MAX, historyv1::DIRECTION_BEFORE)), token,
       Code::OK},
      {"GetHistory anchor at the end, after", Service::kHistory, "GetHistory",
       wire(history(10, UINT64_MAX, historyv1::DIRECTION_AFTER)), token,
       Code::OK},
      {"GetHistory unknown direction", Service::kHistory, "GetHistory",
       wire(history(10, 1, static_cast<historyv1::Direction>(99))), token,
       Code::INVALID_ARGUMENT},
      {"ListConversations limit 201", Service::kHistory, "ListConversations",
       with_limit(list, 201), token, Code::INVALID_ARGUMENT},
      {"ListConversations limit -1", Service::kHistory, "ListConversations",
       WithNegativeUint32(list, 2), token, Code::INVALID_ARGUMENT},
      {"ListConversations limit 0 (default)", Service::kHistory,
       "ListConversations", with_limit(list, 0), token, Code::OK},
      {"Sync limit 501", Service::kHistory, "Sync", with_limit(sync, 501),
       token, Code::INVALID_ARGUMENT},
      {"Sync limit -1", Service::kHistory, "Sync", WithNegativeUint32(sync, 3),
       token, Code::INVALID_ARGUMENT},
      {"GetMessages no seqs", Service::kHistory, "GetMessages", wire(no_seqs),
       token, Code::INVALID_ARGUMENT},
      {"GetMessages 101 seqs", Service::kHistory, "GetMessages",
       wire(too_many_seqs), token, Code::INVALID_ARGUMENT},
      {"ListMembers limit 1001", Service::kMessage, "ListMembers",
       with_limit(members, 1001), token, Code::INVALID_ARGUMENT},
      {"ListMembers limit -1", Service::kMessage, "ListMembers",
       WithNegativeUint32(members, 3), token, Code::INVALID_ARGUMENT},
      {"ListMembers limit 0 (default)", Service::kMessage, "ListMembers",
       with_limit(members, 0), token, Code::OK},
      {"MarkRead seq 0", Service::kMessage, "MarkRead", with_seq(read, 0),
       token, Code::OUT_OF_RANGE},
      {"MarkRead seq beyond the end", Service::kMessage, "MarkRead",
       with_seq(read, UINT64_MAX), token, Code::OUT_OF_RANGE},
      {"history MarkRead seq beyond the end", Service::kHistory, "MarkRead",
       with_seq(history_read, UINT64_MAX), token, Code::OUT_OF_RANGE},
      {"CreateGroup with 1001 members", Service::kMessage, "CreateGroup",
       wire(too_big), token, Code::FAILED_PRECONDITION},
      {"Poll with huge wait and max (capped, answers at once)",
       Service::kMessage, "Poll", wire(poll), token, Code::OK},
  });
}

// Every RPC naming a conversation: carol's answers exactly like one that
// does not exist.
TEST_F(BadInputTest, OtherUsersConversationsReadAsMissing) {
  struct Probe {
    std::string name;
    Service service;
    std::string method;
    std::function<std::string(uint64_t)> request;
    const User* caller;
  };
  auto history = [](uint64_t id) {
    historyv1::GetHistoryRequest request;
    request.set_conversation_id(id);
    return request.SerializeAsString();
  };
  auto messages = [](uint64_t id) {
    historyv1::GetMessagesRequest request;
    request.set_conversation_id(id);
    request.add_seqs(1);
    return request.SerializeAsString();
  };
  auto history_read = [](uint64_t id) {
    historyv1::MarkReadRequest request;
    request.set_conversation_id(id);
    request.set_seq(1);
    return request.SerializeAsString();
  };
  auto read = [](uint64_t id) {
    messagev1::MarkReadRequest request;
    request.set_conversation_id(id);
    request.set_seq(1);
    return request.SerializeAsString();
  };
  auto send = [](uint64_t id) {
    return SendTo(id, "foreign-send", "hello?").SerializeAsString();
  };
  auto publish = [](uint64_t id) {
    messagev1::PublishRequest request;
    request.set_conversation_id(id);
    request.set_client_msg_id("foreign-publish");
    request.mutable_message()->set_text("hello?");
    return request.SerializeAsString();
  };
  const auto typing = OnlyConversation<messagev1::SetTypingRequest>;
  const auto list_members = OnlyConversation<messagev1::ListMembersRequest>;
  const auto get = OnlyConversation<messagev1::GetConversationRequest>;
  auto add = [](uint64_t id) {
    messagev1::AddMembersRequest request;
    request.set_conversation_id(id);
    request.add_user_ids(bob_.id);
    return request.SerializeAsString();
  };
  auto remove = [](uint64_t id) {
    messagev1::RemoveMemberRequest request;
    request.set_conversation_id(id);
    request.set_user_id(carol_.id);
    return request.SerializeAsString();
  };
  const auto leave = OnlyConversation<messagev1::LeaveRequest>;
  auto role = [](uint64_t id) {
    messagev1::SetRoleRequest request;
    request.set_conversation_id(id);
    request.set_user_id(carol_.id);
    request.set_role(messagev1::MEMBER_ROLE_ADMIN);
    return request.SerializeAsString();
  };
  const std::vector<Probe> probes = {
      {"GetHistory", Service::kHistory, "GetHistory", history, &alice_},
      {"GetMessages", Service::kHistory, "GetMessages", messages, &alice_},
      {"history MarkRead", Service::kHistory, "MarkRead", history_read, &bob_},
      {"MarkRead", Service::kMessage, "MarkRead", read, &alice_},
      {"Send", Service::kMessage, "Send", send, &alice_},
      {"Publish", Service::kMessage, "Publish", publish, &service_},
      {"SetTyping", Service::kMessage, "SetTyping", typing, &bob_},
      {"ListMembers", Service::kMessage, "ListMembers", list_members, &alice_},
      {"GetConversation", Service::kMessage, "GetConversation", get, &alice_},
      {"AddMembers", Service::kMessage, "AddMembers", add, &alice_},
      {"RemoveMember", Service::kMessage, "RemoveMember", remove, &alice_},
      {"Leave", Service::kMessage, "Leave", leave, &bob_},
      {"SetRole", Service::kMessage, "SetRole", role, &alice_},
      {"GetHistory by an admin", Service::kHistory, "GetHistory", history,
       &root_},
  };
  for (const Probe& probe : probes) {
    RawReply foreign = Call(probe.service, probe.method,
                            probe.request(carol_group_), probe.caller->token);
    RawReply missing = Call(probe.service, probe.method,
                            probe.request(kMissingConversation),
                            probe.caller->token);
    EXPECT_EQ(foreign.status.error_code(), Code::NOT_FOUND)
        << probe.name << ": " << foreign.status.error_message();
    EXPECT_EQ(foreign.status.error_code(), missing.status.error_code())
        << probe.name;
    EXPECT_EQ(foreign.status.error_message(), missing.status.error_message())
        << probe.name;
  }
  // On Chat, as Error frames.
  ChatResult chat =
      Chat(alice_.token, {SendFrame(41, carol_group_, "foreign-chat", Text("?")),
                          SendFrame(42, kMissingConversation, "missing-chat",
                                    Text("?"))});
  const messagev1::Error foreign = ErrorFor(chat, 41);
  const messagev1::Error missing = ErrorFor(chat, 42);
  EXPECT_EQ(foreign.code(), static_cast<int>(Code::NOT_FOUND));
  EXPECT_EQ(foreign.code(), missing.code());
  EXPECT_EQ(foreign.message(), missing.message());
  // Resume cursors naming carol's conversation replay nothing of it.
  messagev1::ClientFrame hello;
  (*hello.mutable_hello()->mutable_resume()->mutable_cursors())[carol_group_] = 0;
  ChatResult resumed = Chat(alice_.token, {hello.SerializeAsString()});
  for (const messagev1::ServerFrame& frame : resumed.frames) {
    EXPECT_FALSE(frame.has_entry() &&
                 frame.entry().conversation_id() == carol_group_)
        << "carol's entry leaked to alice";
  }
  // Sync with a cursor on carol's conversation reports nothing of it.
  historyv1::SyncRequest sync;
  (*sync.mutable_cursors())[carol_group_] = 0;
  RawReply synced = Call(Service::kHistory, "Sync", sync.SerializeAsString(),
                         alice_.token);
  ASSERT_TRUE(synced.status.ok()) << synced.status.error_message();
  historyv1::SyncResponse changes;
  ASSERT_TRUE(changes.ParseFromString(synced.body));
  for (const historyv1::ConversationChange& change : changes.changes()) {
    EXPECT_NE(change.conversation().conversation_id(), carol_group_);
  }
}

TEST_F(BadInputTest, ExpiredForgedAndMissingTokens) {
  Caller caller;
  caller.user_id = alice_.id;
  caller.session_id = alice_.session;
  caller.role = auth::v1::ROLE_USER;
  caller.expires_at = absl::Now() - absl::Minutes(1);
  const std::string expired =
      cluster_->tokens().Mint(caller, absl::Now() - absl::Minutes(16));
  caller.expires_at = absl::Now() + absl::Hours(1);
  caller.user_id = carol_.id;  // claims to be carol
  auto forger = TokenCodec::Create({TokenKey{1, std::string(32, 'f')}});
  ASSERT_TRUE(forger.ok());
  const std::string forged = (*forger)->Mint(caller, absl::Now());
  // The right signature over a payload edited afterwards.
  std::string tampered = alice_.token;
  tampered[5] = tampered[5] == 'A' ? 'B' : 'A';

  historyv1::GetHistoryRequest history;
  history.set_conversation_id(carol_group_);
  presencev1::QueryRequest query;
  query.add_user_ids(alice_.id);
  const std::vector<std::tuple<Service, std::string, std::string>> calls = {
      {Service::kAuth, "WhoAmI", ""},
      {Service::kAuth, "ListSessions", ""},
      {Service::kMessage, "Send",
       SendTo(carol_group_, "token-test", "x").SerializeAsString()},
      {Service::kMessage, "GetConversation",
       [] {
         messagev1::GetConversationRequest r;
         r.set_conversation_id(carol_group_);
         return r.SerializeAsString();
       }()},
      {Service::kHistory, "GetHistory", history.SerializeAsString()},
      {Service::kHistory, "ListConversations", ""},
      {Service::kPresence, "Query", query.SerializeAsString()},
  };
  for (const auto& [name, token] :
       std::vector<std::pair<std::string, std::string>>{
           {"expired", expired},
           {"forged", forged},
           {"tampered", tampered},
           {"garbage", "not-a-token"},
           {"none", ""}}) {
    std::vector<Case> cases;
    for (const auto& [service, method, request] : calls) {
      cases.push_back({absl::StrCat(name, " token"), service, method, request,
                       token, Code::UNAUTHENTICATED});
    }
    RunCases(cases);
    ChatResult chat =
        Chat(token, {SendFrame(51, carol_group_, "token-chat", Text("x"))});
    EXPECT_EQ(chat.status.error_code(), Code::UNAUTHENTICATED) << name;
    EXPECT_TRUE(chat.frames.empty()) << name;
  }
  // Not the Bearer scheme.
  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("Basic ", alice_.token));
  authv1::WhoAmIResponse who;
  EXPECT_EQ(authv1::AuthService::NewStub(channels_[Service::kAuth])
                ->WhoAmI(&context, authv1::WhoAmIRequest(), &who)
                .error_code(),
            Code::UNAUTHENTICATED);
  // A refresh token that was never issued.
  authv1::RefreshRequest refresh;
  refresh.set_refresh_token("rt_made_up_refresh_token_value");
  RunCases({{"made-up refresh token", Service::kAuth, "Refresh",
             refresh.SerializeAsString(), "", Code::UNAUTHENTICATED}});

  // A logged-out session's token is refused everywhere within seconds (the
  // services learn revocations from auth's feed).
  User device = Register("dave");
  auto auth = authv1::AuthService::NewStub(channels_[Service::kAuth]);
  {
    grpc::ClientContext logout_context;
    AttachBearerToken(&logout_context, device.token);
    authv1::LogoutResponse out;
    ASSERT_TRUE(
        auth->Logout(&logout_context, authv1::LogoutRequest(), &out).ok());
  }
  for (const auto& [service, method, request] : calls) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    RawReply reply;
    do {
      reply = Call(service, method, request, device.token);
      if (reply.status.error_code() == Code::UNAUTHENTICATED) break;
      absl::SleepFor(absl::Milliseconds(100));
    } while (absl::Now() < deadline);
    EXPECT_EQ(reply.status.error_code(), Code::UNAUTHENTICATED)
        << "revoked token on " << testing::ServiceName(service) << "." << method;
  }
}

TEST_F(BadInputTest, MalformedPageTokens) {
  // A real token of each kind, to swap between the RPCs.
  history::ConversationListPosition position;
  position.last_activity_at = absl::FromUnixMicros(1700000000000000);
  position.conversation_id = group_;
  const std::string list_token = history::EncodeConversationListToken(position);
  const std::string sync_token = history::EncodeSyncToken(group_);
  auto list = [](const std::string& token) {
    historyv1::ListConversationsRequest request;
    request.set_page_token(token);
    return request.SerializeAsString();
  };
  auto sync = [](const std::string& token) {
    historyv1::SyncRequest request;
    request.set_page_token(token);
    return request.SerializeAsString();
  };
  const std::string& token = alice_.token;
  std::vector<Case> cases = {
      {"list: its own token", Service::kHistory, "ListConversations",
       list(list_token), token, Code::OK},
      {"sync: its own token", Service::kHistory, "Sync", sync(sync_token),
       token, Code::OK},
      {"list: a sync token", Service::kHistory, "ListConversations",
       list(sync_token), token, Code::INVALID_ARGUMENT},
      {"sync: a list token", Service::kHistory, "Sync", sync(list_token),
       token, Code::INVALID_ARGUMENT},
  };
  for (const auto& [name, bad] : std::vector<std::pair<std::string, std::string>>{
           {"not base64", "!!not*base64!!"},
           {"padded base64", list_token + "=="},
           {"truncated", list_token.substr(0, list_token.size() / 2)},
           {"one more char", list_token + "A"},
           {"a huge token", std::string(100000, 'A')},
           {"whitespace", " "},
       }) {
    cases.push_back({absl::StrCat("list: ", name), Service::kHistory,
                     "ListConversations", list(bad), token,
                     Code::INVALID_ARGUMENT});
    cases.push_back({absl::StrCat("sync: ", name), Service::kHistory, "Sync",
                     sync(bad), token, Code::INVALID_ARGUMENT});
  }
  RunCases(cases);
}

}  // namespace
}  // namespace im
