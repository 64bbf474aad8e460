#ifndef IM_STORAGE_TESTING_MYSQL_TEST_DATABASE_H_
#define IM_STORAGE_TESTING_MYSQL_TEST_DATABASE_H_

#include <memory>

#include "storage/database.h"

namespace im::storage::testing {

// A MysqlDatabase over its own fresh, migrated test database (see
// test_database.h), dropped when the returned Database is destroyed.
// Null after failing the current gtest test with the reason (for example
// the IM_TEST_MYSQL_* variables are missing). For suites that take a
// Database factory and run on the fake and on MariaDB alike.
std::unique_ptr<Database> MakeMysqlTestDatabase();

}  // namespace im::storage::testing

#endif  // IM_STORAGE_TESTING_MYSQL_TEST_DATABASE_H_
