#include "services/gateway/cors_policy.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace im::gateway {

CorsPolicy::CorsPolicy(const std::vector<std::string>& allowed_origins,
                       std::vector<std::string> request_headers)
    : allow_headers_(absl::StrJoin(request_headers, ", ")) {
  for (const std::string& origin : allowed_origins) {
    absl::string_view trimmed = absl::StripAsciiWhitespace(origin);
    while (absl::ConsumeSuffix(&trimmed, "/")) {
    }
    if (!trimmed.empty()) {
      allowed_origins_.insert(absl::AsciiStrToLower(trimmed));
    }
  }
}

bool CorsPolicy::IsAllowed(absl::string_view origin,
                           absl::string_view host) const {
  if (origin.empty() || origin == "null") return false;
  const std::string lowered = absl::AsciiStrToLower(origin);
  if (allowed_origins_.contains(lowered)) return true;
  // Same origin: the scheme does not matter here, the authority must match.
  absl::string_view authority = lowered;
  if (!absl::ConsumePrefix(&authority, "http://") &&
      !absl::ConsumePrefix(&authority, "https://")) {
    return false;
  }
  return !host.empty() && absl::EqualsIgnoreCase(authority, host);
}

}  // namespace im::gateway
