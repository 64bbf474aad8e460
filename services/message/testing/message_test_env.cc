#include "services/message/testing/message_test_env.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace im::message::testing {

// ----------------------------------------------------------------- env ----

MessageServiceOptions MessageTestEnv::DefaultOptions() {
  MessageServiceOptions options;
  options.send_rate = RateOptions(0, 1);  // unlimited
  options.typing_rate = RateOptions(0, 1);
  options.worker_threads = 4;
  options.writer.shards = 2;
  return options;
}

std::unique_ptr<MessageTestEnv> MessageTestEnv::Start(
    std::unique_ptr<storage::Database> db,
    const MessageServiceOptions& options) {
  if (db == nullptr) return nullptr;
  std::unique_ptr<MessageTestEnv> env(new MessageTestEnv());
  env->db_ = std::move(db);
  TokenKey key;
  key.id = 1;
  key.secret = std::string(32, 'k');
  absl::StatusOr<std::unique_ptr<TokenCodec>> codec =
      TokenCodec::Create({key});
  if (!codec.ok()) {
    ADD_FAILURE() << codec.status();
    return nullptr;
  }
  env->codec_ = *std::move(codec);
  env->authenticator_ = std::make_unique<Authenticator>(env->codec_.get(),
                                                        &env->revocations_);
  MessageServiceImpl::Dependencies deps;
  deps.log = env->db_->log();
  deps.reader = env->db_->reader();
  deps.read_markers = env->db_->read_markers();
  deps.authenticator = env->authenticator_.get();
  deps.revocations = &env->revocations_;
  deps.presence = &env->presence_;
  absl::StatusOr<std::unique_ptr<MessageServiceImpl>> service =
      MessageServiceImpl::Create(options, deps);
  if (!service.ok()) {
    ADD_FAILURE() << service.status();
    return nullptr;
  }
  env->service_ = *std::move(service);
  ServerOptions server_options;
  server_options.name = "im.message.v1.MessageService";
  server_options.listen_address = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start(server_options, {env->service_.get()});
  if (!server.ok()) {
    ADD_FAILURE() << server.status();
    return nullptr;
  }
  env->server_ = *std::move(server);
  env->channel_ = env->NewChannel();
  return env;
}

MessageTestEnv::~MessageTestEnv() { Shutdown(); }

void MessageTestEnv::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (service_ != nullptr) service_->Drain();
  if (server_ != nullptr) server_->Shutdown(absl::Seconds(2));
  service_.reset();
}

uint64_t MessageTestEnv::CreateUser(const std::string& name) {
  storage::NewUser user;
  user.username = absl::StrCat(name, "_", ++next_user_);
  user.username_norm = absl::AsciiStrToLower(user.username);
  user.display_name = name;
  user.password_hash = "x";
  user.created_at = absl::Now();
  absl::StatusOr<storage::UserRecord> record = db_->users()->CreateUser(user);
  EXPECT_TRUE(record.ok()) << record.status();
  return record.ok() ? record->id : 0;
}

uint64_t MessageTestEnv::CreateServiceAccount(const std::string& name) {
  storage::NewServiceAccount account;
  account.name = absl::StrCat(name, "_", ++next_user_);
  account.name_norm = absl::AsciiStrToLower(account.name);
  account.api_key_hash = std::string(32, static_cast<char>('a' + next_user_));
  account.key_prefix = "k";
  account.created_at = absl::Now();
  absl::StatusOr<storage::ServiceAccountRecord> record =
      db_->users()->CreateServiceAccount(account);
  EXPECT_TRUE(record.ok()) << record.status();
  return record.ok() ? record->user_id : 0;
}

std::string MessageTestEnv::Token(uint64_t user_id, uint64_t session_id,
                                  auth::v1::Role role, absl::Duration ttl) {
  Caller caller;
  caller.user_id = user_id;
  caller.session_id = session_id;
  caller.role = role;
  const absl::Time now = absl::Now();
  caller.expires_at = now + ttl;
  return codec_->Mint(caller, now);
}

