#include "tools/history_bench/history_bench.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <random>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "im/history/v1/history.grpc.pb.h"
#include "im/message/v1/message.grpc.pb.h"
#include "services/common/access_token.h"
#include "services/common/authenticator.h"
#include "services/common/grpc_server.h"
#include "services/common/status.h"
#include "services/history/conversation_history.h"
#include "services/history/history_service.h"
#include "tools/gen_history/history_generator.h"

namespace im::tools {
namespace {

namespace hv1 = ::im::history::v1;

// The read RPCs as the benchmark calls them, over gRPC or not.
struct HistoryCalls {
  std::function<absl::StatusOr<hv1::GetHistoryResponse>(
      const hv1::GetHistoryRequest&)>
      get_history;
  std::function<absl::StatusOr<hv1::ListConversationsResponse>(
      const hv1::ListConversationsRequest&)>
      list_conversations;
  std::function<absl::StatusOr<hv1::SyncResponse>(const hv1::SyncRequest&)>
      sync;
};

// Everything a gRPC run needs, kept alive for its duration.
struct GrpcHarness {
  std::unique_ptr<TokenCodec> codec;
  std::unique_ptr<Authenticator> authenticator;
  std::unique_ptr<history::HistoryServiceImpl> service;
  std::unique_ptr<GrpcServer> server;
  std::unique_ptr<hv1::HistoryService::Stub> stub;
  std::string token;
};

template <typename Response, typename Call>
absl::StatusOr<Response> CallWithToken(const std::string& token, Call call) {
  grpc::ClientContext context;
  AttachBearerToken(&context, token);
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  Response response;
  const grpc::Status status = call(&context, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<std::unique_ptr<GrpcHarness>> StartGrpc(
    storage::Database* db, uint64_t user_id) {
  auto harness = std::make_unique<GrpcHarness>();
  absl::StatusOr<std::unique_ptr<TokenCodec>> codec =
      TokenCodec::Create({TokenKey{1, std::string(32, 'b')}});
  if (!codec.ok()) return codec.status();
  harness->codec = *std::move(codec);
  harness->authenticator =
      std::make_unique<Authenticator>(harness->codec.get(), nullptr);
  // MarkRead is not measured: its peer never answers.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> nowhere =
      MakeChannel("127.0.0.1:1", TlsOptions{});
  if (!nowhere.ok()) return nowhere.status();
  absl::StatusOr<std::unique_ptr<history::HistoryServiceImpl>> service =
      history::HistoryServiceImpl::Create(
          history::HistoryServiceOptions{}, db->reader(),
          harness->authenticator.get(),
          message::v1::MessageService::NewStub(*std::move(nowhere)));
  if (!service.ok()) return service.status();
  harness->service = *std::move(service);
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start(ServerOptions{}, {harness->service.get()});
  if (!server.ok()) return server.status();
  harness->server = *std::move(server);
  harness->stub = hv1::HistoryService::NewStub(grpc::CreateChannel(
      harness->server->address(), grpc::InsecureChannelCredentials()));
  Caller caller;
  caller.user_id = user_id;
  caller.session_id = 1;
  caller.role = auth::v1::ROLE_USER;
  caller.expires_at = absl::Now() + absl::Hours(12);
  harness->token = harness->codec->Mint(caller, absl::Now());
  return harness;
}

HistoryCalls GrpcCalls(GrpcHarness* h) {
  HistoryCalls calls;
  calls.get_history = [h](const hv1::GetHistoryRequest& request) {
    return CallWithToken<hv1::GetHistoryResponse>(
        h->token, [&](grpc::ClientContext* c, hv1::GetHistoryResponse* r) {
          return h->stub->GetHistory(c, request, r);
        });
  };
  calls.list_conversations = [h](const hv1::ListConversationsRequest& request) {
    return CallWithToken<hv1::ListConversationsResponse>(
        h->token,
        [&](grpc::ClientContext* c, hv1::ListConversationsResponse* r) {
          return h->stub->ListConversations(c, request, r);
        });
  };
  calls.sync = [h](const hv1::SyncRequest& request) {
    return CallWithToken<hv1::SyncResponse>(
        h->token, [&](grpc::ClientContext* c, hv1::SyncResponse* r) {
          return h->stub->Sync(c, request, r);
        });
  };
  return calls;
}

HistoryCalls LibraryCalls(const history::ConversationHistory* history,
                          uint64_t user_id) {
  HistoryCalls calls;
  calls.get_history = [=](const hv1::GetHistoryRequest& request) {
    return history->GetHistory(user_id, request);
  };
  calls.list_conversations = [=](const hv1::ListConversationsRequest& r) {
    return history->ListConversations(user_id, r);
  };
  calls.sync = [=](const hv1::SyncRequest& request) {
    return history->Sync(user_id, request);
  };
  return calls;
}

LatencySummary Summarize(std::string scenario,
                         std::vector<absl::Duration> samples) {
  LatencySummary s;
  s.scenario = std::move(scenario);
  s.calls = static_cast<int>(samples.size());
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    const size_t i = std::min(samples.size() - 1,
                              static_cast<size_t>(q * samples.size()));
    return samples[i];
  };
  s.p50 = at(0.50);
  s.p90 = at(0.90);
  s.p99 = at(0.99);
  s.max = samples.back();
  absl::Duration total;
  for (absl::Duration d : samples) total += d;
  s.mean = total / static_cast<double>(samples.size());
  return s;
}

struct Scenario {
  std::string name;
  // The i-th call; an error ends the run.
  std::function<absl::Status(int)> call;
};

// Runs every scenario once per round, warmup + iterations rounds, and times
// the calls of the last `iterations` rounds. Interleaving spreads whatever
// else the machine does over all scenarios alike.
absl::StatusOr<std::vector<LatencySummary>> MeasureInterleaved(
    const std::vector<Scenario>& scenarios,
    const HistoryBenchOptions& options) {
  std::vector<std::vector<absl::Duration>> samples(scenarios.size());
  for (auto& s : samples) s.reserve(options.iterations);
  for (int i = 0; i < options.warmup + options.iterations; ++i) {
    for (size_t k = 0; k < scenarios.size(); ++k) {
      const absl::Time start = absl::Now();
      absl::Status status = scenarios[k].call(i);
      const absl::Duration took = absl::Now() - start;
      if (!status.ok()) {
        return absl::Status(status.code(), absl::StrCat(scenarios[k].name, ": ",
                                                        status.message()));
      }
      if (i >= options.warmup) samples[k].push_back(took);
    }
  }
  std::vector<LatencySummary> summaries;
  for (size_t k = 0; k < scenarios.size(); ++k) {
    summaries.push_back(Summarize(scenarios[k].name, std::move(samples[k])));
  }
  return summaries;
}

absl::Status Expect(bool ok, const std::string& what) {
  return ok ? absl::OkStatus() : absl::InternalError(what);
}

}  // namespace

absl::StatusOr<std::vector<LatencySummary>> RunHistoryBench(
    const HistoryBenchOptions& options, storage::Database* db) {
  if (options.iterations <= 0 || options.warmup < 0 ||
      options.deep_conversations <= 0 || options.page_limit == 0) {
    return absl::InvalidArgumentError(
        "iterations, deep_conversations and page_limit must be positive");
  }
  absl::StatusOr<storage::UserRecord> heavy =
      db->users()->GetUserByUsername(kHeavyUsername);
  if (absl::IsNotFound(heavy.status())) {
    return absl::FailedPreconditionError(
        "no generated history here: run gen_history first");
  }
  if (!heavy.ok()) return heavy.status();

  // The heavy user's conversations, deepest first.
  std::vector<storage::MembershipView> memberships;
  for (uint64_t after = 0;;) {
    absl::StatusOr<std::vector<storage::MembershipView>> page =
        db->reader()->ListMemberships(heavy->id, after, 1000, false);
    if (!page.ok()) return page.status();
    if (page->empty()) break;
    after = page->back().conversation.id;
    for (auto& view : *page) memberships.push_back(std::move(view));
  }
  std::sort(memberships.begin(), memberships.end(),
            [](const auto& a, const auto& b) {
              return a.conversation.last_seq > b.conversation.last_seq;
            });
  if (memberships.empty()) {
    return absl::FailedPreconditionError("the heavy user has no conversations");
  }
  const size_t deep_count = std::min<size_t>(options.deep_conversations,
                                             memberships.size());
  std::vector<std::pair<uint64_t, uint64_t>> deep;  // id, last_seq
  for (size_t i = 0; i < deep_count; ++i) {
    deep.emplace_back(memberships[i].conversation.id,
                      memberships[i].conversation.last_seq);
  }
  const uint32_t limit = options.page_limit;
  if (deep.back().second <= 2 * limit) {
    return absl::FailedPreconditionError(
        "the deepest conversations are too short to page");
  }

  absl::StatusOr<std::unique_ptr<history::ConversationHistory>> library =
      history::ConversationHistory::Create({}, db->reader());
  if (!library.ok()) return library.status();
  std::unique_ptr<GrpcHarness> harness;
  HistoryCalls calls;
  if (options.via_grpc) {
    absl::StatusOr<std::unique_ptr<GrpcHarness>> started =
        StartGrpc(db, heavy->id);
    if (!started.ok()) return started.status();
    harness = *std::move(started);
    calls = GrpcCalls(harness.get());
  } else {
    calls = LibraryCalls(library->get(), heavy->id);
  }

  std::vector<Scenario> scenarios;
  // The floor: one primary-key lookup, one round trip to the database,
  // no RPC layer, on this machine at this moment.
  scenarios.push_back(Scenario{
      "baseline: one store round trip (GetConversation by id)",
      [&](int i) -> absl::Status {
        return db->reader()->GetConversation(deep[i % deep.size()].first)
            .status();
      }});
  const std::string pages_of = absl::StrFormat(
      "%d entries, %d conversations of %d-%d entries", limit, deep.size(),
      deep.back().second, deep.front().second);

  scenarios.push_back(Scenario{
      absl::StrCat("GetHistory newest page (", pages_of, ")"),
      [&](int i) -> absl::Status {
        const auto& [id, last_seq] = deep[i % deep.size()];
        hv1::GetHistoryRequest request;
        request.set_conversation_id(id);
        request.set_limit(limit);
        absl::StatusOr<hv1::GetHistoryResponse> page =
            calls.get_history(request);
        if (!page.ok()) return page.status();
        return Expect(page->entries_size() == static_cast<int>(limit) &&
                          page->entries(limit - 1).seq() == last_seq &&
                          page->has_more(),
                      "newest page is not the newest entries");
      }});

  scenarios.push_back(Scenario{
      absl::StrCat("GetHistory deepest page (seqs 1-", limit, ")"),
      [&](int i) -> absl::Status {
        const auto& [id, last_seq] = deep[i % deep.size()];
        hv1::GetHistoryRequest request;
        request.set_conversation_id(id);
        request.set_direction(hv1::DIRECTION_BEFORE);
        request.set_anchor_seq(limit + 1);
        request.set_limit(limit);
        absl::StatusOr<hv1::GetHistoryResponse> page =
            calls.get_history(request);
        if (!page.ok()) return page.status();
        return Expect(page->entries_size() == static_cast<int>(limit) &&
                          page->entries(0).seq() == 1 && !page->has_more(),
                      "deepest page is not seqs 1..limit");
      }});

  std::mt19937_64 rng(options.seed);
  scenarios.push_back(Scenario{
      "GetHistory page at a random depth",
      [&](int i) -> absl::Status {
        const auto& [id, last_seq] = deep[i % deep.size()];
        std::uniform_int_distribution<uint64_t> anchor(limit + 1, last_seq);
        const uint64_t at = anchor(rng);
        hv1::GetHistoryRequest request;
        request.set_conversation_id(id);
        request.set_anchor_seq(at);
        request.set_limit(limit);
        absl::StatusOr<hv1::GetHistoryResponse> page =
            calls.get_history(request);
        if (!page.ok()) return page.status();
        return Expect(page->entries_size() == static_cast<int>(limit) &&
                          page->entries(limit - 1).seq() == at - 1,
                      "random page is not right before its anchor");
      }});

  const std::string list_of =
      absl::StrFormat("user in %d conversations", memberships.size());
  scenarios.push_back(Scenario{
      absl::StrCat("ListConversations first page (", list_of, ")"),
      [&](int) -> absl::Status {
        hv1::ListConversationsRequest request;
        request.set_limit(limit);
        absl::StatusOr<hv1::ListConversationsResponse> page =
            calls.list_conversations(request);
        if (!page.ok()) return page.status();
        return Expect(page->conversations_size() ==
                          static_cast<int>(std::min<size_t>(
                              limit, memberships.size())),
                      "short first page");
      }});

  // Every page in turn, over and over; each page call timed alone.
  std::string token;
  size_t listed = 0;
  scenarios.push_back(Scenario{
      absl::StrCat("ListConversations any page (", list_of, ")"),
      [&](int) -> absl::Status {
        hv1::ListConversationsRequest request;
        request.set_limit(limit);
        request.set_page_token(token);
        absl::StatusOr<hv1::ListConversationsResponse> page =
            calls.list_conversations(request);
        if (!page.ok()) return page.status();
        listed += page->conversations_size();
        token = page->next_page_token();
        if (token.empty()) {
          if (listed != memberships.size()) {
            return absl::InternalError(absl::StrCat(
                "a full walk listed ", listed, " of ", memberships.size()));
          }
          listed = 0;
        }
        return absl::OkStatus();
      }});

  hv1::SyncRequest up_to_date;
  for (const auto& view : memberships) {
    (*up_to_date.mutable_cursors())[view.conversation.id] =
        view.conversation.last_seq;
  }
  const Scenario sync_scenario{
      absl::StrCat("Sync, ", memberships.size(), " cursors, nothing new"),
      [&](int) -> absl::Status {
        absl::StatusOr<hv1::SyncResponse> page = calls.sync(up_to_date);
        if (!page.ok()) return page.status();
        return Expect(page->changes_size() == 0, "sync found changes");
      }};

  absl::StatusOr<std::vector<LatencySummary>> results =
      MeasureInterleaved(scenarios, options);
  // Sync alone: its ~1,000-row scans would otherwise tax whichever page
  // call follows them on a busy machine (the scheduler charges the
  // database's threads for the burst).
  if (results.ok()) {
    absl::StatusOr<std::vector<LatencySummary>> sync =
        MeasureInterleaved({sync_scenario}, options);
    if (!sync.ok()) {
      results = sync.status();
    } else {
      results->push_back(sync->front());
    }
  }
  if (harness != nullptr) harness->server->Shutdown(absl::ZeroDuration());
  return results;
}

std::string FormatSummaries(const std::vector<LatencySummary>& summaries) {
  std::string out = absl::StrFormat("%-75s %6s %8s %8s %8s %8s %8s\n",
                                    "scenario", "calls", "p50 ms", "p90 ms",
                                    "p99 ms", "max ms", "mean ms");
  for (const LatencySummary& s : summaries) {
    absl::StrAppendFormat(&out, "%-75s %6d %8.3f %8.3f %8.3f %8.3f %8.3f\n",
                          s.scenario, s.calls,
                          absl::ToDoubleMilliseconds(s.p50),
                          absl::ToDoubleMilliseconds(s.p90),
                          absl::ToDoubleMilliseconds(s.p99),
                          absl::ToDoubleMilliseconds(s.max),
                          absl::ToDoubleMilliseconds(s.mean));
  }
  return out;
}

}  // namespace im::tools
