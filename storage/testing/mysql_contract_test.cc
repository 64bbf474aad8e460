#include "storage/testing/mysql_test_database.h"
#include "storage/testing/store_contract.h"

namespace im::storage::testing {
namespace {

INSTANTIATE_STORE_CONTRACT_TESTS(
    Mysql, (StoreFactory{"mysql", &MakeMysqlTestDatabase}));

}  // namespace
}  // namespace im::storage::testing