std::shared_ptr<grpc::Channel> NewTestChannel(const std::string& address) {
  grpc::ChannelArguments args;
  // A separate connection even to the same address.
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 16 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
}

std::shared_ptr<grpc::Channel> MessageTestEnv::NewChannel() {
  return NewTestChannel(server_->address());
}

std::unique_ptr<v1::MessageService::Stub> MessageTestEnv::Stub() {
  return v1::MessageService::NewStub(channel_);
}

void Authorize(grpc::ClientContext* context, const std::string& token) {
  context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
}

uint64_t MessageTestEnv::CreateGroup(const std::string& owner_token,
                                     const std::vector<uint64_t>& members,
                                     const std::string& title) {
  grpc::ClientContext context;
  Authorize(&context, owner_token);
  v1::CreateGroupRequest request;
  request.set_title(title);
  for (uint64_t id : members) request.add_member_user_ids(id);
  v1::CreateGroupResponse response;
  grpc::Status status = Stub()->CreateGroup(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.conversation().conversation_id();
}

uint64_t MessageTestEnv::Direct(const std::string& token, uint64_t other) {
  grpc::ClientContext context;
  Authorize(&context, token);
  v1::GetOrCreateDirectRequest request;
  request.set_user_id(other);
  v1::GetOrCreateDirectResponse response;
  grpc::Status status =
      Stub()->GetOrCreateDirect(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.conversation().conversation_id();
}

std::vector<storage::Entry> MessageTestEnv::Log(uint64_t conversation_id) {
  std::vector<storage::Entry> all;
  uint64_t after = 0;
  for (;;) {
    absl::StatusOr<std::vector<storage::Entry>> page = db_->reader()->ReadAfter(
        conversation_id, after, std::numeric_limits<uint64_t>::max(), 1000);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok() || page->empty()) break;
    after = page->back().seq();
    for (storage::Entry& entry : *page) all.push_back(std::move(entry));
  }
  return all;
}

std::vector<v1::Entry> EntriesOf(const std::vector<v1::ServerFrame>& frames,
                                 uint64_t conversation_id) {
  std::vector<v1::Entry> out;
  for (const v1::ServerFrame& frame : frames) {
    if (frame.has_entry() &&
        frame.entry().conversation_id() == conversation_id) {
      out.push_back(frame.entry());
    }
  }
  return out;
}

// ---------------------------------------------------------------- chat ----

ChatClient::ChatClient(MessageTestEnv& env, const std::string& token,
                       Options options)
    : ChatClient(
          options.channel != nullptr ? options.channel : env.NewChannel(),
          token, options) {}

ChatClient::ChatClient(std::shared_ptr<grpc::Channel> channel,
                       const std::string& token, const Options& options)
    : stub_(v1::MessageService::NewStub(std::move(channel))) {
  Authorize(&context_, token);
  stream_ = stub_->Chat(&context_);
  if (options.hello.has_value()) {
    v1::ClientFrame frame;
    *frame.mutable_hello() = *options.hello;
    stream_->Write(frame);
  }
  if (options.read) StartReading();
}

ChatClient::~ChatClient() {
  if (!recorder_.ended()) context_.TryCancel();
  if (!reading_) StartReading();  // drains what is left so Finish returns
  if (reader_.joinable()) reader_.join();
  if (!status_.has_value()) stream_->Finish();
}

v1::Hello ChatClient::ResumeHello(
    const absl::flat_hash_map<uint64_t, uint64_t>& cursors,
    bool replay_unlisted) {
  v1::Hello hello;
  for (const auto& [id, seq] : cursors) {
    (*hello.mutable_resume()->mutable_cursors())[id] = seq;
  }
  hello.mutable_resume()->set_replay_unlisted(replay_unlisted);
  return hello;
}

void ChatClient::StartReading() {
  if (reading_) return;
  reading_ = true;
  reader_ = std::thread([this] { ReadLoop(); });
}

void ChatClient::ReadLoop() {
  v1::ServerFrame frame;
  while (stream_->Read(&frame)) recorder_.Add(frame);
  recorder_.MarkEnded();
}

bool ChatClient::Write(const v1::ClientFrame& frame) {
  return stream_->Write(frame);
}

bool ChatClient::Send(uint64_t request_id, uint64_t conversation_id,
                      const std::string& client_msg_id,
                      const std::string& text) {
  v1::ClientFrame frame;
  v1::SendFrame* send = frame.mutable_send();
  send->set_request_id(request_id);
  send->set_conversation_id(conversation_id);
  send->set_client_msg_id(client_msg_id);
  send->mutable_message()->set_text(text);
  return Write(frame);
}

// ------------------------------------------------------------ recorder ----

void FrameRecorder::Add(const v1::ServerFrame& frame) {
  absl::MutexLock lock(&mu_);
  frames_.push_back(frame);
}

void FrameRecorder::MarkEnded() {
  absl::MutexLock lock(&mu_);
  ended_ = true;
}

bool FrameRecorder::WaitFor(
    const std::function<bool(const std::vector<v1::ServerFrame>&)>& done,
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  for (;;) {
    if (done(frames_)) return true;
    if (ended_ || absl::Now() >= deadline) return false;
    // Re-checks every few milliseconds (frames arrive without a signal).
    mu_.AwaitWithDeadline(
        absl::Condition(+[](bool* ended) { return *ended; }, &ended_),
        std::min(deadline, absl::Now() + absl::Milliseconds(2)));
  }
}

bool FrameRecorder::WaitEnded(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(+[](bool* ended) { return *ended; }, &ended_), timeout);
}

