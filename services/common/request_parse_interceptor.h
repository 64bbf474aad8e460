#ifndef IM_SERVICES_COMMON_REQUEST_PARSE_INTERCEPTOR_H_
#define IM_SERVICES_COMMON_REQUEST_PARSE_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

namespace im {

// Answers INVALID_ARGUMENT when a unary or server-streaming request does
// not parse as the method's request message. gRPC answers such a call
// itself, before any handler runs, with UNIMPLEMENTED (callback API) or
// INTERNAL (sync API): both blame the server for bytes the client sent,
// typically a proto3 string field that is not valid UTF-8. GrpcServer
// installs it on every server, outermost.
class RequestParseErrorInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace im

#endif  // IM_SERVICES_COMMON_REQUEST_PARSE_INTERCEPTOR_H_
