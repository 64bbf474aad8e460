#include "services/common/request_parse_interceptor.h"

#include <grpcpp/grpcpp.h>

namespace im {
namespace {

using grpc::experimental::InterceptionHookPoints;

class RequestParseErrorInterceptor final
    : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    // The server hands interceptors a null message when the request's
    // bytes did not deserialize; the handler then never runs.
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      unparsed_ = true;
    }
    if (unparsed_ && methods->QueryInterceptionHookPoint(
                         InterceptionHookPoints::PRE_SEND_STATUS)) {
      methods->ModifySendStatus(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          "the request could not be parsed (malformed message, or a string "
          "field that is not valid UTF-8)"));
    }
    methods->Proceed();
  }

 private:
  bool unparsed_ = false;
};

}  // namespace

grpc::experimental::Interceptor*
RequestParseErrorInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  // With a request stream, a null message is also how the end of the
  // stream shows; only single-request methods are unambiguous.
  switch (info->type()) {
    case grpc::experimental::ServerRpcInfo::Type::UNARY:
    case grpc::experimental::ServerRpcInfo::Type::SERVER_STREAMING:
      return new RequestParseErrorInterceptor();
    default:
      return nullptr;
  }
}

}  // namespace im
