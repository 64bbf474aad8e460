#include "services/auth/accounts.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "services/auth/secret_token.h"
#include "services/auth/username.h"
#include "services/common/authenticator.h"
#include "services/common/proto_time.h"
#include "services/common/text.h"
#include "spdlog/spdlog.h"

namespace im::auth {
namespace {

constexpr size_t kMinPasswordBytes = 8;
constexpr size_t kMaxPasswordBytes = 1024;
constexpr size_t kMaxDisplayNameChars = 64;
constexpr size_t kMaxDeviceNameChars = 64;
constexpr size_t kMaxDescriptionChars = 256;
constexpr size_t kMaxLookups = 500;

constexpr absl::string_view kRefreshFailed =
    "refresh token is invalid, expired or revoked";
constexpr absl::string_view kApiKeyFailed = "invalid or revoked API key";

absl::Status ValidatePassword(absl::string_view password) {
  if (password.size() < kMinPasswordBytes ||
      password.size() > kMaxPasswordBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("password must be ", kMinPasswordBytes, " to ",
                     kMaxPasswordBytes, " bytes"));
  }
  if (!IsValidUtf8(password)) {
    return absl::InvalidArgumentError("password is not valid UTF-8");
  }
  return absl::OkStatus();
}

// Sessions are bound to people and service accounts; ROLE_INTERNAL tokens
// have none.
absl::Status RequireSession(const Caller& caller) {
  if (caller.session_id == 0 || caller.user_id == 0) {
    return absl::PermissionDeniedError(
        "this method needs a user or service account token");
  }
  return absl::OkStatus();
}

void FillServiceAccount(const storage::ServiceAccountRecord& record,
                        v1::ServiceAccount* out) {
  out->set_user_id(record.user_id);
  out->set_name(record.name);
  out->set_description(record.description);
  out->set_key_prefix(record.key_prefix);
  out->set_created_by(record.created_by);
  SetProtoTime(record.created_at, out->mutable_created_at());
  if (record.revoked_at.has_value()) {
    SetProtoTime(*record.revoked_at, out->mutable_revoked_at());
  }
}

absl::flat_hash_set<std::string> NormalizedSet(
    const std::vector<std::string>& names) {
  absl::flat_hash_set<std::string> out;
  for (const std::string& name : names) out.insert(NormalizeUsername(name));
  return out;
}

}  // namespace

Accounts::Accounts(const Options& options, storage::UserStore* users,
                   storage::SessionStore* sessions, const TokenCodec* codec,
                   const PasswordHasher* hasher, RevocationFeed* revocations,
                   Clock clock)
    : options_(options),
      admin_usernames_(NormalizedSet(options.admin_usernames)),
      users_(users),
      sessions_(sessions),
      codec_(codec),
      hasher_(hasher),
      revocations_(revocations),
      clock_(std::move(clock)),
      metrics_(options.metrics != nullptr ? *options.metrics
                                          : AuthMetrics::Unexported()),
      login_throttle_(options.login_throttle, clock_),
      register_throttle_(options.register_throttle, clock_) {}

v1::Role Accounts::RoleOf(const storage::UserRecord& user) const {
  if (user.kind == storage::UserKind::kService) return v1::ROLE_SERVICE;
  if (user.is_admin || admin_usernames_.contains(user.username_norm)) {
    return v1::ROLE_ADMIN;
  }
  return v1::ROLE_USER;
}

absl::StatusOr<v1::Role> Accounts::RoleForLogin(
    const storage::UserRecord& user) {
  const v1::Role role = RoleOf(user);
  if (role == v1::ROLE_ADMIN && !user.is_admin) {
    absl::Status promoted = users_->SetAdmin(user.id, true);
    if (!promoted.ok()) return promoted;
    spdlog::info("user {} ({}) is now an admin (--admin_usernames)", user.id,
                 user.username_norm);
  }
  return role;
}

