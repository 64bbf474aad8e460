#ifndef IM_SERVICES_GATEWAY_ROUTE_TABLE_H_
#define IM_SERVICES_GATEWAY_ROUTE_TABLE_H_

#include <grpcpp/generic/generic_stub.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/common/grpc_server.h"

namespace im::gateway {

// One entry of the route table: calls whose path starts with `path_prefix`
// (e.g. "/im.auth.v1.AuthService/") go to `address` (host:port).
struct Route {
  std::string path_prefix;
  std::string address;
};

// Routes grpc-web calls to backend channels by path prefix. The gateway
// never looks inside messages, so a new RPC or service needs only a route.
// Thread-safe (immutable after Create).
class RouteTable {
 public:
  struct Backend {
    std::string path_prefix;
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<grpc::GenericStub> stub;
  };

  // INVALID_ARGUMENT for an empty or duplicate prefix, or one not of the
  // form "/<service>/"; errors from reading TLS files.
  static absl::StatusOr<std::unique_ptr<RouteTable>> Create(
      const std::vector<Route>& routes, const TlsOptions& peer_tls);

  // The backend with the longest matching prefix, or null.
  const Backend* Find(absl::string_view path) const;

  const std::vector<std::unique_ptr<Backend>>& backends() const {
    return backends_;
  }

 private:
  RouteTable() = default;

  std::vector<std::unique_ptr<Backend>> backends_;
};

// Parses "prefix=host:port" entries such as
// "/im.auth.v1.AuthService/=127.0.0.1:50051".
absl::StatusOr<Route> ParseRoute(absl::string_view spec);

}  // namespace im::gateway

#endif  // IM_SERVICES_GATEWAY_ROUTE_TABLE_H_
