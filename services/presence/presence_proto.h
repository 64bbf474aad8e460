#ifndef IM_SERVICES_PRESENCE_PRESENCE_PROTO_H_
#define IM_SERVICES_PRESENCE_PRESENCE_PROTO_H_

#include <cstdint>

#include "im/presence/v1/presence.pb.h"
#include "services/presence/presence_lease_table.h"

namespace im::presence {

// The wire form of a visible user's presence.
void FillPresence(const UserPresence& presence, v1::Presence* out);
// The wire form for a user the caller may not see (or that does not exist).
void FillUnknown(uint64_t user_id, v1::Presence* out);

}  // namespace im::presence

#endif  // IM_SERVICES_PRESENCE_PRESENCE_PROTO_H_
