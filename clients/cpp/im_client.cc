#include "clients/cpp/im_client.h"

#include <utility>

#include "clients/cpp/unary_call.h"

namespace im::client {

namespace auth_v1 = ::im::auth::v1;
namespace message_v1 = ::im::message::v1;
namespace history_v1 = ::im::history::v1;
namespace presence_v1 = ::im::presence::v1;

absl::StatusOr<Channels> Channels::Connect(const Endpoints& endpoints,
                                           const grpc::ChannelArguments* extra) {
  const grpc::ChannelArguments args =
      extra != nullptr ? *extra : grpc::ChannelArguments();
  Channels channels;
  struct Target {
    const std::string& address;
    std::shared_ptr<grpc::Channel>* channel;
  };
  for (const Target& target :
       {Target{endpoints.auth, &channels.auth},
        Target{endpoints.message, &channels.message},
        Target{endpoints.history, &channels.history},
        Target{endpoints.presence, &channels.presence}}) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        MakeChannel(target.address, endpoints.tls, args);
    if (!channel.ok()) return channel.status();
    *target.channel = *std::move(channel);
  }
  return channels;
}

absl::StatusOr<std::unique_ptr<ImClient>> ImClient::Create(
    const Options& options, const Channels* channels,
    std::shared_ptr<ClientRuntime> runtime) {
  Channels made;
  if (channels == nullptr || channels->auth == nullptr ||
      channels->message == nullptr || channels->history == nullptr ||
      channels->presence == nullptr) {
    absl::StatusOr<Channels> connected = Channels::Connect(options.endpoints);
    if (!connected.ok()) return connected.status();
    made = *std::move(connected);
  } else {
    made = *channels;
  }
  if (runtime == nullptr) runtime = ClientRuntime::Make();
  return std::unique_ptr<ImClient>(
      new ImClient(options, std::move(made), std::move(runtime)));
}

namespace {

SessionTokens::Options TokenOptions(const ImClient::Options& options) {
  SessionTokens::Options tokens = options.tokens;
  tokens.device_name = options.device_name;
  tokens.device_kind = options.device_kind;
  return tokens;
}

}  // namespace

ImClient::ImClient(const Options& options, Channels channels,
                   std::shared_ptr<ClientRuntime> runtime)
    : options_(options),
      channels_(std::move(channels)),
      runtime_(std::move(runtime)),
      auth_(auth_v1::AuthService::NewStub(channels_.auth)),
      message_(message_v1::MessageService::NewStub(channels_.message)),
      history_(history_v1::HistoryService::NewStub(channels_.history)),
      presence_(presence_v1::PresenceService::NewStub(channels_.presence)),
      tokens_(std::make_unique<SessionTokens>(TokenOptions(options),
                                              channels_.auth, runtime_)) {}

ImClient::~ImClient() {
  StopChat();
  tokens_->Stop();
}

std::string ImClient::FreshToken() {
  if (tokens_->signed_in() &&
      tokens_->AccessExpiresAt() - absl::Now() < absl::Seconds(2)) {
    // A failure shows up as the call's own UNAUTHENTICATED.
    tokens_->RenewNow().IgnoreError();
  }
  return tokens_->AccessToken();
}

template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> ImClient::Call(
    Stub* stub,
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                 Response*),
    const Request& request) {
  return CallUnary(stub, method, request, FreshToken(), options_.rpc_timeout);
}

// ------------------------------------------------------------------ auth --

absl::StatusOr<auth_v1::User> ImClient::Register(
    const std::string& username, const std::string& password,
    const std::string& display_name) {
  auth_v1::RegisterRequest request;
  request.set_username(username);
  request.set_password(password);
  request.set_display_name(display_name);
  absl::StatusOr<auth_v1::RegisterResponse> response =
      CallUnary(auth_.get(), &auth_v1::AuthService::Stub::Register, request,
                "", options_.rpc_timeout);
  if (!response.ok()) return response.status();
  return response->user();
}

absl::Status ImClient::Login(const std::string& username,
                             const std::string& password) {
  return tokens_->Login(username, password);
}

