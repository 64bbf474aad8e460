#ifndef IM_TOOLS_HISTORY_BENCH_HISTORY_BENCH_H_
#define IM_TOOLS_HISTORY_BENCH_HISTORY_BENCH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/database.h"

// Latency of the history read path on a generated log (tools/gen_history):
// GetHistory at the newest and the deepest page of the biggest
// conversations, at random depths, ListConversations pages of the user in
// 1,000 conversations, and Sync of all their cursors. Calls go through a
// real HistoryServiceImpl, either over gRPC on loopback or straight into
// the library.

namespace im::tools {

struct HistoryBenchOptions {
  // Timed calls per scenario (after `warmup` untimed ones).
  int iterations = 2000;
  int warmup = 100;
  // Through gRPC on loopback (true) or the library alone.
  bool via_grpc = true;
  // Conversations of the heavy user with the most entries to page.
  int deep_conversations = 10;
  uint32_t page_limit = 50;
  uint64_t seed = 1;
};

struct LatencySummary {
  std::string scenario;
  int calls = 0;
  absl::Duration p50, p90, p99, max, mean;
};

// FAILED_PRECONDITION when the database holds no generated history.
absl::StatusOr<std::vector<LatencySummary>> RunHistoryBench(
    const HistoryBenchOptions& options, storage::Database* db);

// A fixed-width table of the summaries, in milliseconds.
std::string FormatSummaries(const std::vector<LatencySummary>& summaries);

}  // namespace im::tools

#endif  // IM_TOOLS_HISTORY_BENCH_HISTORY_BENCH_H_
