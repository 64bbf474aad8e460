#ifndef IM_SERVICES_GATEWAY_CORS_POLICY_H_
#define IM_SERVICES_GATEWAY_CORS_POLICY_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"

namespace im::gateway {

// Which browser origins may call the gateway. An origin is granted when it
// is on the allow-list or is the gateway's own origin (a page the gateway
// serves itself). There is no wildcard: every other origin gets no grant.
class CorsPolicy {
 public:
  // `allowed_origins` are exact origins such as "https://chat.example.com"
  // (scheme://host[:port], no trailing slash). `request_headers` are the
  // request headers a browser may send (Access-Control-Allow-Headers).
  CorsPolicy(const std::vector<std::string>& allowed_origins,
             std::vector<std::string> request_headers);

  // True when `origin` may call the gateway. `host` is the request's Host
  // header, so that the gateway's own origin is always granted.
  bool IsAllowed(absl::string_view origin, absl::string_view host) const;

  // Values for the preflight and actual-response headers.
  const std::string& allow_headers() const { return allow_headers_; }
  static absl::string_view allow_methods() { return "POST, GET, OPTIONS"; }
  static absl::string_view expose_headers() {
    return "grpc-status, grpc-message, grpc-status-details-bin";
  }
  static absl::string_view max_age_seconds() { return "600"; }

 private:
  absl::flat_hash_set<std::string> allowed_origins_;
  std::string allow_headers_;
};

}  // namespace im::gateway

#endif  // IM_SERVICES_GATEWAY_CORS_POLICY_H_