absl::Status ImClient::LoginWithApiKey(const std::string& api_key) {
  return tokens_->ExchangeApiKey(api_key);
}

absl::Status ImClient::ResumeSession(const auth_v1::TokenPair& tokens) {
  return tokens_->Adopt(tokens);
}

absl::StatusOr<auth_v1::WhoAmIResponse> ImClient::WhoAmI() {
  return Call(auth_.get(), &auth_v1::AuthService::Stub::WhoAmI,
              auth_v1::WhoAmIRequest());
}

absl::Status ImClient::Logout() {
  return Call(auth_.get(), &auth_v1::AuthService::Stub::Logout,
              auth_v1::LogoutRequest())
      .status();
}

absl::StatusOr<std::vector<auth_v1::User>> ImClient::LookupUsers(
    const std::vector<uint64_t>& user_ids,
    const std::vector<std::string>& usernames) {
  auth_v1::LookupUsersRequest request;
  for (uint64_t id : user_ids) request.add_user_ids(id);
  for (const std::string& name : usernames) request.add_usernames(name);
  absl::StatusOr<auth_v1::LookupUsersResponse> response =
      Call(auth_.get(), &auth_v1::AuthService::Stub::LookupUsers, request);
  if (!response.ok()) return response.status();
  return std::vector<auth_v1::User>(response->users().begin(),
                                    response->users().end());
}

absl::StatusOr<uint64_t> ImClient::ResolveUsername(const std::string& username) {
  absl::StatusOr<std::vector<auth_v1::User>> users =
      LookupUsers({}, {username});
  if (!users.ok()) return users.status();
  if (users->empty()) {
    return absl::NotFoundError("no user named \"" + username + "\"");
  }
  return users->front().user_id();
}

absl::StatusOr<auth_v1::CreateServiceAccountResponse>
ImClient::CreateServiceAccount(const std::string& name,
                               const std::string& description) {
  auth_v1::CreateServiceAccountRequest request;
  request.set_name(name);
  request.set_description(description);
  return Call(auth_.get(), &auth_v1::AuthService::Stub::CreateServiceAccount,
              request);
}

absl::StatusOr<std::vector<auth_v1::ServiceAccount>>
ImClient::ListServiceAccounts() {
  absl::StatusOr<auth_v1::ListServiceAccountsResponse> response =
      Call(auth_.get(), &auth_v1::AuthService::Stub::ListServiceAccounts,
           auth_v1::ListServiceAccountsRequest());
  if (!response.ok()) return response.status();
  return std::vector<auth_v1::ServiceAccount>(response->accounts().begin(),
                                              response->accounts().end());
}

absl::StatusOr<auth_v1::ServiceAccount> ImClient::RevokeServiceAccount(
    uint64_t user_id) {
  auth_v1::RevokeServiceAccountRequest request;
  request.set_user_id(user_id);
  absl::StatusOr<auth_v1::RevokeServiceAccountResponse> response =
      Call(auth_.get(), &auth_v1::AuthService::Stub::RevokeServiceAccount,
           request);
  if (!response.ok()) return response.status();
  return response->account();
}

// --------------------------------------------------------------- message --

absl::StatusOr<message_v1::Conversation> ImClient::GetOrCreateDirect(
    uint64_t user_id) {
  message_v1::GetOrCreateDirectRequest request;
  request.set_user_id(user_id);
  absl::StatusOr<message_v1::GetOrCreateDirectResponse> response = Call(
      message_.get(), &message_v1::MessageService::Stub::GetOrCreateDirect,
      request);
  if (!response.ok()) return response.status();
  return response->conversation();
}

absl::StatusOr<message_v1::Conversation> ImClient::CreateGroup(
    const std::string& title, const std::vector<uint64_t>& member_user_ids) {
  message_v1::CreateGroupRequest request;
  request.set_title(title);
  for (uint64_t id : member_user_ids) request.add_member_user_ids(id);
  absl::StatusOr<message_v1::CreateGroupResponse> response = Call(
      message_.get(), &message_v1::MessageService::Stub::CreateGroup, request);
  if (!response.ok()) return response.status();
  return response->conversation();
}

