#ifndef IM_TESTS_FUZZ_FUZZ_BACKEND_H_
#define IM_TESTS_FUZZ_FUZZ_BACKEND_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/auth/auth_service.h"
#include "services/common/access_token.h"
#include "services/common/authenticator.h"
#include "services/common/grpc_server.h"
#include "services/history/history_service.h"
#include "services/message/message_service.h"
#include "services/presence/presence_service.h"
#include "storage/fake/fake_database.h"

// All four services in one process over one in-memory database, seeded with
// a few users, conversations and messages, for fuzz targets that feed them
// raw request bytes over in-process gRPC channels.

namespace im::fuzz {

// Who a fuzzed call claims to be: the `authorization` metadata it carries.
enum class Credential : uint8_t {
  kNone = 0,
  kAlice,           // member of every seeded conversation but carol's
  kBob,             // member of the direct and group conversations
  kCarol,           // member only of her own group
  kAdmin,           // ROLE_ADMIN (username in admin_usernames)
  kService,         // ROLE_SERVICE (a service account's exchanged token)
  kInternal,        // ROLE_INTERNAL (what services use between themselves)
  kExpired,         // alice's identity, expired an hour ago
  kForged,          // alice's identity, signed with a key nobody trusts
  kGarbage,         // "Bearer " + junk
  kNotBearer,       // an authorization value without the Bearer scheme
  kCount,
};

class FuzzBackend {
 public:
  // The process-wide backend, started on first use (libFuzzer's targets run
  // many inputs against one backend). Aborts when it cannot start.
  static FuzzBackend& Get();

  // Seeded ids.
  struct Seeded {
    uint64_t alice = 0, bob = 0, carol = 0, admin = 0, service = 0;
    uint64_t direct = 0;        // alice <-> bob, a few messages
    uint64_t group = 0;         // alice, bob (owner alice), a few messages
    uint64_t carol_group = 0;   // carol alone: foreign to alice and bob
    std::string alice_refresh;  // a live refresh token of alice
  };
  const Seeded& seeded() const { return seeded_; }

  // A channel to the server hosting `service_full_name` (e.g.
  // "im.history.v1.HistoryService").
  std::shared_ptr<grpc::Channel> ChannelFor(
      const std::string& service_full_name) const;
  // Sets `authorization` (when the credential has one) and a deadline.
  void Prepare(grpc::ClientContext* context, Credential credential) const;
  std::string AccessToken(Credential credential) const;

  // Reads every entry of `conversation_id` straight from the store.
  absl::StatusOr<std::vector<storage::Entry>> StoredLog(
      uint64_t conversation_id);

 private:
  FuzzBackend() = default;
  absl::Status Start();
  absl::Status Seed();

  storage::FakeDatabase db_;
  std::unique_ptr<TokenCodec> codec_;
  std::unique_ptr<TokenCodec> forger_;
  RevocationSet revocations_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<InternalTokenSource> internal_tokens_;
  std::unique_ptr<auth::AuthServiceImpl> auth_;
  std::unique_ptr<message::MessageServiceImpl> message_;
  std::unique_ptr<presence::PresenceServiceImpl> presence_;
  std::unique_ptr<history::HistoryServiceImpl> history_;
  // auth, message and presence on one server; history on a second, since
  // it needs a channel to message when it is created.
  std::unique_ptr<GrpcServer> front_;
  std::unique_ptr<GrpcServer> history_server_;
  std::shared_ptr<grpc::Channel> front_channel_;
  std::shared_ptr<grpc::Channel> history_channel_;
  Seeded seeded_;
  std::vector<std::string> tokens_;  // by Credential
};

}  // namespace im::fuzz

#endif  // IM_TESTS_FUZZ_FUZZ_BACKEND_H_
