#ifndef IM_SERVICES_PRESENCE_PRESENCE_SERVICE_H_
#define IM_SERVICES_PRESENCE_PRESENCE_SERVICE_H_

#include "im/presence/v1/presence.grpc.pb.h"

namespace im {

// im.presence.v1.PresenceService, on the synchronous API. Every RPC answers
// UNIMPLEMENTED (the generated base class's default) until it is written.
class PresenceServiceImpl final
    : public presence::v1::PresenceService::Service {};

}  // namespace im

#endif  // IM_SERVICES_PRESENCE_PRESENCE_SERVICE_H_
