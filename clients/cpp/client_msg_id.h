#ifndef IM_CLIENTS_CPP_CLIENT_MSG_ID_H_
#define IM_CLIENTS_CPP_CLIENT_MSG_ID_H_

#include <string>

namespace im::client {

// A random (version 4) UUID in its 36-character text form, from the
// kernel's CSPRNG (getrandom), for SendFrame.client_msg_id: unique per
// device without coordination, and not guessable by other members.
std::string NewClientMsgId();

}  // namespace im::client

#endif  // IM_CLIENTS_CPP_CLIENT_MSG_ID_H_