absl::StatusOr<message_v1::AddMembersResponse> ImClient::AddMembers(
    uint64_t conversation_id, const std::vector<uint64_t>& user_ids) {
  message_v1::AddMembersRequest request;
  request.set_conversation_id(conversation_id);
  for (uint64_t id : user_ids) request.add_user_ids(id);
  return Call(message_.get(), &message_v1::MessageService::Stub::AddMembers,
              request);
}

absl::StatusOr<uint64_t> ImClient::RemoveMember(uint64_t conversation_id,
                                                uint64_t user_id) {
  message_v1::RemoveMemberRequest request;
  request.set_conversation_id(conversation_id);
  request.set_user_id(user_id);
  absl::StatusOr<message_v1::RemoveMemberResponse> response = Call(
      message_.get(), &message_v1::MessageService::Stub::RemoveMember, request);
  if (!response.ok()) return response.status();
  return response->seq();
}

absl::StatusOr<uint64_t> ImClient::Leave(uint64_t conversation_id) {
  message_v1::LeaveRequest request;
  request.set_conversation_id(conversation_id);
  absl::StatusOr<message_v1::LeaveResponse> response =
      Call(message_.get(), &message_v1::MessageService::Stub::Leave, request);
  if (!response.ok()) return response.status();
  return response->seq();
}

absl::StatusOr<message_v1::ListMembersResponse> ImClient::ListMembers(
    uint64_t conversation_id, uint64_t after_user_id, uint32_t limit) {
  message_v1::ListMembersRequest request;
  request.set_conversation_id(conversation_id);
  request.set_after_user_id(after_user_id);
  request.set_limit(limit);
  return Call(message_.get(), &message_v1::MessageService::Stub::ListMembers,
              request);
}

absl::StatusOr<message_v1::GetConversationResponse> ImClient::GetConversation(
    uint64_t conversation_id) {
  message_v1::GetConversationRequest request;
  request.set_conversation_id(conversation_id);
  return Call(message_.get(),
              &message_v1::MessageService::Stub::GetConversation, request);
}

absl::StatusOr<message_v1::SendAck> ImClient::SendUnary(
    uint64_t conversation_id, const message_v1::Message& message,
    const std::string& client_msg_id) {
  message_v1::SendRequest request;
  request.set_conversation_id(conversation_id);
  request.set_client_msg_id(client_msg_id);
  *request.mutable_message() = message;
  absl::StatusOr<message_v1::SendResponse> response =
      Call(message_.get(), &message_v1::MessageService::Stub::Send, request);
  if (!response.ok()) return response.status();
  return response->ack();
}

absl::StatusOr<message_v1::SendAck> ImClient::Publish(
    uint64_t conversation_id, uint64_t user_id,
    const message_v1::Message& message, const std::string& client_msg_id) {
  message_v1::PublishRequest request;
  if (conversation_id != 0) {
    request.set_conversation_id(conversation_id);
  } else {
    request.set_user_id(user_id);
  }
  request.set_client_msg_id(client_msg_id);
  *request.mutable_message() = message;
  absl::StatusOr<message_v1::PublishResponse> response =
      Call(message_.get(), &message_v1::MessageService::Stub::Publish, request);
  if (!response.ok()) return response.status();
  return response->ack();
}

absl::StatusOr<uint64_t> ImClient::MarkRead(uint64_t conversation_id,
                                            uint64_t seq) {
  message_v1::MarkReadRequest request;
  request.set_conversation_id(conversation_id);
  request.set_seq(seq);
  absl::StatusOr<message_v1::MarkReadResponse> response = Call(
      message_.get(), &message_v1::MessageService::Stub::MarkRead, request);
  if (!response.ok()) return response.status();
  return response->read_seq();
}

// --------------------------------------------------------------- history --

absl::StatusOr<history_v1::GetHistoryResponse> ImClient::GetHistory(
    uint64_t conversation_id, uint64_t anchor_seq,
    history_v1::Direction direction, uint32_t limit) {
  history_v1::GetHistoryRequest request;
  request.set_conversation_id(conversation_id);
  request.set_anchor_seq(anchor_seq);
  request.set_direction(direction);
  request.set_limit(limit);
  return Call(history_.get(), &history_v1::HistoryService::Stub::GetHistory,
              request);
}

