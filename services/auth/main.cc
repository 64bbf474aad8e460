// The auth service binary: flags from //services/common:server_flags plus
// the auth flags below; defaults as in CONVENTIONS.md.

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "services/auth/auth_metrics.h"
#include "services/auth/auth_service.h"
#include "services/common/database_flags.h"
#include "services/common/server_flags.h"
#include "services/common/service_host.h"

ABSL_FLAG(absl::Duration, access_token_ttl, absl::Minutes(15),
          "Lifetime of access tokens; other services must use the same value "
          "for their revocation watchers' retention");
ABSL_FLAG(absl::Duration, refresh_token_ttl, absl::Hours(24 * 30),
          "Lifetime of a refresh token (each Refresh starts a new one)");
ABSL_FLAG(absl::Duration, clock_skew_allowance, absl::Minutes(1),
          "Revocations are kept and sent to watchers for access_token_ttl "
          "plus this");
ABSL_FLAG(std::vector<std::string>, admin_usernames, {},
          "Comma-separated usernames made admins (ROLE_ADMIN) when they log "
          "in; the grant is stored and outlives the flag");
ABSL_FLAG(int, argon2_opslimit, 3, "argon2id passes (t); at least 2 (OWASP)");
ABSL_FLAG(int, argon2_memlimit_mib, 32,
          "argon2id memory per hash in MiB (m); at least 19 (OWASP)");
ABSL_FLAG(int, credential_threads, 0,
          "Threads hashing passwords (Login, Register); 0 = one per core");
ABSL_FLAG(int, credential_queue, 64,
          "Logins/registrations waiting for a hashing thread before more are "
          "refused with RESOURCE_EXHAUSTED");
ABSL_FLAG(int, store_threads, 8, "Threads for the other RPCs' database work");
ABSL_FLAG(int, login_username_burst, 5,
          "Failed logins per username before throttling");
ABSL_FLAG(absl::Duration, login_username_refill, absl::Seconds(30),
          "One more login attempt per username after this");
ABSL_FLAG(int, login_peer_burst, 20,
          "Failed logins and API-key exchanges per client address before "
          "throttling");
ABSL_FLAG(absl::Duration, login_peer_refill, absl::Seconds(3),
          "One more attempt per client address after this");
ABSL_FLAG(int, register_peer_burst, 20,
          "Rejected registrations (taken names) per client address before "
          "throttling");
ABSL_FLAG(absl::Duration, register_peer_refill, absl::Seconds(3),
          "One more registration attempt per client address after this");
ABSL_FLAG(std::vector<std::string>, trusted_proxies, {},
          "Comma-separated IP addresses of proxies (the grpc-web gateway) "
          "whose x-forwarded-for names the client address for throttling");
ABSL_FLAG(absl::Duration, revocation_poll_interval, absl::Seconds(1),
          "How often to read revocations made by other auth nodes from the "
          "database (0 = single auth node, never)");

namespace im {
namespace {

absl::StatusOr<auth::AuthServiceImpl::Options> OptionsFromFlags() {
  auth::AuthServiceImpl::Options options;
  const int opslimit = absl::GetFlag(FLAGS_argon2_opslimit);
  const int memlimit_mib = absl::GetFlag(FLAGS_argon2_memlimit_mib);
  if (opslimit < static_cast<int>(auth::PasswordHasher::kOwaspMinOpslimit) ||
      static_cast<size_t>(memlimit_mib) << 20 <
          auth::PasswordHasher::kOwaspMinMemlimitBytes) {
    return absl::InvalidArgumentError(
        "--argon2_opslimit must be >= 2 and --argon2_memlimit_mib >= 19 "
        "(OWASP minimum for argon2id)");
  }
  options.password_hashing.opslimit = static_cast<uint64_t>(opslimit);
  options.password_hashing.memlimit_bytes = static_cast<size_t>(memlimit_mib)
                                            << 20;

  auth::Accounts::Options& accounts = options.accounts;
  accounts.access_token_ttl = absl::GetFlag(FLAGS_access_token_ttl);
  accounts.refresh_token_ttl = absl::GetFlag(FLAGS_refresh_token_ttl);
  if (accounts.access_token_ttl <= absl::ZeroDuration() ||
      accounts.refresh_token_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("token TTLs must be positive");
  }
  accounts.admin_usernames = absl::GetFlag(FLAGS_admin_usernames);
  accounts.login_throttle.per_username = {
      absl::GetFlag(FLAGS_login_username_burst),
      absl::GetFlag(FLAGS_login_username_refill)};
  accounts.login_throttle.per_peer = {absl::GetFlag(FLAGS_login_peer_burst),
                                      absl::GetFlag(FLAGS_login_peer_refill)};
  accounts.register_throttle.per_peer = {
      absl::GetFlag(FLAGS_register_peer_burst),
      absl::GetFlag(FLAGS_register_peer_refill)};
  for (const auth::LoginThrottle::Limit* limit :
       {&accounts.login_throttle.per_username,
        &accounts.login_throttle.per_peer,
        &accounts.register_throttle.per_peer}) {
    if (limit->burst < 1 || limit->refill_interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          "throttle bursts must be >= 1 and refill intervals positive");
    }
  }

  options.revocations.retention =
      accounts.access_token_ttl + absl::GetFlag(FLAGS_clock_skew_allowance);
  options.revocations.poll_interval =
      absl::GetFlag(FLAGS_revocation_poll_interval);
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  options.credential_threads = absl::GetFlag(FLAGS_credential_threads);
  if (options.credential_threads <= 0)
    options.credential_threads = cores > 0 ? cores : 2;
  options.credential_queue =
      static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_credential_queue)));
  options.store_threads = std::max(1, absl::GetFlag(FLAGS_store_threads));
  options.trusted_proxies = absl::GetFlag(FLAGS_trusted_proxies);
  return options;
}

absl::StatusOr<std::unique_ptr<HostedService>> BuildAuthService(
    observability::ServerMetrics& metrics) {
  absl::StatusOr<auth::AuthServiceImpl::Options> options = OptionsFromFlags();
  if (!options.ok()) return options.status();
  auto bundle = std::make_unique<ServiceBundle>();
  options->accounts.metrics =
      bundle->Own(std::make_unique<auth::AuthMetrics>(metrics.registry()));
  // Loaded up front so that a bad key file fails the start, not a call.
  absl::StatusOr<std::unique_ptr<TokenCodec>> tokens = TokenCodecFromFlags();
  if (!tokens.ok()) return tokens.status();
  const TokenCodec* codec = bundle->Own(*std::move(tokens));

  absl::StatusOr<storage::Database*> stores =
      OpenStoresFromFlags(*bundle, metrics);
  if (!stores.ok()) return stores.status();
  storage::Database* database = *stores;

  absl::StatusOr<std::unique_ptr<auth::AuthServiceImpl>> service =
      auth::AuthServiceImpl::Create(*options, database->users(),
                                    database->sessions(), codec);
  if (!service.ok()) return service.status();
  auth::AuthServiceImpl* auth = bundle->Own(*std::move(service));
  bundle->Serve(auth);
  // End the WatchRevocations streams so Shutdown need not wait for them.
  bundle->OnDrain([auth] { auth->Drain(); });
  return bundle;
}

}  // namespace
}  // namespace im

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  im::ConfigureLoggingFromFlags();
  return im::RunService(im::ServiceHostOptionsFromFlags(
                            "im.auth.v1.AuthService", "127.0.0.1:50051"),
                        im::BuildAuthService);
}
