#ifndef IM_SERVICES_MESSAGE_TESTING_STORE_FIXTURE_H_
#define IM_SERVICES_MESSAGE_TESTING_STORE_FIXTURE_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "storage/database.h"

// Small helpers for unit tests of the message pipeline on a store.

namespace im::message::testing {

// `users` people (user0, user1, ...) and a group owned by the first with the
// second as member.
struct StoreGroup {
  std::vector<uint64_t> users;
  uint64_t group = 0;
};
StoreGroup MakeStoreGroup(storage::Database& db, int users);

// Calls `start` with a callback taking a T and waits until it is called;
// returns the value.
template <typename T, typename Start>
T AwaitResult(Start start) {
  absl::Notification done;
  std::optional<T> result;
  start([&](T value) {
    result = std::move(value);
    done.Notify();
  });
  done.WaitForNotification();
  return *std::move(result);
}

}  // namespace im::message::testing

#endif  // IM_SERVICES_MESSAGE_TESTING_STORE_FIXTURE_H_
