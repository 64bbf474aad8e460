#ifndef IM_SERVICES_MESSAGE_MESSAGE_SERVICE_H_
#define IM_SERVICES_MESSAGE_MESSAGE_SERVICE_H_

#include "im/message/v1/message.grpc.pb.h"

namespace im {

// im.message.v1.MessageService, on the callback API, so the Chat stream runs as
// a reactor. Every RPC answers UNIMPLEMENTED (the generated base class's
// default) until it is written.
class MessageServiceImpl final
    : public message::v1::MessageService::CallbackService {};

}  // namespace im

#endif  // IM_SERVICES_MESSAGE_MESSAGE_SERVICE_H_