absl::StatusOr<history_v1::ListConversationsResponse>
ImClient::ListConversations(const std::string& page_token, uint32_t limit) {
  history_v1::ListConversationsRequest request;
  request.set_page_token(page_token);
  request.set_limit(limit);
  return Call(history_.get(),
              &history_v1::HistoryService::Stub::ListConversations, request);
}

absl::StatusOr<std::vector<history_v1::ConversationSummary>>
ImClient::ListAllConversations() {
  std::vector<history_v1::ConversationSummary> all;
  std::string token;
  do {
    absl::StatusOr<history_v1::ListConversationsResponse> page =
        ListConversations(token, 200);
    if (!page.ok()) return page.status();
    for (history_v1::ConversationSummary& summary :
         *page->mutable_conversations()) {
      all.push_back(std::move(summary));
    }
    token = page->next_page_token();
  } while (!token.empty());
  return all;
}

absl::StatusOr<history_v1::SyncResponse> ImClient::Sync(
    const absl::flat_hash_map<uint64_t, uint64_t>& cursors,
    const std::string& page_token, uint32_t limit) {
  history_v1::SyncRequest request;
  for (const auto& [conversation_id, seq] : cursors) {
    (*request.mutable_cursors())[conversation_id] = seq;
  }
  request.set_page_token(page_token);
  request.set_limit(limit);
  return Call(history_.get(), &history_v1::HistoryService::Stub::Sync, request);
}

// -------------------------------------------------------------- presence --

absl::StatusOr<std::vector<presence_v1::Presence>> ImClient::QueryPresence(
    const std::vector<uint64_t>& user_ids) {
  presence_v1::QueryRequest request;
  for (uint64_t id : user_ids) request.add_user_ids(id);
  absl::StatusOr<presence_v1::QueryResponse> response = Call(
      presence_.get(), &presence_v1::PresenceService::Stub::Query, request);
  if (!response.ok()) return response.status();
  return std::vector<presence_v1::Presence>(response->presences().begin(),
                                            response->presences().end());
}

absl::Status ImClient::SetStatus(const std::string& status_text) {
  presence_v1::SetStatusRequest request;
  request.set_status_text(status_text);
  return Call(presence_.get(), &presence_v1::PresenceService::Stub::SetStatus,
              request)
      .status();
}

// ------------------------------------------------------------------ chat --

absl::StatusOr<ChatSession*> ImClient::StartChat(
    ChatSession::Options options, ChatSession::EventCallback callback) {
  if (!tokens_->signed_in()) {
    return absl::FailedPreconditionError("sign in before starting the chat");
  }
  if (options.device.kind() == auth_v1::DEVICE_KIND_UNSPECIFIED &&
      options.device.name().empty()) {
    options.device.set_kind(options_.device_kind);
    options.device.set_name(options_.device_name);
  }
  ChatSession::Dependencies deps;
  deps.message_channel = channels_.message;
  deps.history_channel = channels_.history;
  deps.tokens = tokens_.get();
  deps.runtime = runtime_;
  ChatSession* started;
  {
    absl::MutexLock lock(&chat_mu_);
    if (chat_ != nullptr) {
      return absl::FailedPreconditionError("the chat session already runs");
    }
    absl::StatusOr<std::unique_ptr<ChatSession>> session =
        ChatSession::Create(options, std::move(deps), std::move(callback));
    if (!session.ok()) return session.status();
    chat_ = *std::move(session);
    started = chat_.get();
  }
  // Outside the lock: the first events may already reach the callback,
  // which may call chat().
  started->Start();
  return started;
}

ChatSession* ImClient::chat() {
  absl::MutexLock lock(&chat_mu_);
  return chat_.get();
}

void ImClient::StopChat() {
  std::unique_ptr<ChatSession> session;
  {
    absl::MutexLock lock(&chat_mu_);
    session = std::move(chat_);
  }
  if (session != nullptr) session->Stop();
}

}  // namespace im::client