void Accounts::FillUser(const storage::UserRecord& record,
                        v1::User* user) const {
  user->set_user_id(record.id);
  user->set_username(record.username);
  user->set_display_name(record.display_name);
  user->set_role(RoleOf(record));
  SetProtoTime(record.created_at, user->mutable_created_at());
}

void Accounts::FillTokens(uint64_t user_id, uint64_t session_id, v1::Role role,
                          absl::Time now, v1::TokenPair* tokens) const {
  Caller caller;
  caller.user_id = user_id;
  caller.session_id = session_id;
  caller.role = role;
  caller.expires_at = now + options_.access_token_ttl;
  tokens->set_user_id(user_id);
  tokens->set_session_id(session_id);
  tokens->set_access_token(codec_->Mint(caller, now));
  SetProtoTime(caller.expires_at, tokens->mutable_access_expires_at());
  tokens->set_role(role);
}

absl::StatusOr<v1::RegisterResponse> Accounts::Register(
    const v1::RegisterRequest& request, absl::string_view peer) {
  absl::Status valid = ValidateUsername("username", request.username());
  if (valid.ok()) valid = ValidatePassword(request.password());
  const std::string& display_name = request.display_name().empty()
                                        ? request.username()
                                        : request.display_name();
  if (valid.ok()) {
    valid =
        ValidateLabel("display_name", display_name, 1, kMaxDisplayNameChars);
  }
  if (!valid.ok()) return valid;
  absl::Status allowed = register_throttle_.TryAcquire("", peer);
  if (!allowed.ok()) {
    return Throttled(AuthMetrics::Throttled::kRegister, allowed);
  }

  absl::StatusOr<std::string> hash = hasher_->Hash(request.password());
  if (!hash.ok()) return hash.status();
  storage::NewUser user;
  user.username = request.username();
  user.username_norm = NormalizeUsername(request.username());
  user.display_name = display_name;
  user.password_hash = *std::move(hash);
  user.is_admin = admin_usernames_.contains(user.username_norm);
  user.created_at = clock_();
  absl::StatusOr<storage::UserRecord> created = users_->CreateUser(user);
  if (absl::IsAlreadyExists(created.status())) {
    // Unavoidable with unique usernames; the register throttle keeps the
    // charge, which slows enumeration through this answer.
    return absl::AlreadyExistsError("username is taken");
  }
  if (!created.ok()) return created.status();
  register_throttle_.RecordSuccess("", peer);
  v1::RegisterResponse response;
  FillUser(*created, response.mutable_user());
  return response;
}

absl::StatusOr<v1::LoginResponse> Accounts::Login(
    const v1::LoginRequest& request, absl::string_view peer) {
  absl::StatusOr<v1::LoginResponse> response = AttemptLogin(request, peer);
  metrics_.LoginFinished(response.status());
  return response;
}

absl::Status Accounts::Throttled(AuthMetrics::Throttled operation,
                                 absl::Status refusal) {
  metrics_.AttemptThrottled(operation);
  return refusal;
}

void Accounts::PublishRevoked(
    storage::RevokeReason reason,
    const std::vector<storage::RevokedSessionRecord>& revoked) {
  metrics_.SessionsRevoked(reason, revoked.size());
  revocations_->Publish(revoked);
}

