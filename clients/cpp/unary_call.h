#ifndef IM_CLIENTS_CPP_UNARY_CALL_H_
#define IM_CLIENTS_CPP_UNARY_CALL_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/common/authenticator.h"
#include "services/common/status.h"

namespace im::client {

// Runs one unary RPC with a deadline and, when `access_token` is not empty,
// `authorization: Bearer <token>`; the answer as absl::StatusOr with the
// gRPC code and message kept. Blocking.
template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> CallUnary(
    Stub* stub,
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                 Response*),
    const Request& request, absl::string_view access_token,
    absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(timeout));
  if (!access_token.empty()) AttachBearerToken(&context, access_token);
  Response response;
  const grpc::Status status = (stub->*method)(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

}  // namespace im::client

#endif  // IM_CLIENTS_CPP_UNARY_CALL_H_
