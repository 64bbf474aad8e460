#include "gtest/gtest.h"
#include "storage/testing/store_contract.h"

namespace im::storage::testing {
namespace {

TEST_P(ReadMarkerContractTest, MarkersOnlyMoveUp) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t g = MakeGroup(alice, {bob});
  for (int i = 0; i < 4; ++i) Send(g, alice, std::to_string(i), "x");  // 2..5
  EXPECT_EQ(*read_markers().GetReadSeq(bob, g), 0u);
  EXPECT_EQ(*read_markers().MarkRead(bob, g, 3, At(1)), 3u);
  EXPECT_EQ(*read_markers().MarkRead(bob, g, 2, At(2)), 3u);
  EXPECT_EQ(*read_markers().GetReadSeq(bob, g), 3u);
  EXPECT_EQ(*read_markers().MarkRead(bob, g, 5, At(3)), 5u);
  EXPECT_EQ(*read_markers().MarkRead(bob, g, 5, At(4)), 5u);
  EXPECT_EQ(*read_markers().GetReadSeq(bob, g), 5u);
  EXPECT_EQ(*read_markers().GetReadSeq(alice, g), 5u);
}

TEST_P(ReadMarkerContractTest, SeqMustBeInTheLog) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t g = MakeGroup(alice, {});
  Send(g, alice, "m", "x");  // seq 2
  EXPECT_EQ(read_markers().MarkRead(alice, g, 0, At(1)).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(read_markers().MarkRead(alice, g, 3, At(1)).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(*read_markers().GetReadSeq(alice, g), 2u);
}

TEST_P(ReadMarkerContractTest, OnlyActiveMembers) {
  const uint64_t alice = MakeUser("alice");
  const uint64_t bob = MakeUser("bob");
  const uint64_t carol = MakeUser("carol");
  const uint64_t g = MakeGroup(alice, {bob});
  Send(g, alice, "m", "x");
  ASSERT_TRUE(log().Leave(g, bob, "", At(1)).ok());
  absl::Status left = read_markers().MarkRead(bob, g, 1, At(2)).status();
  absl::Status never = read_markers().MarkRead(carol, g, 1, At(2)).status();
  absl::Status missing =
      read_markers().MarkRead(alice, 999999, 1, At(2)).status();
  EXPECT_EQ(left.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(never.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  // Out-of-range seqs of a foreign conversation still say NOT_FOUND.
  EXPECT_EQ(read_markers().MarkRead(carol, g, 99, At(2)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(never.message(), missing.message());
  EXPECT_EQ(*read_markers().GetReadSeq(carol, g), 0u);
  EXPECT_EQ(*read_markers().GetReadSeq(carol, 999999), 0u);
}

}  // namespace
}  // namespace im::storage::testing
