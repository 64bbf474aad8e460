#include "tests/fuzz/fuzz_backend.h"

#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/logging.h"
#include "im/auth/v1/auth.grpc.pb.h"
#include "im/message/v1/message.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace im::fuzz {
namespace {

constexpr char kPassword[] = "fuzz-password-1";

template <typename T>
T Must(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) {
    std::fprintf(stderr, "fuzz backend: %s: %s\n", what,
                 value.status().ToString().c_str());
    std::abort();
  }
  return *std::move(value);
}

void MustOk(const grpc::Status& status, const char* what) {
  if (!status.ok()) {
    std::fprintf(stderr, "fuzz backend: %s: %d %s\n", what,
                 static_cast<int>(status.error_code()),
                 status.error_message().c_str());
    std::abort();
  }
}

}  // namespace

FuzzBackend& FuzzBackend::Get() {
  static FuzzBackend* const backend = [] {
    // Fuzzing runs millions of calls; the services' per-call logs would
    // drown the fuzzer's own output.
    spdlog::set_level(spdlog::level::off);
    google::protobuf::SetLogHandler(nullptr);
    auto* created = new FuzzBackend();
    if (absl::Status status = created->Start(); !status.ok()) {
      std::fprintf(stderr, "fuzz backend: %s\n", status.ToString().c_str());
      std::abort();
    }
    return created;
  }();
  return *backend;
}

absl::Status FuzzBackend::Start() {
  codec_ = Must(TokenCodec::Create({TokenKey{1, std::string(32, 'k')}}),
                "token codec");
  forger_ = Must(TokenCodec::Create({TokenKey{1, std::string(32, 'f')}}),
                 "forging codec");
  authenticator_ = std::make_unique<Authenticator>(codec_.get(), &revocations_);
  internal_tokens_ = std::make_unique<InternalTokenSource>(codec_.get());

  auth::AuthServiceImpl::Options auth_options;
  // The cheapest argon2id libsodium accepts: fuzzing is about parsing and
  // rules, not password cost.
  auth_options.password_hashing.opslimit = crypto_pwhash_OPSLIMIT_MIN;
  auth_options.password_hashing.memlimit_bytes = crypto_pwhash_MEMLIMIT_MIN;
  auth_options.accounts.admin_usernames = {"root"};
  auth_ = Must(auth::AuthServiceImpl::Create(auth_options, db_.users(),
                                             db_.sessions(), codec_.get()),
               "auth service");

  message::MessageServiceOptions message_options;
  // Generous limits so inputs reach the handlers instead of the limiter.
  message_options.send_rate = message::RateOptions(0, 1000000);
  message_options.typing_rate = message::RateOptions(0, 1000000);
  message_options.worker_threads = 2;
  message_options.writer.shards = 1;
  message::MessageServiceImpl::Dependencies message_deps;
  message_deps.log = db_.log();
  message_deps.reader = db_.reader();
  message_deps.read_markers = db_.read_markers();
  message_deps.authenticator = authenticator_.get();
  message_deps.revocations = &revocations_;
  message_ = Must(message::MessageServiceImpl::Create(message_options,
                                                      message_deps),
                  "message service");

  presence::PresenceServiceImpl::Options presence_options;
  presence_options.worker_threads = 1;
  presence_ = Must(presence::PresenceServiceImpl::Create(
                       presence_options, authenticator_.get(), db_.users(),
                       db_.reader(), &revocations_),
                   "presence service");

  ServerOptions front_options;
  front_options.listen_address = "127.0.0.1:0";
  front_ = Must(GrpcServer::Start(front_options, {auth_.get(), message_.get(),
                                                  presence_.get()}),
                "front server");
  front_channel_ = front_->server()->InProcessChannel(grpc::ChannelArguments());

  history_ = Must(history::HistoryServiceImpl::Create(
                      history::HistoryServiceOptions(), db_.reader(),
                      authenticator_.get(),
                      message::v1::MessageService::NewStub(front_channel_)),
                  "history service");
  ServerOptions history_options;
  history_options.listen_address = "127.0.0.1:0";
  history_server_ =
      Must(GrpcServer::Start(history_options, {history_.get()}), "history server");
  history_channel_ =
      history_server_->server()->InProcessChannel(grpc::ChannelArguments());
  return Seed();
}

