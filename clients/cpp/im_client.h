#ifndef IM_CLIENTS_CPP_IM_CLIENT_H_
#define IM_CLIENTS_CPP_IM_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clients/cpp/chat_session.h"
#include "clients/cpp/client_runtime.h"
#include "clients/cpp/session_tokens.h"
#include "im/auth/v1/auth.grpc.pb.h"
#include "im/history/v1/history.grpc.pb.h"
#include "im/message/v1/message.grpc.pb.h"
#include "im/presence/v1/presence.grpc.pb.h"
#include "services/common/grpc_server.h"

namespace im::client {

// Where the four services listen, and how to reach them.
struct Endpoints {
  std::string auth = "127.0.0.1:50051";
  std::string message = "127.0.0.1:50053";
  std::string history = "127.0.0.1:50054";
  std::string presence = "127.0.0.1:50052";
  // Plaintext when empty; see services/auth/README.md "TLS".
  TlsOptions tls;
};

// One channel per service; several clients may share them (many sessions
// over few connections).
struct Channels {
  std::shared_ptr<grpc::Channel> auth;
  std::shared_ptr<grpc::Channel> message;
  std::shared_ptr<grpc::Channel> history;
  std::shared_ptr<grpc::Channel> presence;

  // Channels to `endpoints` with the project's client defaults (keepalive,
  // reconnect backoff); `extra` args are applied on top (e.g. a separate
  // connection per channel).
  static absl::StatusOr<Channels> Connect(const Endpoints& endpoints,
                                          const grpc::ChannelArguments* extra =
                                              nullptr);
};

// The project's C++ client: signs in (password or API key) and keeps the
// tokens fresh (SessionTokens), holds the live Chat stream (ChatSession:
// reconnect, resume, exactly-once in-order delivery, retried sends), and
// wraps the unary RPCs of auth, message, history and presence. Unary
// helpers block for at most rpc_timeout and return the server's gRPC code
// and message as absl::Status. Thread-safe.
class ImClient {
 public:
  struct Options {
    Endpoints endpoints;
    // Reported at login and by the Chat stream (presence shows it).
    std::string device_name;
    auth::v1::DeviceKind device_kind = auth::v1::DEVICE_KIND_UNSPECIFIED;
    absl::Duration rpc_timeout = absl::Seconds(10);
    SessionTokens::Options tokens;
  };

  // Channels: made from options.endpoints when `channels` is null (or any
  // of its members is). Runtime: a private one when null.
  static absl::StatusOr<std::unique_ptr<ImClient>> Create(
      const Options& options, const Channels* channels = nullptr,
      std::shared_ptr<ClientRuntime> runtime = nullptr);
  // Stops the chat session, then the token renewals.
  ~ImClient();

  // ---- accounts and sign-in (auth) ----
  absl::StatusOr<auth::v1::User> Register(const std::string& username,
                                          const std::string& password,
                                          const std::string& display_name = "");
  absl::Status Login(const std::string& username, const std::string& password);
  absl::Status LoginWithApiKey(const std::string& api_key);
  // Continues a stored session (see SessionTokens::Adopt).
  absl::Status ResumeSession(const auth::v1::TokenPair& tokens);
  SessionTokens& tokens() { return *tokens_; }
  uint64_t user_id() const { return tokens_->user_id(); }

  absl::StatusOr<auth::v1::WhoAmIResponse> WhoAmI();
  absl::Status Logout();
  absl::StatusOr<std::vector<auth::v1::User>> LookupUsers(
      const std::vector<uint64_t>& user_ids,
      const std::vector<std::string>& usernames);
  // The user id of `username`; NOT_FOUND when there is no such user.
  absl::StatusOr<uint64_t> ResolveUsername(const std::string& username);
  absl::StatusOr<auth::v1::CreateServiceAccountResponse> CreateServiceAccount(
      const std::string& name, const std::string& description);
  absl::StatusOr<std::vector<auth::v1::ServiceAccount>> ListServiceAccounts();
  absl::StatusOr<auth::v1::ServiceAccount> RevokeServiceAccount(
      uint64_t user_id);

