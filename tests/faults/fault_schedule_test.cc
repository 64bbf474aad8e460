#include "tests/faults/fault_schedule.h"

#include <map>
#include <set>

#include "gtest/gtest.h"

namespace im::faults {
namespace {

std::vector<FaultKind> All() {
  absl::StatusOr<std::vector<FaultKind>> kinds = ParseFaultKinds("all");
  EXPECT_TRUE(kinds.ok());
  return *kinds;
}

TEST(FaultScheduleTest, SameSeedSameSchedule) {
  const auto a = MakeSchedule(7, absl::Seconds(40), All());
  const auto b = MakeSchedule(7, absl::Seconds(40), All());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(DescribeFault(a[i]), DescribeFault(b[i]));
  }
  const auto c = MakeSchedule(8, absl::Seconds(40), All());
  bool differs = c.size() != a.size();
  for (size_t i = 0; !differs && i < a.size(); ++i) {
    differs = DescribeFault(a[i]) != DescribeFault(c[i]);
  }
  EXPECT_TRUE(differs);
}

// The short runs in scripts/test (20 s, seeds 1-3) see every kind too.
TEST(FaultScheduleTest, EveryKindOnceWithinTheDurationWithoutOverlap) {
  for (uint64_t seed : {1, 2, 3, 4, 5, 6, 7, 8, 99}) {
    const absl::Duration duration = absl::Seconds(20);
    const auto schedule = MakeSchedule(seed, duration, All());
    std::set<FaultKind> seen;
    std::map<FaultKind, absl::Duration> last_end;
    for (const Fault& fault : schedule) {
      seen.insert(fault.kind);
      EXPECT_LE(fault.at + fault.hold, duration) << DescribeFault(fault);
      auto it = last_end.find(fault.kind);
      if (it != last_end.end()) {
        EXPECT_GE(fault.at, it->second) << DescribeFault(fault);
      }
      last_end[fault.kind] = fault.at + fault.hold;
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(FaultKind::kCount))
        << "seed " << seed;
  }
}

TEST(FaultScheduleTest, MysqlFaultsNeverOverlap) {
  const auto schedule = MakeSchedule(5, absl::Seconds(120), All());
  absl::Duration free_at = absl::ZeroDuration();
  for (const Fault& fault : schedule) {
    if (fault.kind != FaultKind::kMysqlKill &&
        fault.kind != FaultKind::kMysqlRestart) {
      continue;
    }
    EXPECT_GE(fault.at, free_at) << DescribeFault(fault);
    free_at = fault.at + fault.hold;
  }
}

// A stall must see live traffic to overflow the stream's queue: nothing
// that stops the message path may overlap it.
TEST(FaultScheduleTest, StallsOverlapNothingOnTheMessagePath) {
  for (uint64_t seed : {1, 2, 3, 4, 5, 6}) {
    const auto schedule = MakeSchedule(seed, absl::Seconds(60), All());
    for (const Fault& stall : schedule) {
      if (stall.kind != FaultKind::kStallConsumer) continue;
      for (const Fault& other : schedule) {
        switch (other.kind) {
          case FaultKind::kKillMessage:
          case FaultKind::kMysqlKill:
          case FaultKind::kMysqlRestart:
          case FaultKind::kProxyReset:
          case FaultKind::kProxyBlackhole:
            break;
          default:
            continue;
        }
        const bool overlap = other.at < stall.at + stall.hold &&
                             stall.at < other.at + other.hold +
                                            absl::Milliseconds(1);
        EXPECT_FALSE(overlap) << "seed " << seed << ": "
                              << DescribeFault(stall) << " and "
                              << DescribeFault(other);
      }
    }
  }
}

TEST(FaultScheduleTest, ParsesNames) {
  auto kinds = ParseFaultKinds("mysql_kill,kill_auth,mysql_kill");
  ASSERT_TRUE(kinds.ok());
  EXPECT_EQ(*kinds, (std::vector<FaultKind>{FaultKind::kKillAuth,
                                            FaultKind::kMysqlKill}));
  EXPECT_FALSE(ParseFaultKinds("kill_everything").ok());
}

}  // namespace
}  // namespace im::faults