absl::Status FuzzBackend::Seed() {
  auto auth = auth::v1::AuthService::NewStub(front_channel_);
  auto message = message::v1::MessageService::NewStub(front_channel_);
  tokens_.assign(static_cast<size_t>(Credential::kCount), "");

  auto login = [&](const std::string& name, uint64_t* id) {
    grpc::ClientContext register_context;
    auth::v1::RegisterRequest registration;
    registration.set_username(name);
    registration.set_password(kPassword);
    auth::v1::RegisterResponse registered;
    MustOk(auth->Register(&register_context, registration, &registered),
           "register");
    grpc::ClientContext login_context;
    auth::v1::LoginRequest request;
    request.set_username(name);
    request.set_password(kPassword);
    request.set_device_name("fuzz");
    auth::v1::LoginResponse response;
    MustOk(auth->Login(&login_context, request, &response), "login");
    *id = response.tokens().user_id();
    return response.tokens();
  };
  const auth::v1::TokenPair alice = login("alice", &seeded_.alice);
  tokens_[static_cast<size_t>(Credential::kAlice)] = alice.access_token();
  seeded_.alice_refresh = alice.refresh_token();
  tokens_[static_cast<size_t>(Credential::kBob)] =
      login("bob", &seeded_.bob).access_token();
  tokens_[static_cast<size_t>(Credential::kCarol)] =
      login("carol", &seeded_.carol).access_token();
  tokens_[static_cast<size_t>(Credential::kAdmin)] =
      login("root", &seeded_.admin).access_token();

  {
    grpc::ClientContext context;
    Prepare(&context, Credential::kAdmin);
    auth::v1::CreateServiceAccountRequest request;
    request.set_name("fuzzbot");
    auth::v1::CreateServiceAccountResponse created;
    MustOk(auth->CreateServiceAccount(&context, request, &created),
           "create service account");
    grpc::ClientContext exchange_context;
    auth::v1::ExchangeApiKeyRequest exchange;
    exchange.set_api_key(created.api_key());
    auth::v1::ExchangeApiKeyResponse exchanged;
    MustOk(auth->ExchangeApiKey(&exchange_context, exchange, &exchanged),
           "exchange api key");
    seeded_.service = exchanged.tokens().user_id();
    tokens_[static_cast<size_t>(Credential::kService)] =
        exchanged.tokens().access_token();
  }
  tokens_[static_cast<size_t>(Credential::kInternal)] =
      internal_tokens_->Token();
  Caller expired;
  expired.user_id = seeded_.alice;
  expired.session_id = alice.session_id();
  expired.role = auth::v1::ROLE_USER;
  expired.expires_at = absl::Now() - absl::Hours(1);
  tokens_[static_cast<size_t>(Credential::kExpired)] =
      codec_->Mint(expired, absl::Now() - absl::Hours(2));
  Caller forged = expired;
  forged.expires_at = absl::Now() + absl::Hours(24 * 365);
  tokens_[static_cast<size_t>(Credential::kForged)] =
      forger_->Mint(forged, absl::Now());
  tokens_[static_cast<size_t>(Credential::kGarbage)] = "v1.not.a-token";

  {
    grpc::ClientContext context;
    Prepare(&context, Credential::kAlice);
    message::v1::GetOrCreateDirectRequest request;
    request.set_user_id(seeded_.bob);
    message::v1::GetOrCreateDirectResponse response;
    MustOk(message->GetOrCreateDirect(&context, request, &response), "direct");
    seeded_.direct = response.conversation().conversation_id();
  }
  auto group = [&](Credential owner, std::vector<uint64_t> members,
                   const std::string& title) {
    grpc::ClientContext context;
    Prepare(&context, owner);
    message::v1::CreateGroupRequest request;
    request.set_title(title);
    for (uint64_t member : members) request.add_member_user_ids(member);
    message::v1::CreateGroupResponse response;
    MustOk(message->CreateGroup(&context, request, &response), "group");
    return response.conversation().conversation_id();
  };
  seeded_.group = group(Credential::kAlice, {seeded_.bob}, "fuzz group");
  seeded_.carol_group = group(Credential::kCarol, {}, "carol's notes");

  int n = 0;
  for (auto [credential, conversation] :
       {std::pair{Credential::kAlice, seeded_.direct},
        std::pair{Credential::kBob, seeded_.direct},
        std::pair{Credential::kAlice, seeded_.group},
        std::pair{Credential::kCarol, seeded_.carol_group}}) {
    grpc::ClientContext context;
    Prepare(&context, credential);
    message::v1::SendRequest request;
    request.set_conversation_id(conversation);
    request.set_client_msg_id(absl::StrCat("seed-", ++n));
    request.mutable_message()->set_text(absl::StrCat("seed message ", n));
    message::v1::SendResponse response;
    MustOk(message->Send(&context, request, &response), "send");
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> FuzzBackend::ChannelFor(
    const std::string& service_full_name) const {
  return service_full_name == "im.history.v1.HistoryService" ? history_channel_
                                                             : front_channel_;
}

std::string FuzzBackend::AccessToken(Credential credential) const {
  return tokens_[static_cast<size_t>(credential)];
}

void FuzzBackend::Prepare(grpc::ClientContext* context,
                          Credential credential) const {
  // Generous: a handler that has not answered by then hangs, which is a
  // finding (DEADLINE_EXCEEDED is never an acceptable answer here).
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(10));
  switch (credential) {
    case Credential::kNone:
      return;
    case Credential::kNotBearer:
      context->AddMetadata("authorization",
                           absl::StrCat("Basic ", AccessToken(Credential::kAlice)));
      return;
    default:
      AttachBearerToken(context, AccessToken(credential));
  }
}

absl::StatusOr<std::vector<storage::Entry>> FuzzBackend::StoredLog(
    uint64_t conversation_id) {
  std::vector<storage::Entry> all;
  uint64_t after = 0;
  for (;;) {
    absl::StatusOr<std::vector<storage::Entry>> page =
        db_.reader()->ReadAfter(
            conversation_id, after, std::numeric_limits<uint64_t>::max(), 1000);
    if (!page.ok()) return page.status();
    if (page->empty()) return all;
    after = page->back().seq();
    for (storage::Entry& entry : *page) all.push_back(std::move(entry));
  }
}

}  // namespace im::fuzz