std::vector<v1::ServerFrame> FrameRecorder::frames() const {
  absl::MutexLock lock(&mu_);
  return frames_;
}

bool FrameRecorder::ended() const {
  absl::MutexLock lock(&mu_);
  return ended_;
}

bool ChatClient::WaitFor(
    const std::function<bool(const std::vector<v1::ServerFrame>&)>& done,
    absl::Duration timeout) {
  return recorder_.WaitFor(done, timeout);
}

std::optional<v1::SendAck> ChatClient::AwaitAck(uint64_t request_id,
                                                absl::Duration timeout) {
  std::optional<v1::SendAck> ack;
  std::optional<v1::Error> error;
  WaitFor(
      [&](const std::vector<v1::ServerFrame>& frames) {
        for (const v1::ServerFrame& frame : frames) {
          if (frame.has_ack() && frame.ack().request_id() == request_id) {
            ack = frame.ack();
            return true;
          }
          if (frame.has_error() && frame.error().request_id() == request_id) {
            error = frame.error();
            return true;
          }
        }
        return false;
      },
      timeout);
  if (error.has_value()) {
    ADD_FAILURE() << "request " << request_id << " failed: "
                  << error->ShortDebugString();
  } else if (!ack.has_value()) {
    ADD_FAILURE() << "no ack for request " << request_id;
  }
  return ack;
}

std::optional<v1::Error> ChatClient::AwaitError(uint64_t request_id,
                                                absl::Duration timeout) {
  std::optional<v1::Error> error;
  WaitFor(
      [&](const std::vector<v1::ServerFrame>& frames) {
        for (const v1::ServerFrame& frame : frames) {
          if (frame.has_error() && frame.error().request_id() == request_id) {
            error = frame.error();
            return true;
          }
          if (frame.has_ack() && frame.ack().request_id() == request_id) {
            return true;
          }
        }
        return false;
      },
      timeout);
  if (!error.has_value()) {
    ADD_FAILURE() << "no error for request " << request_id;
  }
  return error;
}