absl::StatusOr<v1::LoginResponse> Accounts::AttemptLogin(
    const v1::LoginRequest& request, absl::string_view peer) {
  absl::Status valid = ValidateLabel("device_name", request.device_name(), 0,
                                     kMaxDeviceNameChars);
  if (!valid.ok()) return valid;
  if (!v1::DeviceKind_IsValid(request.device_kind())) {
    return absl::InvalidArgumentError("device_kind is not a known value");
  }
  // A name or password that no account can have fails like a wrong
  // password, after the same throttling, without spending a hash on it.
  const bool plausible = ValidateUsername("", request.username()).ok() &&
                         ValidatePassword(request.password()).ok();
  const std::string username_norm =
      plausible ? NormalizeUsername(request.username()) : "";
  absl::Status allowed = login_throttle_.TryAcquire(username_norm, peer);
  if (!allowed.ok()) return Throttled(AuthMetrics::Throttled::kLogin, allowed);
  if (!plausible) return absl::UnauthenticatedError(kLoginFailed);

  absl::StatusOr<storage::UserRecord> user =
      users_->GetUserByUsername(username_norm);
  if (!user.ok() && !absl::IsNotFound(user.status())) return user.status();
  // Unknown users and service accounts (no password) are checked against
  // the dummy hash, so every failure costs the same argon2id time.
  const bool verified = hasher_->Verify(
      user.ok() ? absl::string_view(user->password_hash) : absl::string_view(),
      request.password());
  if (!verified || user->kind != storage::UserKind::kPerson) {
    return absl::UnauthenticatedError(kLoginFailed);
  }
  login_throttle_.RecordSuccess(username_norm, peer);

  absl::StatusOr<v1::Role> role = RoleForLogin(*user);
  if (!role.ok()) return role.status();
  const absl::Time now = clock_();
  IssuedSecret refresh = IssueSecret(kRefreshTokenPrefix);
  storage::NewSession session;
  session.user_id = user->id;
  session.device_name = request.device_name();
  session.device_kind = request.device_kind();
  session.now = now;
  session.expires_at = now + options_.refresh_token_ttl;
  session.refresh_token_hash = refresh.hash;
  absl::StatusOr<storage::SessionRecord> created =
      sessions_->CreateSession(session);
  if (!created.ok()) return created.status();

  v1::LoginResponse response;
  v1::TokenPair* tokens = response.mutable_tokens();
  FillTokens(user->id, created->id, *role, now, tokens);
  tokens->set_refresh_token(std::move(refresh.secret));
  SetProtoTime(session.expires_at, tokens->mutable_refresh_expires_at());
  return response;
}

absl::StatusOr<v1::RefreshResponse> Accounts::Refresh(
    const v1::RefreshRequest& request) {
  std::optional<std::string> old_hash =
      HashOfSecret(kRefreshTokenPrefix, request.refresh_token());
  if (!old_hash.has_value()) return absl::UnauthenticatedError(kRefreshFailed);
  const absl::Time now = clock_();
  const absl::Time expires_at = now + options_.refresh_token_ttl;
  IssuedSecret fresh = IssueSecret(kRefreshTokenPrefix);
  absl::StatusOr<storage::RotateResult> rotated =
      sessions_->RotateRefreshToken(*old_hash, fresh.hash, expires_at, now);
  if (!rotated.ok()) {
    // A collision of 256-bit random hashes is not the client's fault.
    if (absl::IsAlreadyExists(rotated.status())) {
      return absl::InternalError("refresh token collision; retry");
    }
    return rotated.status();
  }
  switch (rotated->outcome) {
    case storage::RotateOutcome::kRotated:
      break;
    case storage::RotateOutcome::kReuseRevoked: {
      const storage::SessionRecord& session = rotated->session;
      spdlog::warn("refresh token reuse on session {} of user {}: revoked",
                   session.id, session.user_id);
      PublishRevoked(
          storage::RevokeReason::kRefreshReuse,
          {storage::RevokedSessionRecord{session.id, session.user_id,
                                         session.revoked_at.value_or(now)}});
      return absl::UnauthenticatedError(
          "refresh token was already used; the session has been revoked");
    }
    case storage::RotateOutcome::kUnknown:
    case storage::RotateOutcome::kExpired:
    case storage::RotateOutcome::kRevoked:
      return absl::UnauthenticatedError(kRefreshFailed);
  }
  const storage::SessionRecord& session = rotated->session;
  absl::StatusOr<storage::UserRecord> user = users_->GetUser(session.user_id);
  if (absl::IsNotFound(user.status())) {
    return absl::UnauthenticatedError(kRefreshFailed);
  }
  if (!user.ok()) return user.status();
  absl::StatusOr<v1::Role> role = RoleForLogin(*user);
  if (!role.ok()) return role.status();

  v1::RefreshResponse response;
  v1::TokenPair* tokens = response.mutable_tokens();
  FillTokens(user->id, session.id, *role, now, tokens);
  tokens->set_refresh_token(std::move(fresh.secret));
  SetProtoTime(expires_at, tokens->mutable_refresh_expires_at());
  return response;
}

