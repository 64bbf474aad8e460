#ifndef IM_SERVICES_MESSAGE_MESSAGE_E2E_SUITE_H_
#define IM_SERVICES_MESSAGE_MESSAGE_E2E_SUITE_H_

#include <memory>

#include "gtest/gtest.h"
#include "services/message/testing/message_test_env.h"

// End-to-end tests of the message service over real gRPC, written once and
// run against each storage backend:
//
//   INSTANTIATE_TEST_SUITE_P(Fake, MessageE2ETest,
//                            ::testing::Values(BackendFactory{...}));

namespace im::message::testing {

class MessageE2ETest : public ::testing::TestWithParam<BackendFactory> {
 protected:
  void SetUp() override;
  // Restarts the service with `options` over a fresh database.
  void Restart(const MessageServiceOptions& options);

  std::unique_ptr<MessageTestEnv> env_;
};

}  // namespace im::message::testing

#endif  // IM_SERVICES_MESSAGE_MESSAGE_E2E_SUITE_H_