  // ---- conversations (message, unary) ----
  absl::StatusOr<message::v1::Conversation> GetOrCreateDirect(uint64_t user_id);
  absl::StatusOr<message::v1::Conversation> CreateGroup(
      const std::string& title, const std::vector<uint64_t>& member_user_ids);
  absl::StatusOr<message::v1::AddMembersResponse> AddMembers(
      uint64_t conversation_id, const std::vector<uint64_t>& user_ids);
  absl::StatusOr<uint64_t> RemoveMember(uint64_t conversation_id,
                                        uint64_t user_id);
  absl::StatusOr<uint64_t> Leave(uint64_t conversation_id);
  absl::StatusOr<message::v1::ListMembersResponse> ListMembers(
      uint64_t conversation_id, uint64_t after_user_id = 0, uint32_t limit = 0);
  absl::StatusOr<message::v1::GetConversationResponse> GetConversation(
      uint64_t conversation_id);
  // Unary durable send (no stream): the ack, or the refusal.
  absl::StatusOr<message::v1::SendAck> SendUnary(
      uint64_t conversation_id, const message::v1::Message& message,
      const std::string& client_msg_id);
  // Service accounts only: into a conversation (user_id 0) or the direct
  // conversation with `user_id` (conversation_id 0).
  absl::StatusOr<message::v1::SendAck> Publish(
      uint64_t conversation_id, uint64_t user_id,
      const message::v1::Message& message, const std::string& client_msg_id);
  absl::StatusOr<uint64_t> MarkRead(uint64_t conversation_id, uint64_t seq);

  // ---- history ----
  absl::StatusOr<history::v1::GetHistoryResponse> GetHistory(
      uint64_t conversation_id, uint64_t anchor_seq,
      history::v1::Direction direction, uint32_t limit);
  absl::StatusOr<history::v1::ListConversationsResponse> ListConversations(
      const std::string& page_token, uint32_t limit);
  // Every page of ListConversations.
  absl::StatusOr<std::vector<history::v1::ConversationSummary>>
  ListAllConversations();
  absl::StatusOr<history::v1::SyncResponse> Sync(
      const absl::flat_hash_map<uint64_t, uint64_t>& cursors,
      const std::string& page_token, uint32_t limit);

  // ---- presence ----
  absl::StatusOr<std::vector<presence::v1::Presence>> QueryPresence(
      const std::vector<uint64_t>& user_ids);
  absl::Status SetStatus(const std::string& status_text);

  // ---- the live stream ----
  // Starts the chat session (once; FAILED_PRECONDITION after that or before
  // signing in). `options.device` defaults to this client's device. The
  // session belongs to this client.
  absl::StatusOr<ChatSession*> StartChat(ChatSession::Options options,
                                         ChatSession::EventCallback callback);
  // Null before StartChat.
  ChatSession* chat();
  // Stops and discards the chat session (pending sends are dropped).
  void StopChat();

  const Channels& channels() const { return channels_; }
  const std::shared_ptr<ClientRuntime>& runtime() const { return runtime_; }

 private:
  ImClient(const Options& options, Channels channels,
           std::shared_ptr<ClientRuntime> runtime);

  // The current access token, renewed first when it has (nearly) expired.
  std::string FreshToken();
  template <typename Stub, typename Request, typename Response>
  absl::StatusOr<Response> Call(Stub* stub,
                                grpc::Status (Stub::*method)(
                                    grpc::ClientContext*, const Request&,
                                    Response*),
                                const Request& request);

  const Options options_;
  const Channels channels_;
  const std::shared_ptr<ClientRuntime> runtime_;
  const std::unique_ptr<auth::v1::AuthService::Stub> auth_;
  const std::unique_ptr<message::v1::MessageService::Stub> message_;
  const std::unique_ptr<history::v1::HistoryService::Stub> history_;
  const std::unique_ptr<presence::v1::PresenceService::Stub> presence_;
  const std::unique_ptr<SessionTokens> tokens_;
  absl::Mutex chat_mu_;
  std::unique_ptr<ChatSession> chat_ ABSL_GUARDED_BY(chat_mu_);
};

}  // namespace im::client

#endif  // IM_CLIENTS_CPP_IM_CLIENT_H_