absl::StatusOr<v1::ExchangeApiKeyResponse> Accounts::ExchangeApiKey(
    const v1::ExchangeApiKeyRequest& request, absl::string_view peer) {
  absl::Status allowed = login_throttle_.TryAcquire("", peer);
  if (!allowed.ok()) {
    return Throttled(AuthMetrics::Throttled::kExchangeApiKey, allowed);
  }
  std::optional<std::string> key_hash =
      HashOfSecret(kApiKeyPrefix, request.api_key());
  if (!key_hash.has_value()) return absl::UnauthenticatedError(kApiKeyFailed);
  absl::StatusOr<storage::ServiceAccountRecord> account =
      users_->FindServiceAccountByKeyHash(*key_hash);
  if (absl::IsNotFound(account.status())) {
    return absl::UnauthenticatedError(kApiKeyFailed);
  }
  if (!account.ok()) return account.status();
  if (account->revoked_at.has_value()) {
    return absl::UnauthenticatedError(kApiKeyFailed);
  }
  login_throttle_.RecordSuccess("", peer);

  // A session per exchange, living as long as its access token, so that
  // RevokeServiceAccount (and Logout) can end it everywhere.
  const absl::Time now = clock_();
  storage::NewSession session;
  session.user_id = account->user_id;
  session.device_name = absl::StrCat("api key ", account->key_prefix);
  session.device_kind = v1::DEVICE_KIND_SERVER;
  session.now = now;
  session.expires_at = now + options_.access_token_ttl;
  absl::StatusOr<storage::SessionRecord> created =
      sessions_->CreateSession(session);
  if (!created.ok()) return created.status();
  // RevokeServiceAccount marks the account, then revokes its sessions. A
  // session created in between would escape; looking again closes that.
  absl::StatusOr<storage::ServiceAccountRecord> again =
      users_->FindServiceAccountByKeyHash(*key_hash);
  if (!again.ok() || again->revoked_at.has_value()) {
    absl::StatusOr<storage::RevokedSessionRecord> revoked =
        sessions_->RevokeSession(account->user_id, created->id,
                                 storage::RevokeReason::kServiceAccountRevoked,
                                 now);
    if (revoked.ok()) {
      PublishRevoked(storage::RevokeReason::kServiceAccountRevoked, {*revoked});
    }
    if (!again.ok() && !absl::IsNotFound(again.status())) {
      return again.status();
    }
    return absl::UnauthenticatedError(kApiKeyFailed);
  }

  v1::ExchangeApiKeyResponse response;
  FillTokens(account->user_id, created->id, v1::ROLE_SERVICE, now,
             response.mutable_tokens());
  return response;
}

absl::StatusOr<v1::LogoutResponse> Accounts::Logout(const Caller& caller) {
  absl::Status allowed = RequireSession(caller);
  if (!allowed.ok()) return allowed;
  absl::StatusOr<storage::RevokedSessionRecord> revoked =
      sessions_->RevokeSession(caller.user_id, caller.session_id,
                               storage::RevokeReason::kLogout, clock_());
  if (!revoked.ok()) return revoked.status();
  PublishRevoked(storage::RevokeReason::kLogout, {*revoked});
  return v1::LogoutResponse();
}

absl::StatusOr<v1::LogoutAllResponse> Accounts::LogoutAll(
    const Caller& caller) {
  absl::Status allowed = RequireSession(caller);
  if (!allowed.ok()) return allowed;
  absl::StatusOr<std::vector<storage::RevokedSessionRecord>> revoked =
      sessions_->RevokeAllSessions(caller.user_id,
                                   storage::RevokeReason::kLogoutAll, clock_());
  if (!revoked.ok()) return revoked.status();
  v1::LogoutAllResponse response;
  response.set_revoked_sessions(static_cast<uint32_t>(revoked->size()));
  PublishRevoked(storage::RevokeReason::kLogoutAll, *revoked);
  return response;
}