bool ChatClient::AwaitReady(absl::Duration timeout) {
  return WaitFor(
      [](const std::vector<v1::ServerFrame>& frames) {
        for (const v1::ServerFrame& frame : frames) {
          if (frame.has_ready()) return true;
        }
        return false;
      },
      timeout);
}

bool ChatClient::AwaitSeq(uint64_t conversation_id, uint64_t seq,
                          absl::Duration timeout) {
  return WaitFor(
      [&](const std::vector<v1::ServerFrame>& frames) {
        for (const v1::ServerFrame& frame : frames) {
          if (frame.has_entry() &&
              frame.entry().conversation_id() == conversation_id &&
              frame.entry().seq() >= seq) {
            return true;
          }
        }
        return false;
      },
      timeout);
}

std::vector<v1::ServerFrame> ChatClient::frames() const {
  return recorder_.frames();
}

std::vector<v1::Entry> ChatClient::Entries(uint64_t conversation_id) const {
  return EntriesOf(frames(), conversation_id);
}

std::vector<uint64_t> ChatClient::Seqs(uint64_t conversation_id) const {
  std::vector<uint64_t> seqs;
  for (const v1::Entry& entry : Entries(conversation_id)) {
    seqs.push_back(entry.seq());
  }
  return seqs;
}

absl::flat_hash_map<uint64_t, uint64_t> ChatClient::Cursors() const {
  absl::flat_hash_map<uint64_t, uint64_t> cursors;
  for (const v1::ServerFrame& frame : frames()) {
    if (!frame.has_entry()) continue;
    uint64_t& seq = cursors[frame.entry().conversation_id()];
    seq = std::max(seq, frame.entry().seq());
  }
  return cursors;
}

bool ChatClient::ended() const { return recorder_.ended(); }

grpc::Status ChatClient::CollectStatus() {
  if (!status_.has_value()) {
    if (reader_.joinable()) reader_.join();
    status_ = stream_->Finish();
  }
  return *status_;
}

grpc::Status ChatClient::Finish(absl::Duration timeout) {
  if (!half_closed_) {
    half_closed_ = true;
    stream_->WritesDone();
  }
  return AwaitEnd(timeout);
}

grpc::Status ChatClient::AwaitEnd(absl::Duration timeout) {
  if (status_.has_value()) return *status_;
  StartReading();
  if (!recorder_.WaitEnded(timeout)) {
    return grpc::Status(grpc::StatusCode::UNKNOWN, "timeout");
  }
  return CollectStatus();
}

grpc::Status ChatClient::Cancel() {
  context_.TryCancel();
  return AwaitEnd();
}

// ----------------------------------------------------------- subscribe ----

SubscribeClient::SubscribeClient(MessageTestEnv& env, const std::string& token,
                                 const v1::SubscribeRequest& request)
    : stub_(v1::MessageService::NewStub(env.NewChannel())) {
  Authorize(&context_, token);
  stream_ = stub_->Subscribe(&context_, request);
  reader_ = std::thread([this] {
    v1::ServerFrame frame;
    while (stream_->Read(&frame)) recorder_.Add(frame);
    recorder_.MarkEnded();
  });
}

SubscribeClient::~SubscribeClient() {
  context_.TryCancel();
  if (reader_.joinable()) reader_.join();
  if (!status_.has_value()) stream_->Finish();
}

bool SubscribeClient::WaitFor(
    const std::function<bool(const std::vector<v1::ServerFrame>&)>& done,
    absl::Duration timeout) {
  return recorder_.WaitFor(done, timeout);
}

std::vector<v1::ServerFrame> SubscribeClient::frames() const {
  return recorder_.frames();
}

grpc::Status SubscribeClient::AwaitEnd(absl::Duration timeout) {
  if (status_.has_value()) return *status_;
  if (!recorder_.WaitEnded(timeout)) {
    return grpc::Status(grpc::StatusCode::UNKNOWN, "timeout");
  }
  if (reader_.joinable()) reader_.join();
  status_ = stream_->Finish();
  return *status_;
}

}  // namespace im::message::testing
