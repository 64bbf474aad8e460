// The presence service binary: flags from //services/common:server_flags
// plus the presence flags below; defaults as in CONVENTIONS.md.

#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "services/common/database_flags.h"
#include "services/common/redis_flags.h"
#include "services/common/server_flags.h"
#include "services/common/service_authentication.h"
#include "services/common/service_host.h"
#include "services/presence/presence_metrics.h"
#include "services/presence/presence_service.h"
#include "services/presence/redis_lease_replication.h"
#include "services/presence/redis_replication_metrics.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, auth_addr, "127.0.0.1:50051",
          "host:port of the auth service (revocations feed)");
ABSL_FLAG(absl::Duration, lease_ttl, absl::Seconds(30),
          "a message node that does not heartbeat for this long loses its "
          "device leases (its users go offline)");
ABSL_FLAG(absl::Duration, grace_period, absl::Seconds(2),
          "a device that reconnects within this causes no offline/online "
          "change");
ABSL_FLAG(absl::Duration, coalesce_window, absl::Milliseconds(100),
          "presence changes are sent to each subscriber at most once per "
          "window, one batch with the latest state of each changed user");
ABSL_FLAG(absl::Duration, last_seen_interval, absl::Seconds(60),
          "last_seen is written to MySQL at most once per interval per user "
          "(online users are refreshed once per interval)");
ABSL_FLAG(absl::Duration, last_seen_flush_period, absl::Seconds(1),
          "how often due last_seen values are written (in batches)");
ABSL_FLAG(absl::Duration, visibility_cache_ttl, absl::Seconds(5),
          "how long 'who shares a conversation with whom' answers are cached");
ABSL_FLAG(absl::Duration, visibility_refresh, absl::Seconds(30),
          "how often live subscriptions re-check whom they may see");
ABSL_FLAG(absl::Duration, idle_retention, absl::Minutes(10),
          "offline users untouched this long are dropped from memory");
ABSL_FLAG(int, max_subscriptions_per_user, 32,
          "Subscribe streams one user may hold");
ABSL_FLAG(int, worker_threads, 4,
          "threads for Query, SetStatus and Subscribe set-up (MySQL reads)");
ABSL_FLAG(std::string, node_id, "",
          "This presence node's id among the others (--redis); empty = "
          "presence-<hostname>-<pid>");

namespace im {
namespace {

absl::StatusOr<presence::PresenceServiceImpl::Options> OptionsFromFlags() {
  presence::PresenceServiceImpl::Options options;
  options.lease_ttl = absl::GetFlag(FLAGS_lease_ttl);
  options.grace_period = absl::GetFlag(FLAGS_grace_period);
  options.coalesce_window = absl::GetFlag(FLAGS_coalesce_window);
  options.last_seen_interval = absl::GetFlag(FLAGS_last_seen_interval);
  options.last_seen_flush_period = absl::GetFlag(FLAGS_last_seen_flush_period);
  options.visibility_cache_ttl = absl::GetFlag(FLAGS_visibility_cache_ttl);
  options.visibility_refresh = absl::GetFlag(FLAGS_visibility_refresh);
  options.idle_retention = absl::GetFlag(FLAGS_idle_retention);
  if (absl::GetFlag(FLAGS_max_subscriptions_per_user) < 1 ||
      absl::GetFlag(FLAGS_worker_threads) < 1) {
    return absl::InvalidArgumentError(
        "--max_subscriptions_per_user and --worker_threads must be >= 1");
  }
  options.max_subscriptions_per_user =
      static_cast<size_t>(absl::GetFlag(FLAGS_max_subscriptions_per_user));
  options.worker_threads = absl::GetFlag(FLAGS_worker_threads);
  return options;
}

absl::StatusOr<std::unique_ptr<HostedService>> BuildPresenceService(
    observability::ServerMetrics& metrics) {
  absl::StatusOr<presence::PresenceServiceImpl::Options> options =
      OptionsFromFlags();
  if (!options.ok()) return options.status();
  auto bundle = std::make_unique<ServiceBundle>();
  // Loaded up front so that a bad key file fails the start, not a call.
  absl::StatusOr<std::unique_ptr<TokenCodec>> tokens = TokenCodecFromFlags();
  if (!tokens.ok()) return tokens.status();
  const TokenCodec* codec = bundle->Own(*std::move(tokens));

  absl::StatusOr<storage::Database*> stores =
      OpenStoresFromFlags(*bundle, metrics);
  if (!stores.ok()) return stores.status();
  storage::Database* database = *stores;

  // Revocations from auth: subscriptions of a revoked session end at once.
  absl::StatusOr<ServiceAuthentication> auth =
      StartServiceAuthentication(*bundle, codec, absl::GetFlag(FLAGS_auth_addr),
                                 PeerTlsOptionsFromFlags());
  if (!auth.ok()) return auth.status();

  presence::RedisLeaseReplication* replication = nullptr;
  absl::StatusOr<std::optional<RedisLink>> link = RedisLinkFromFlags();
  if (!link.ok()) return link.status();
  if (link->has_value()) {
    presence::RedisLeaseReplication::Options replication_options;
    replication_options.redis.address = (*link)->address;
    replication_options.instance_id = absl::GetFlag(FLAGS_node_id);
    if (replication_options.instance_id.empty()) {
      char host[256] = {};
      gethostname(host, sizeof(host) - 1);
      replication_options.instance_id =
          absl::StrCat("presence-", host, "-", getpid());
    }
    replication_options.key_prefix = (*link)->key_prefix;
    replication_options.lease_ttl = options->lease_ttl;
    spdlog::info("sharing leases with the other presence nodes through Redis "
                 "at {} as {}",
                 absl::GetFlag(FLAGS_redis), replication_options.instance_id);
    options->make_replication = [replication_options, &replication](
                                    presence::PresenceLeaseTable* table)
        -> absl::StatusOr<std::unique_ptr<presence::LeaseReplication>> {
      absl::StatusOr<std::unique_ptr<presence::RedisLeaseReplication>>
          created =
              presence::RedisLeaseReplication::Create(replication_options, table);
      if (!created.ok()) return created.status();
      replication = created->get();
      return std::unique_ptr<presence::LeaseReplication>(*std::move(created));
    };
  }
  absl::StatusOr<std::unique_ptr<presence::PresenceServiceImpl>> service =
      presence::PresenceServiceImpl::Create(*options, auth->authenticator,
                                            database->users(),
                                            database->reader(),
                                            auth->revocations);
  if (!service.ok()) return service.status();
  presence::PresenceServiceImpl* presence = bundle->Own(*std::move(service));
  bundle->Serve(presence);
  metrics.AddCollectable(presence::PresenceMetrics(*presence));
  if (replication != nullptr) {
    metrics.AddCollectable(presence::RedisReplicationMetrics(*replication));
  }
  // End the Subscribe streams so the server's Shutdown need not wait for
  // them, and write every pending last_seen.
  bundle->OnDrain([presence] { presence->Shutdown(); });
  return bundle;
}

}  // namespace
}  // namespace im

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  im::ConfigureLoggingFromFlags();
  return im::RunService(
      im::ServiceHostOptionsFromFlags("im.presence.v1.PresenceService",
                                      "127.0.0.1:50052"),
      im::BuildPresenceService);
}
