// The message service binary: flags from //services/common:server_flags and
// :database_flags plus the message flags below; defaults as in
// CONVENTIONS.md.

#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "services/common/authenticator.h"
#include "services/common/database_flags.h"
#include "services/common/grpc_server.h"
#include "services/common/redis_flags.h"
#include "services/common/revocation_watcher.h"
#include "services/common/server_flags.h"
#include "services/common/service_authentication.h"
#include "services/common/service_host.h"
#include "services/message/message_metrics.h"
#include "services/message/message_node_metrics.h"
#include "services/message/message_service.h"
#include "services/message/redis_bus_metrics.h"
#include "services/message/redis_delivery_bus.h"
#include "services/presence/presence_lease_client.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, auth_addr, "127.0.0.1:50051",
          "host:port of the auth service (revocation feed); empty = no feed, "
          "revoked sessions then last until their access tokens expire");
ABSL_FLAG(std::string, presence_addr, "127.0.0.1:50052",
          "host:port of the presence node this node reports its devices to "
          "(one node, not a list); empty = do not report devices");
ABSL_FLAG(std::string, node_id, "",
          "This node's id towards presence and the other message nodes, "
          "unique and stable across restarts; empty = message-<hostname>");
ABSL_FLAG(absl::Duration, redis_route_ttl, absl::Seconds(60),
          "How long this node's user routes live in Redis unless refreshed "
          "(a dead node's routes lapse after this)");
ABSL_FLAG(absl::Duration, revocation_retention, absl::Minutes(16),
          "How long revocations are remembered: the access token TTL plus "
          "clock skew");
ABSL_FLAG(int, max_text_bytes, 8 * 1024, "Largest message text in bytes");
ABSL_FLAG(double, send_rate, 50, "Sends per second per user (0 = unlimited)");
ABSL_FLAG(int, send_burst, 100, "Sends a user may burst above the rate");
ABSL_FLAG(double, typing_rate, 2,
          "Typing indicators per second per user (0 = unlimited)");
ABSL_FLAG(int, typing_burst, 5, "Typing indicators a user may burst");
ABSL_FLAG(int, writer_shards, 4,
          "Log writer shards (threads committing batches), by conversation");
ABSL_FLAG(int, writer_max_batch, 512, "Most sends per group commit");
ABSL_FLAG(int, writer_queue, 20000,
          "Sends waiting per shard before RESOURCE_EXHAUSTED");
ABSL_FLAG(int, writer_attempts, 5,
          "Tries per batch on UNAVAILABLE/ABORTED before the sends fail "
          "UNAVAILABLE");
