#include "services/common/service_authentication.h"

#include <memory>
#include <utility>

#include "spdlog/spdlog.h"

namespace im {

absl::StatusOr<ServiceAuthentication> StartServiceAuthentication(
    ServiceBundle& bundle, const TokenCodec* codec,
    const std::string& auth_addr, const TlsOptions& peer_tls,
    const RevocationWatcher::Options& watcher_options) {
  ServiceAuthentication parts;
  parts.revocations = bundle.Own(std::make_unique<RevocationSet>());
  parts.internal_tokens =
      bundle.Own(std::make_unique<InternalTokenSource>(codec));
  parts.authenticator =
      bundle.Own(std::make_unique<Authenticator>(codec, parts.revocations));
  if (auth_addr.empty()) {
    spdlog::warn("--auth_addr is empty: no revocation feed");
    return parts;
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeChannel(auth_addr, peer_tls);
  if (!channel.ok()) return channel.status();
  absl::StatusOr<std::unique_ptr<RevocationWatcher>> watcher =
      RevocationWatcher::Create(watcher_options, *std::move(channel),
                                parts.revocations, parts.internal_tokens);
  if (!watcher.ok()) return watcher.status();
  RevocationWatcher* started = bundle.Own(*std::move(watcher));
  bundle.OnStop([started] { started->Stop(); });
  return parts;
}

}  // namespace im
