#ifndef IM_OBSERVABILITY_SCRAPE_CLIENT_H_
#define IM_OBSERVABILITY_SCRAPE_CLIENT_H_

#include <string>

#include "absl/status/statusor.h"

namespace im::observability {

// GET http://<host_port><path> over HTTP/1.0 on IPv4, as Prometheus would
// scrape it; returns the body of a 200 response. For tests.
// UNAVAILABLE when the connection fails; INTERNAL for any other status.
absl::StatusOr<std::string> Scrape(const std::string& host_port,
                                   const std::string& path = "/metrics");

}  // namespace im::observability

#endif  // IM_OBSERVABILITY_SCRAPE_CLIENT_H_
