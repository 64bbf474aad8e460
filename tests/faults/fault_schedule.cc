#include "tests/faults/fault_schedule.h"

#include <algorithm>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace im::faults {
namespace {

// What a fault acts on, as bits; faults sharing a bit never overlap. A
// stall must see live traffic to overflow its stream's queue, so it also
// takes the message service, MariaDB and the proxy.
enum Resource : uint32_t {
  kAuthService = 1 << 0,
  kPresenceService = 1 << 1,
  kMessageService = 1 << 2,
  kHistoryService = 1 << 3,
  kMariaDb = 1 << 4,
  kProxy = 1 << 5,
  kClientStreams = 1 << 6,
  kConsumer = 1 << 7,
};

uint32_t Resources(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKillAuth:
      return kAuthService;
    case FaultKind::kKillPresence:
      return kPresenceService;
    case FaultKind::kKillMessage:
      return kMessageService;
    case FaultKind::kKillHistory:
      return kHistoryService;
    case FaultKind::kMysqlRestart:
    case FaultKind::kMysqlKill:
      return kMariaDb;
    case FaultKind::kProxyReset:
    case FaultKind::kProxyBlackhole:
      return kProxy;
    case FaultKind::kDropStreams:
      return kClientStreams;
    case FaultKind::kStallConsumer:
      return kConsumer | kMessageService | kMariaDb | kProxy;
    case FaultKind::kCount:
      break;
  }
  return 0;
}

absl::Duration Millis(std::mt19937_64& rng, int low, int high) {
  return absl::Milliseconds(
      std::uniform_int_distribution<int>(low, high)(rng));
}

Fault Draw(std::mt19937_64& rng, FaultKind kind) {
  Fault fault;
  fault.kind = kind;
  switch (kind) {
    case FaultKind::kKillMessage:
    case FaultKind::kKillHistory:
    case FaultKind::kKillPresence:
    case FaultKind::kKillAuth:
      fault.hold = Millis(rng, 0, 2000);
      break;
    case FaultKind::kMysqlRestart:
    case FaultKind::kMysqlKill:
      fault.hold = Millis(rng, 500, 2500);
      break;
    case FaultKind::kDropStreams:
      fault.count = std::uniform_int_distribution<int>(1, 4)(rng);
      break;
    case FaultKind::kStallConsumer:
      fault.hold = Millis(rng, 3000, 5000);
      break;
    case FaultKind::kProxyReset:
      break;
    case FaultKind::kProxyBlackhole:
      fault.hold = Millis(rng, 500, 2500);
      break;
    case FaultKind::kCount:
      break;
  }
  return fault;
}

}  // namespace

const char* FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKillMessage:
      return "kill_message";
    case FaultKind::kKillHistory:
      return "kill_history";
    case FaultKind::kKillPresence:
      return "kill_presence";
    case FaultKind::kKillAuth:
      return "kill_auth";
    case FaultKind::kMysqlRestart:
      return "mysql_restart";
    case FaultKind::kMysqlKill:
      return "mysql_kill";
    case FaultKind::kDropStreams:
      return "drop_streams";
    case FaultKind::kStallConsumer:
      return "stall_consumer";
    case FaultKind::kProxyReset:
      return "proxy_reset";
    case FaultKind::kProxyBlackhole:
      return "proxy_blackhole";
    case FaultKind::kCount:
      break;
  }
  return "?";
}

absl::StatusOr<std::vector<FaultKind>> ParseFaultKinds(const std::string& list) {
  std::vector<FaultKind> kinds;
  for (absl::string_view name : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    if (name == "all") {
      for (int i = 0; i < static_cast<int>(FaultKind::kCount); ++i) {
        kinds.push_back(static_cast<FaultKind>(i));
      }
      continue;
    }
    bool known = false;
    for (int i = 0; i < static_cast<int>(FaultKind::kCount); ++i) {
      if (name == FaultKindName(static_cast<FaultKind>(i))) {
        kinds.push_back(static_cast<FaultKind>(i));
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat("unknown fault ", name));
    }
  }
  std::sort(kinds.begin(), kinds.end());
  kinds.erase(std::unique(kinds.begin(), kinds.end()), kinds.end());
  return kinds;
}

std::vector<Fault> MakeSchedule(uint64_t seed, absl::Duration duration,
                                const std::vector<FaultKind>& enabled) {
  std::vector<Fault> schedule;
  if (enabled.empty()) return schedule;
  std::mt19937_64 rng(seed);
  // When each resource (bit) is free again.
  std::map<uint32_t, absl::Duration> busy_until;
  auto place = [&](FaultKind kind, absl::Duration earliest) {
    Fault fault = Draw(rng, kind);
    const uint32_t resources = Resources(kind);
    fault.at = earliest;
    for (const auto& [bit, until] : busy_until) {
      if ((resources & bit) != 0) fault.at = std::max(fault.at, until);
    }
    // Leave time after the fault for the thing to come back.
    const absl::Duration end = fault.at + fault.hold + absl::Seconds(1);
    if (end > duration) return false;
    for (uint32_t bit = 1; bit != 0 && bit <= resources; bit <<= 1) {
      if ((resources & bit) != 0) busy_until[bit] = end;
    }
    schedule.push_back(fault);
    return true;
  };
  // Every kind once, spread evenly in a seeded order.
  std::vector<FaultKind> order = enabled;
  std::shuffle(order.begin(), order.end(), rng);
  // Room at the end for the longest fault (a stall) and its recovery.
  const absl::Duration window =
      std::max(duration - absl::Seconds(7), duration / 2);
  const absl::Duration spacing = window / static_cast<int>(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    place(order[i], spacing * static_cast<int>(i) + Millis(rng, 0, 500));
  }
  // Then random extras, about one per two seconds.
  const int extras = static_cast<int>(absl::ToInt64Seconds(duration) / 2);
  for (int i = 0; i < extras; ++i) {
    const FaultKind kind = enabled[std::uniform_int_distribution<size_t>(
        0, enabled.size() - 1)(rng)];
    place(kind, Millis(rng, 0,
                       static_cast<int>(absl::ToInt64Milliseconds(duration))));
  }
  std::stable_sort(schedule.begin(), schedule.end(),
                   [](const Fault& a, const Fault& b) { return a.at < b.at; });
  return schedule;
}

std::string DescribeFault(const Fault& fault) {
  std::string text = absl::StrCat(
      "+", absl::FormatDuration(absl::Milliseconds(
               absl::ToInt64Milliseconds(fault.at))),
      " ", FaultKindName(fault.kind));
  if (fault.hold > absl::ZeroDuration()) {
    absl::StrAppend(&text, " for ", absl::FormatDuration(fault.hold));
  }
  if (fault.kind == FaultKind::kDropStreams) {
    absl::StrAppend(&text, " x", fault.count);
  }
  return text;
}

}  // namespace im::faults
