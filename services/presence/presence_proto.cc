#include "services/presence/presence_proto.h"

#include "services/common/proto_time.h"

namespace im::presence {

void FillPresence(const UserPresence& presence, v1::Presence* out) {
  out->set_user_id(presence.user_id);
  out->set_status_text(presence.status_text);
  if (presence.online) {
    out->set_state(v1::PRESENCE_STATE_ONLINE);
    for (const DeviceView& device : presence.devices) {
      v1::Device* wire = out->add_devices();
      wire->set_kind(device.kind);
      wire->set_name(device.name);
      SetProtoTime(device.online_since, wire->mutable_online_since());
    }
    return;
  }
  out->set_state(v1::PRESENCE_STATE_OFFLINE);
  if (presence.last_seen.has_value()) {
    SetProtoTime(*presence.last_seen, out->mutable_last_seen());
  }
}

void FillUnknown(uint64_t user_id, v1::Presence* out) {
  out->set_user_id(user_id);
  out->set_state(v1::PRESENCE_STATE_UNKNOWN);
}

}  // namespace im::presence
