#include "services/history/history_suite.h"
#include "storage/testing/mysql_test_database.h"

// The history suites on MariaDB (tag "mysql"; the server comes from
// IM_TEST_MYSQL_{HOST,PORT,USER,PASSWORD}, each test gets its own
// database).

namespace im::history::testing {
namespace {

INSTANTIATE_HISTORY_SUITES(
    Mysql, (HistoryBackend{"mysql", &storage::testing::MakeMysqlTestDatabase}));

}  // namespace
}  // namespace im::history::testing
