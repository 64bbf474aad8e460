#ifndef IM_SERVICES_COMMON_GRPC_SERVER_H_
#define IM_SERVICES_COMMON_GRPC_SERVER_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace im {

// Certificates for one end of a TLS connection. Empty cert_file means
// plaintext.
struct TlsOptions {
  std::string cert_file;  // PEM certificate chain
  std::string key_file;   // PEM private key
  // PEM CA bundle. Servers: when set, clients must present a certificate it
  // signed (mTLS). Clients: the CA that signed the server (empty = system
  // roots).
  std::string ca_file;
  // Clients: expected server name when it differs from the address host.
  std::string server_name_override;

  bool enabled() const { return !cert_file.empty() || !ca_file.empty(); }
};

struct ServerOptions {
  // Name for logs and the health service, e.g. "im.message.v1.MessageService".
  std::string name;
  // host:port; port 0 picks a free port (see GrpcServer::port()).
  std::string listen_address = "127.0.0.1:0";
  TlsOptions tls;
  // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection.
  int max_concurrent_streams = 256;
  // Serves grpc.reflection (service and message descriptors) for tools
  // like grpcurl. Off by default: it hands the whole API surface to anyone
  // who can connect (OWASP gRPC guidance); development runs turn it on.
  bool reflection = false;
  // Largest request message accepted (gRPC answers RESOURCE_EXHAUSTED above).
  int max_receive_message_bytes = 1 << 20;
  // Server pings idle connections this often and drops them when a ping is
  // not answered within keepalive_timeout.
  absl::Duration keepalive_time = absl::Seconds(30);
  absl::Duration keepalive_timeout = absl::Seconds(10);
  // Clients pinging more often than this get GOAWAY (keepalive enforcement).
  absl::Duration min_client_ping_interval = absl::Seconds(10);
  // Server interceptors, outermost first: each function makes one factory
  // for the builder to own (the service host adds the metrics interceptor).
  std::vector<std::function<std::unique_ptr<
      grpc::experimental::ServerInterceptorFactoryInterface>()>>
      interceptors;
  // Extra builder set-up (resource quota, ...), run last.
  std::function<void(grpc::ServerBuilder&)> configure;
};

// A started gRPC server with the standard health service (grpc.health.v1)
// and, when asked, server reflection. Health reports SERVING for "" and every registered
// service name until Drain().
class GrpcServer {
 public:
  // `services` (at least one) must outlive the server. UNAVAILABLE if the address cannot be
  // bound; INVALID_ARGUMENT/NOT_FOUND for unreadable TLS files.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const ServerOptions& options, const std::vector<grpc::Service*>& services);

  ~GrpcServer();

  int port() const { return port_; }
  // host:port actually bound, e.g. "127.0.0.1:40123".
  const std::string& address() const { return address_; }
  grpc::Server* server() { return server_.get(); }

  // Health goes NOT_SERVING so load balancers stop sending new calls.
  void Drain();
  // Stops accepting calls and cancels what remains after `grace`. Safe to
  // call twice.
  void Shutdown(absl::Duration grace);
  // Blocks until Shutdown completes.
  void Wait();

 private:
  GrpcServer() = default;

  std::unique_ptr<grpc::Server> server_;
  std::vector<std::string> service_names_;
  std::string address_;
  int port_ = 0;
  bool shut_down_ = false;
};

// Server credentials for `tls` (insecure when !tls.enabled()).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& tls);
// Channel credentials for calling another service (insecure when
// !tls.enabled(); mTLS when cert_file is set).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsOptions& tls);
// A channel to `address` with the project's client defaults (keepalive that
// respects the servers' enforcement, reconnect backoff), set on top of
// `args` (e.g. a local subchannel pool for a connection of its own).
// `address` may list several nodes of one service, "ip:port,ip:port"
// (IP literals of one family; INVALID_ARGUMENT otherwise): calls and
// streams then go round robin to the nodes that are up. With TLS, set
// tls.server_name_override to the name the nodes' certificates share.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const std::string& address, const TlsOptions& tls,
    grpc::ChannelArguments args = grpc::ChannelArguments());

// Blocks SIGTERM and SIGINT in the calling thread and every thread it starts
// later. Call first thing in main(), before any thread exists.
void BlockTerminationSignals();
// Waits for SIGTERM or SIGINT (blocked by BlockTerminationSignals) and
// returns its number.
int WaitForTerminationSignal();

}  // namespace im

#endif  // IM_SERVICES_COMMON_GRPC_SERVER_H_