absl::StatusOr<v1::ListSessionsResponse> Accounts::ListSessions(
    const Caller& caller) {
  absl::Status allowed = RequireSession(caller);
  if (!allowed.ok()) return allowed;
  absl::StatusOr<std::vector<storage::SessionRecord>> live =
      sessions_->ListLiveSessions(caller.user_id, clock_());
  if (!live.ok()) return live.status();
  v1::ListSessionsResponse response;
  for (const storage::SessionRecord& record : *live) {
    v1::Session* session = response.add_sessions();
    session->set_session_id(record.id);
    session->set_device_name(record.device_name);
    session->set_device_kind(
        v1::DeviceKind_IsValid(record.device_kind)
            ? static_cast<v1::DeviceKind>(record.device_kind)
            : v1::DEVICE_KIND_UNSPECIFIED);
    SetProtoTime(record.created_at, session->mutable_created_at());
    SetProtoTime(record.last_used_at, session->mutable_last_used_at());
    session->set_current(record.id == caller.session_id);
  }
  return response;
}

absl::StatusOr<v1::WhoAmIResponse> Accounts::WhoAmI(const Caller& caller) {
  absl::Status allowed = RequireSession(caller);
  if (!allowed.ok()) return allowed;
  absl::StatusOr<storage::UserRecord> user = users_->GetUser(caller.user_id);
  if (absl::IsNotFound(user.status())) {
    return absl::UnauthenticatedError("the token's account no longer exists");
  }
  if (!user.ok()) return user.status();
  v1::WhoAmIResponse response;
  FillUser(*user, response.mutable_user());
  response.set_session_id(caller.session_id);
  return response;
}

absl::StatusOr<v1::LookupUsersResponse> Accounts::LookupUsers(
    const Caller&, const v1::LookupUsersRequest& request) {
  if (static_cast<size_t>(request.user_ids_size()) > kMaxLookups ||
      static_cast<size_t>(request.usernames_size()) > kMaxLookups) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxLookups, " user_ids and ", kMaxLookups,
                     " usernames per call"));
  }
  absl::flat_hash_map<uint64_t, storage::UserRecord> found;
  if (!request.user_ids().empty()) {
    std::vector<uint64_t> ids(request.user_ids().begin(),
                              request.user_ids().end());
    absl::StatusOr<std::vector<storage::UserRecord>> users =
        users_->GetUsers(ids);
    if (!users.ok()) return users.status();
    for (storage::UserRecord& user : *users) found[user.id] = std::move(user);
  }
  std::vector<std::string> names;
  for (const std::string& name : request.usernames()) {
    // A name no account can have is simply not found.
    if (ValidateUsername("", name).ok()) {
      names.push_back(NormalizeUsername(name));
    }
  }
  if (!names.empty()) {
    absl::StatusOr<std::vector<storage::UserRecord>> users =
        users_->GetUsersByUsername(names);
    if (!users.ok()) return users.status();
    for (storage::UserRecord& user : *users) found[user.id] = std::move(user);
  }
  v1::LookupUsersResponse response;
  for (const auto& [id, user] : found) FillUser(user, response.add_users());
  return response;
}

