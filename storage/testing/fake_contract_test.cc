#include <memory>

#include "storage/fake/fake_database.h"
#include "storage/testing/store_contract.h"

namespace im::storage::testing {
namespace {

INSTANTIATE_STORE_CONTRACT_TESTS(
    Fake, (StoreFactory{"fake", [] { return std::make_unique<FakeDatabase>(); }}));

}  // namespace
}  // namespace im::storage::testing