ABSL_FLAG(int, stream_max_frames, 1024,
          "Frames a stream may have queued before it is closed "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(int, stream_max_bytes, 4 << 20,
          "Bytes a stream may have queued before it is closed "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(int, replay_page, 200, "Entries per log read while replaying");
ABSL_FLAG(int, max_replay, 1000,
          "Entries replayed per conversation at most; further behind gets "
          "ReplayTruncated");
ABSL_FLAG(int, max_held_live, 1024,
          "Live entries a stream holds back while filling a gap (beyond, "
          "they are read from the log)");
ABSL_FLAG(int, max_streams_per_user, 16,
          "Chat/Subscribe streams per user on this node");
ABSL_FLAG(int, worker_threads, 8,
          "Threads for database reads and other blocking RPC work");
ABSL_FLAG(absl::Duration, poll_wait_cap, absl::Seconds(30),
          "Longest a Poll waits");
ABSL_FLAG(int, poll_max_entries, 500, "Most frames per Poll answer");
ABSL_FLAG(int, max_group_members, 1000, "Largest group");
ABSL_FLAG(int, membership_cache_size, 100000,
          "Conversations whose members are kept in memory");

namespace im {
namespace {

std::string NodeId() {
  std::string id = absl::GetFlag(FLAGS_node_id);
  if (!id.empty()) return id;
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return absl::StrCat("message-", host);
}

absl::StatusOr<message::MessageServiceOptions> OptionsFromFlags() {
  message::MessageServiceOptions options;
  auto positive = [](int value, const char* name) -> absl::Status {
    if (value < 1) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " must be >= 1"));
    }
    return absl::OkStatus();
  };
  for (const auto& [value, name] :
       {std::pair{absl::GetFlag(FLAGS_max_text_bytes), "max_text_bytes"},
        std::pair{absl::GetFlag(FLAGS_send_burst), "send_burst"},
        std::pair{absl::GetFlag(FLAGS_typing_burst), "typing_burst"},
        std::pair{absl::GetFlag(FLAGS_writer_shards), "writer_shards"},
        std::pair{absl::GetFlag(FLAGS_writer_max_batch), "writer_max_batch"},
        std::pair{absl::GetFlag(FLAGS_writer_queue), "writer_queue"},
        std::pair{absl::GetFlag(FLAGS_writer_attempts), "writer_attempts"},
        std::pair{absl::GetFlag(FLAGS_stream_max_frames), "stream_max_frames"},
        std::pair{absl::GetFlag(FLAGS_stream_max_bytes), "stream_max_bytes"},
        std::pair{absl::GetFlag(FLAGS_replay_page), "replay_page"},
        std::pair{absl::GetFlag(FLAGS_max_replay), "max_replay"},
        std::pair{absl::GetFlag(FLAGS_max_held_live), "max_held_live"},
        std::pair{absl::GetFlag(FLAGS_max_streams_per_user),
                  "max_streams_per_user"},
        std::pair{absl::GetFlag(FLAGS_worker_threads), "worker_threads"},
        std::pair{absl::GetFlag(FLAGS_poll_max_entries), "poll_max_entries"},
        std::pair{absl::GetFlag(FLAGS_max_group_members), "max_group_members"},
        std::pair{absl::GetFlag(FLAGS_membership_cache_size),
                  "membership_cache_size"}}) {
    if (absl::Status status = positive(value, name); !status.ok()) return status;
  }
  options.limits.max_text_bytes = absl::GetFlag(FLAGS_max_text_bytes);
  options.send_rate = message::RateOptions(absl::GetFlag(FLAGS_send_rate),
                                           absl::GetFlag(FLAGS_send_burst));
  options.typing_rate = message::RateOptions(
      absl::GetFlag(FLAGS_typing_rate), absl::GetFlag(FLAGS_typing_burst));
  options.writer.shards = absl::GetFlag(FLAGS_writer_shards);
  options.writer.max_batch = absl::GetFlag(FLAGS_writer_max_batch);
  options.writer.max_queued_per_shard = absl::GetFlag(FLAGS_writer_queue);
  options.writer.max_attempts = absl::GetFlag(FLAGS_writer_attempts);
  options.stream.max_queued_frames = absl::GetFlag(FLAGS_stream_max_frames);
  options.stream.max_queued_bytes = absl::GetFlag(FLAGS_stream_max_bytes);
  options.stream.replay_page_size = absl::GetFlag(FLAGS_replay_page);
  options.stream.max_replay_entries = absl::GetFlag(FLAGS_max_replay);
  options.stream.max_held_live_entries = absl::GetFlag(FLAGS_max_held_live);
  options.router.max_streams_per_user =
      absl::GetFlag(FLAGS_max_streams_per_user);
  options.worker_threads = absl::GetFlag(FLAGS_worker_threads);
  options.poll_wait_cap = absl::GetFlag(FLAGS_poll_wait_cap);
  options.poll_max_entries = absl::GetFlag(FLAGS_poll_max_entries);
  options.max_group_members = absl::GetFlag(FLAGS_max_group_members);
  options.membership_cache.max_conversations =
      absl::GetFlag(FLAGS_membership_cache_size);
  return options;
}

// The link to the other nodes, or none without --redis.
absl::StatusOr<std::function<absl::StatusOr<std::unique_ptr<
    message::DeliveryBus>>(message::DeliveryRouter*, message::MembershipCache*)>>
MakeBusFactory(storage::ConversationReader* reader,
               message::RedisDeliveryBus** created) {
  absl::StatusOr<std::optional<RedisLink>> link = RedisLinkFromFlags();
  if (!link.ok()) return link.status();
  if (!link->has_value()) return nullptr;
  message::RedisDeliveryBus::Options options;
  options.redis.address = (*link)->address;
  options.node_id = NodeId();
  options.key_prefix = (*link)->key_prefix;
  options.route_ttl = absl::GetFlag(FLAGS_redis_route_ttl);
  return [options, reader, created](message::DeliveryRouter* router,
                                    message::MembershipCache* members)
             -> absl::StatusOr<std::unique_ptr<message::DeliveryBus>> {
    absl::StatusOr<std::unique_ptr<message::RedisDeliveryBus>> bus =
        message::RedisDeliveryBus::Create(options, router, members, reader);
    if (!bus.ok()) return bus.status();
    *created = bus->get();
    return std::unique_ptr<message::DeliveryBus>(*std::move(bus));
  };
}

absl::StatusOr<std::unique_ptr<HostedService>> BuildMessageService(
    observability::ServerMetrics& metrics) {
  absl::StatusOr<message::MessageServiceOptions> options = OptionsFromFlags();
  if (!options.ok()) return options.status();
  auto bundle = std::make_unique<ServiceBundle>();
  auto* pipeline_metrics = bundle->Own(
      std::make_unique<message::MessageMetrics>(metrics.registry()));
  options->writer.metrics = pipeline_metrics;
  options->stream.metrics = pipeline_metrics;
  // Loaded up front so that a bad key file fails the start, not a call.
  absl::StatusOr<std::unique_ptr<TokenCodec>> tokens = TokenCodecFromFlags();
  if (!tokens.ok()) return tokens.status();
  const TokenCodec* codec = bundle->Own(*std::move(tokens));
  RevocationWatcher::Options watcher_options;
  watcher_options.retention = absl::GetFlag(FLAGS_revocation_retention);
  absl::StatusOr<ServiceAuthentication> auth = StartServiceAuthentication(
      *bundle, codec, absl::GetFlag(FLAGS_auth_addr), PeerTlsOptionsFromFlags(),
      watcher_options);
  if (!auth.ok()) return auth.status();
  InternalTokenSource* internal_tokens = auth->internal_tokens;

  absl::StatusOr<storage::Database*> stores =
      OpenStoresFromFlags(*bundle, metrics);
  if (!stores.ok()) return stores.status();
  storage::Database* database = *stores;

  presence::PresenceLeaseClient* presence = nullptr;
  if (const std::string presence_addr = absl::GetFlag(FLAGS_presence_addr);
      !presence_addr.empty()) {
    // One presence node owns this node's leases: calls spread over several
    // would split them between owners.
    if (presence_addr.find(',') != std::string::npos) {
      return absl::InvalidArgumentError(
          "--presence_addr names one presence node (the owner of this "
          "node's device leases), not a list");
    }
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        MakeChannel(presence_addr, PeerTlsOptionsFromFlags());
    if (!channel.ok()) return channel.status();
    presence::PresenceLeaseClient::Options presence_options;
    presence_options.node_id = NodeId();
    absl::StatusOr<std::unique_ptr<presence::PresenceLeaseClient>> created =
        presence::PresenceLeaseClient::Create(
            presence_options, *std::move(channel),
            [internal_tokens] { return internal_tokens->Token(); });
    if (!created.ok()) return created.status();
    presence = bundle->Own(*std::move(created));
  }

  message::MessageServiceImpl::Dependencies deps;
  deps.log = database->log();
  deps.reader = database->reader();
  deps.read_markers = database->read_markers();
  deps.authenticator = auth->authenticator;
  deps.revocations = auth->revocations;
  deps.presence = presence;
  message::RedisDeliveryBus* redis_bus = nullptr;
  auto make_bus = MakeBusFactory(database->reader(), &redis_bus);
  if (!make_bus.ok()) return make_bus.status();
  deps.make_bus = *std::move(make_bus);
  absl::StatusOr<std::unique_ptr<message::MessageServiceImpl>> service =
      message::MessageServiceImpl::Create(*options, deps);
  if (!service.ok()) return service.status();
  message::MessageServiceImpl* message = bundle->Own(*std::move(service));
  if (redis_bus != nullptr) {
    spdlog::info("linked to the other message nodes through Redis at {} as "
                 "node {}",
                 absl::GetFlag(FLAGS_redis), NodeId());
    metrics.AddCollectable(message::RedisBusMetrics(*redis_bus));
  }
  bundle->Serve(message);
  metrics.AddCollectable(message::MessageNodeMetrics(*message));
  // Acks of queued sends go out, then streams end UNAVAILABLE; presence
  // hears about the closed streams before the node stops.
  bundle->OnDrain([message, presence] {
    message->Drain();
    if (presence != nullptr) presence->Shutdown(absl::Seconds(2));
  });
  return bundle;
}

}  // namespace
}  // namespace im

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built with Mutex deadlock detection on, which puts a
  // global lock behind every Mutex acquisition: too slow for the delivery
  // path. The tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  im::ConfigureLoggingFromFlags();
  return im::RunService(im::ServiceHostOptionsFromFlags(
                            "im.message.v1.MessageService", "127.0.0.1:50053"),
                        im::BuildMessageService);
}