absl::StatusOr<v1::ValidateResponse> Accounts::Validate(
    const Caller&, const v1::ValidateRequest& request) {
  const absl::Time now = clock_();
  absl::StatusOr<Caller> subject = codec_->Verify(request.access_token(), now);
  if (!subject.ok()) return subject.status();
  // The database is the authority: it also knows revocations made by other
  // auth nodes that the local feed has not polled yet.
  if (subject->session_id != 0) {
    absl::StatusOr<storage::SessionRecord> session =
        sessions_->GetSession(subject->session_id);
    if (absl::IsNotFound(session.status()) ||
        (session.ok() && session->user_id != subject->user_id)) {
      return absl::UnauthenticatedError("access token has no session");
    }
    if (!session.ok()) return session.status();
    if (session->revoked_at.has_value()) {
      return absl::UnauthenticatedError("session has been revoked");
    }
  }
  v1::ValidateResponse response;
  response.set_user_id(subject->user_id);
  response.set_session_id(subject->session_id);
  response.set_role(subject->role);
  SetProtoTime(subject->expires_at, response.mutable_expires_at());
  return response;
}

absl::StatusOr<v1::CreateServiceAccountResponse> Accounts::CreateServiceAccount(
    const Caller& caller, const v1::CreateServiceAccountRequest& request) {
  absl::Status allowed = RequireRole(caller, {v1::ROLE_ADMIN});
  if (!allowed.ok()) return allowed;
  absl::Status valid = ValidateUsername("name", request.name());
  if (valid.ok()) {
    valid = ValidateLabel("description", request.description(), 0,
                          kMaxDescriptionChars);
  }
  if (!valid.ok()) return valid;
  IssuedSecret key = IssueSecret(kApiKeyPrefix);
  storage::NewServiceAccount account;
  account.name = request.name();
  account.name_norm = NormalizeUsername(request.name());
  account.description = request.description();
  account.api_key_hash = key.hash;
  account.key_prefix = DisplayPrefix(key.secret);
  account.created_by = caller.user_id;
  account.created_at = clock_();
  absl::StatusOr<storage::ServiceAccountRecord> created =
      users_->CreateServiceAccount(account);
  if (absl::IsAlreadyExists(created.status())) {
    return absl::AlreadyExistsError("name is taken");
  }
  if (!created.ok()) return created.status();
  spdlog::info("admin {} created service account {} ({})", caller.user_id,
               created->user_id, created->name);
  v1::CreateServiceAccountResponse response;
  FillServiceAccount(*created, response.mutable_account());
  response.set_api_key(std::move(key.secret));
  return response;
}

absl::StatusOr<v1::ListServiceAccountsResponse> Accounts::ListServiceAccounts(
    const Caller& caller) {
  absl::Status allowed = RequireRole(caller, {v1::ROLE_ADMIN});
  if (!allowed.ok()) return allowed;
  absl::StatusOr<std::vector<storage::ServiceAccountRecord>> accounts =
      users_->ListServiceAccounts();
  if (!accounts.ok()) return accounts.status();
  v1::ListServiceAccountsResponse response;
  for (const storage::ServiceAccountRecord& account : *accounts) {
    FillServiceAccount(account, response.add_accounts());
  }
  return response;
}

absl::StatusOr<v1::RevokeServiceAccountResponse> Accounts::RevokeServiceAccount(
    const Caller& caller, const v1::RevokeServiceAccountRequest& request) {
  absl::Status allowed = RequireRole(caller, {v1::ROLE_ADMIN});
  if (!allowed.ok()) return allowed;
  const absl::Time now = clock_();
  absl::StatusOr<storage::ServiceAccountRecord> account =
      users_->RevokeServiceAccount(request.user_id(), now);
  if (absl::IsNotFound(account.status())) {
    return absl::NotFoundError("service account not found");
  }
  if (!account.ok()) return account.status();
  absl::StatusOr<std::vector<storage::RevokedSessionRecord>> revoked =
      sessions_->RevokeAllSessions(
          account->user_id, storage::RevokeReason::kServiceAccountRevoked, now);
  if (!revoked.ok()) return revoked.status();
  spdlog::info("admin {} revoked service account {} ({} sessions)",
               caller.user_id, account->user_id, revoked->size());
  PublishRevoked(storage::RevokeReason::kServiceAccountRevoked, *revoked);
  v1::RevokeServiceAccountResponse response;
  FillServiceAccount(*account, response.mutable_account());
  return response;
}

}  // namespace im::auth
