// The end-to-end suite against the in-memory fake database.

#include <memory>

#include "services/message/message_e2e_suite.h"
#include "storage/fake/fake_database.h"

namespace im::message::testing {

INSTANTIATE_TEST_SUITE_P(Fake, MessageE2ETest,
                         ::testing::Values(BackendFactory{
                             "fake", [] {
                               return std::make_unique<storage::FakeDatabase>();
                             }}));

}  // namespace im::message::testing
