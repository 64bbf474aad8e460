#include "tools/history_bench/history_bench.h"

#include "gtest/gtest.h"
#include "storage/fake/fake_database.h"
#include "tools/gen_history/history_generator.h"

namespace im::tools {
namespace {

// The benchmark's own checks (newest page is the newest entries, the
// deepest page is seqs 1..limit, a full list walk sees every conversation)
// pass on a small generated log, through gRPC and the library. No timing
// is asserted.
TEST(HistoryBenchTest, RunsEveryScenarioOnAGeneratedLog) {
  storage::FakeDatabase db;
  HistoryGeneratorOptions generate;
  generate.users = 60;
  generate.conversations = 40;
  generate.messages = 4000;
  generate.heavy_user_conversations = 30;
  generate.big_conversations = 3;
  generate.batch_size = 100;
  generate.threads = 2;
  ASSERT_TRUE(GenerateHistory(generate, &db).ok());

  for (bool via_grpc : {true, false}) {
    SCOPED_TRACE(via_grpc);
    HistoryBenchOptions options;
    options.iterations = 7;
    options.warmup = 1;
    options.deep_conversations = 3;
    options.page_limit = 10;
    options.via_grpc = via_grpc;
    absl::StatusOr<std::vector<LatencySummary>> results =
        RunHistoryBench(options, &db);
    ASSERT_TRUE(results.ok()) << results.status();
    ASSERT_EQ(results->size(), 7u);
    for (const LatencySummary& s : *results) EXPECT_EQ(s.calls, 7);
    EXPECT_NE(FormatSummaries(*results).find("GetHistory deepest page"),
              std::string::npos);
  }
}

TEST(HistoryBenchTest, NeedsGeneratedHistory) {
  storage::FakeDatabase db;
  EXPECT_EQ(RunHistoryBench(HistoryBenchOptions{}, &db).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace im::tools
