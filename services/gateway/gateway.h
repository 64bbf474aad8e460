#ifndef IM_SERVICES_GATEWAY_GATEWAY_H_
#define IM_SERVICES_GATEWAY_GATEWAY_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/common/grpc_server.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/route_table.h"

namespace im::gateway {

struct GatewayOptions {
  // host:port for HTTP/1.1; port 0 picks a free port (see Gateway::port()).
  std::string listen_address = "127.0.0.1:8080";
  // Where each service's calls go.
  std::vector<Route> routes;
  // TLS for the backend channels (insecure when disabled).
  TlsOptions peer_tls;
  // Browser origins granted CORS besides the gateway's own origin, e.g.
  // "http://localhost:5173". Empty: only pages the gateway serves itself.
  std::vector<std::string> cors_allowed_origins;
  // Request headers passed to the backend as gRPC metadata (lowercase).
  // Browsers may send these (Access-Control-Allow-Headers) together with the
  // grpc-web protocol headers.
  std::vector<std::string> forwarded_headers = {"authorization",
                                                "x-request-id"};
  // Largest request body accepted; larger grpc-web calls get
  // RESOURCE_EXHAUSTED, other requests 413.
  size_t max_request_bytes = 1 << 20;
  // Concurrent grpc-web calls (unary and streams) per client IP address.
  int max_calls_per_client = 64;
  // Open connections; further connections are closed at once.
  int max_connections = 10000;
  // A connection with no request in progress is closed after this long
  // (also bounds how long reading one request may take).
  absl::Duration idle_timeout = absl::Seconds(60);
  // A browser that does not take a response write within this long is
  // treated as gone (its backend call is cancelled).
  absl::Duration write_timeout = absl::Seconds(30);
  // Directory with the built web page served for GET requests; empty = no
  // static files.
  std::string web_root;
  // Threads running HTTP I/O.
  int io_threads = 2;
};

// The grpc-web edge: HTTP/1.1 (Boost.Beast) in front, gRPC generic calls to
// the backends behind. Serves POST grpc-web calls (unary and server
// streaming, binary and base64 text), CORS preflights, GET /healthz and the
// web page. Thread-safe.
class Gateway {
 public:
  // `metrics` must outlive the gateway. UNAVAILABLE when the address cannot
  // be bound; INVALID_ARGUMENT for bad routes; NOT_FOUND for a missing
  // web root.
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(
      const GatewayOptions& options, GatewayMetrics* metrics);

  // Shuts down with no grace.
  ~Gateway();

  int port() const;
  // host:port actually bound.
  const std::string& address() const;

  // grpc-web calls in flight (forwarded and not yet answered).
  int live_calls() const;

  // Stops accepting connections and answers /healthz with 503; calls in
  // flight continue and new calls get UNAVAILABLE.
  void Drain();
  // Drains, waits up to `grace` for calls in flight to end, then cancels
  // the rest (browsers see their streams end) and closes every connection.
  // Safe to call twice.
  void Shutdown(absl::Duration grace);

  class Impl;

 private:
  explicit Gateway(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace im::gateway

#endif  // IM_SERVICES_GATEWAY_GATEWAY_H_
