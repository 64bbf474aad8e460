#ifndef IM_SERVICES_AUTH_AUTH_SERVICE_H_
#define IM_SERVICES_AUTH_AUTH_SERVICE_H_

#include "im/auth/v1/auth.grpc.pb.h"

namespace im {

// im.auth.v1.AuthService, on the synchronous API. Every RPC answers
// UNIMPLEMENTED (the generated base class's default) until it is written.
class AuthServiceImpl final : public auth::v1::AuthService::Service {};

}  // namespace im

#endif  // IM_SERVICES_AUTH_AUTH_SERVICE_H_
