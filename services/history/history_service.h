#ifndef IM_SERVICES_HISTORY_HISTORY_SERVICE_H_
#define IM_SERVICES_HISTORY_HISTORY_SERVICE_H_

#include "im/history/v1/history.grpc.pb.h"

namespace im {

// im.history.v1.HistoryService, on the synchronous API. Every RPC answers
// UNIMPLEMENTED (the generated base class's default) until it is written.
class HistoryServiceImpl final : public history::v1::HistoryService::Service {};

}  // namespace im

#endif  // IM_SERVICES_HISTORY_HISTORY_SERVICE_H_
