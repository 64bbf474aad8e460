// The end-to-end suite against MariaDB (tag "mysql"; the server comes from
// IM_TEST_MYSQL_HOST/PORT/USER/PASSWORD, each test gets its own database).

#include "services/message/message_e2e_suite.h"
#include "storage/testing/mysql_test_database.h"

namespace im::message::testing {

INSTANTIATE_TEST_SUITE_P(Mysql, MessageE2ETest,
                         ::testing::Values(BackendFactory{
                             "mysql", [] {
                               return storage::testing::MakeMysqlTestDatabase();
                             }}));

}  // namespace im::message::testing
