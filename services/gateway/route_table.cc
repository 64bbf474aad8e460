#include "services/gateway/route_table.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace im::gateway {

absl::StatusOr<std::unique_ptr<RouteTable>> RouteTable::Create(
    const std::vector<Route>& routes, const TlsOptions& peer_tls) {
  std::unique_ptr<RouteTable> table(new RouteTable());
  absl::flat_hash_set<std::string> prefixes;
  for (const Route& route : routes) {
    if (route.path_prefix.size() < 3 || route.path_prefix.front() != '/' ||
        route.path_prefix.back() != '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "route prefix must look like /package.Service/, got \"",
          route.path_prefix, "\""));
    }
    if (route.address.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("route ", route.path_prefix, " has no address"));
    }
    if (!prefixes.insert(route.path_prefix).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate route ", route.path_prefix));
    }
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        MakeChannel(route.address, peer_tls);
    if (!channel.ok()) return channel.status();
    auto backend = std::make_unique<Backend>();
    backend->path_prefix = route.path_prefix;
    backend->address = route.address;
    backend->channel = *channel;
    backend->stub = std::make_unique<grpc::GenericStub>(*channel);
    table->backends_.push_back(std::move(backend));
  }
  return table;
}

const RouteTable::Backend* RouteTable::Find(absl::string_view path) const {
  const Backend* best = nullptr;
  for (const auto& backend : backends_) {
    if (absl::StartsWith(path, backend->path_prefix) &&
        (best == nullptr ||
         backend->path_prefix.size() > best->path_prefix.size())) {
      best = backend.get();
    }
  }
  return best;
}

absl::StatusOr<Route> ParseRoute(absl::string_view spec) {
  const size_t eq = spec.find('=');
  if (eq == absl::string_view::npos || eq == 0 || eq + 1 == spec.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "route must be /package.Service/=host:port, got \"", spec, "\""));
  }
  return Route{std::string(spec.substr(0, eq)),
               std::string(spec.substr(eq + 1))};
}

}  // namespace im::gateway
