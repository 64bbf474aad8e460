#include "tools/gen_history/history_generator.h"

#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"

namespace im::tools {
namespace {

using ::im::message::v1::CONVERSATION_KIND_DIRECT;
using ::im::message::v1::CONVERSATION_KIND_GROUP;

// One conversation to create and fill.
struct PlannedConversation {
  message::v1::ConversationKind kind = CONVERSATION_KIND_GROUP;
  // Indexes into the user id list; the first one creates it.
  std::vector<uint32_t> members;
  uint64_t messages = 0;
  absl::Time created_at;
  absl::Time last_activity_at;
  uint64_t id = 0;  // once created
  uint64_t last_seq = 0;
};

// Runs `work(i)` for i in [0, count) on `threads` threads, largest-first
// order being the caller's job. Stops handing out work after the first
// error, which it returns.
absl::Status ParallelFor(uint32_t threads, size_t count,
                         const std::function<absl::Status(size_t)>& work) {
  std::atomic<size_t> next{0};
  absl::Mutex mu;
  absl::Status first_error;
  std::atomic<bool> failed{false};
  std::vector<std::thread> pool;
  for (uint32_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      while (!failed.load()) {
        const size_t i = next.fetch_add(1);
        if (i >= count) return;
        absl::Status status = work(i);
        if (!status.ok()) {
          absl::MutexLock lock(&mu);
          if (first_error.ok()) first_error = std::move(status);
          failed.store(true);
        }
      }
    });
  }
  for (std::thread& thread : pool) thread.join();
  absl::MutexLock lock(&mu);
  return first_error;
}

// Serializes progress reports and rate-limits them to one per interval.
class Progress {
 public:
  explicit Progress(std::function<void(const std::string&)> sink)
      : sink_(std::move(sink)) {}

  void Report(const std::string& line, bool force = false) {
    if (!sink_) return;
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (!force && now - last_ < absl::Seconds(10)) return;
    last_ = now;
    sink_(line);
  }

 private:
  std::function<void(const std::string&)> sink_;
  absl::Mutex mu_;
  absl::Time last_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

absl::Status Validate(const HistoryGeneratorOptions& o) {
  if (o.users < o.max_group_members + 1 || o.max_group_members < 3) {
    return absl::InvalidArgumentError(
        "need max_group_members >= 3 and users > max_group_members");
  }
  if (o.conversations == 0 || o.heavy_user_conversations > o.conversations ||
      o.big_conversations > o.heavy_user_conversations) {
    return absl::InvalidArgumentError(
        "need big_conversations <= heavy_user_conversations <= conversations");
  }
  if (o.heavy_user_conversations >= o.users) {
    return absl::InvalidArgumentError(
        "the heavy user's direct conversations need more users");
  }
  if (o.big_share < 0 || o.big_share >= 1 ||
      (o.big_conversations == 0 && o.big_share > 0)) {
    return absl::InvalidArgumentError("big_share must be in [0, 1)");
  }
  if (o.batch_size == 0 || o.threads == 0 || o.text_bytes == 0 ||
      o.direct_every == 0 || o.span <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "batch_size, threads, text_bytes, direct_every and span must be "
        "positive");
  }
  return absl::OkStatus();
}

// Message counts: the big conversations split big_share evenly, the rest
// get uniformly random weights; the counts add up to `messages` exactly.
std::vector<uint64_t> PlanMessageCounts(const HistoryGeneratorOptions& o,
                                        std::mt19937_64& rng) {
  std::vector<uint64_t> counts(o.conversations, 0);
  uint64_t big_total = 0;
  if (o.big_conversations > 0) {
    big_total = static_cast<uint64_t>(static_cast<double>(o.messages) *
                                      o.big_share);
    for (uint32_t i = 0; i < o.big_conversations; ++i) {
      counts[i] = big_total / o.big_conversations;
    }
    big_total = counts[0] * o.big_conversations;
  }
  const uint32_t rest = o.conversations - o.big_conversations;
  uint64_t left = o.messages - big_total;
  if (rest == 0) {
    counts[0] += left;
    return counts;
  }
  std::uniform_real_distribution<double> weight(0.5, 1.5);
  std::vector<double> weights(rest);
  double sum = 0;
  for (double& w : weights) sum += (w = weight(rng));
  uint64_t assigned = 0;
  for (uint32_t i = 0; i < rest; ++i) {
    counts[o.big_conversations + i] = static_cast<uint64_t>(
        static_cast<double>(left) * weights[i] / sum);
    assigned += counts[o.big_conversations + i];
  }
  for (uint64_t r = 0; assigned < left; ++r, ++assigned) {
    ++counts[o.big_conversations + r % rest];
  }
  return counts;
}

std::vector<PlannedConversation> PlanConversations(
    const HistoryGeneratorOptions& o, std::mt19937_64& rng) {
  const std::vector<uint64_t> counts = PlanMessageCounts(o, rng);
  std::vector<PlannedConversation> plan(o.conversations);
  std::uniform_int_distribution<uint32_t> any_user(1, o.users - 1);
  std::uniform_int_distribution<uint32_t> group_size(3, o.max_group_members);
  std::uniform_real_distribution<double> when(0.05, 1.0);
  std::set<std::pair<uint32_t, uint32_t>> direct_pairs;
  uint32_t heavy_directs = 0;
  for (uint32_t c = 0; c < o.conversations; ++c) {
    PlannedConversation& p = plan[c];
    p.messages = counts[c];
    const bool heavy = c < o.heavy_user_conversations;
    const bool big = c < o.big_conversations;
    p.kind = !big && c % o.direct_every == o.direct_every - 1
                 ? CONVERSATION_KIND_DIRECT
                 : CONVERSATION_KIND_GROUP;
    if (p.kind == CONVERSATION_KIND_DIRECT) {
      std::pair<uint32_t, uint32_t> pair;
      if (heavy) {
        pair = {0, ++heavy_directs};  // user 0 is the heavy user
      } else {
        do {
          pair = {any_user(rng), any_user(rng)};
          if (pair.first > pair.second) std::swap(pair.first, pair.second);
        } while (pair.first == pair.second || direct_pairs.count(pair) > 0);
      }
      direct_pairs.insert(pair);
      p.members = {pair.first, pair.second};
    } else {
      std::set<uint32_t> members;
      if (heavy) members.insert(0);
      const uint32_t size = group_size(rng);
      while (members.size() < size) members.insert(any_user(rng));
      p.members.assign(members.begin(), members.end());
      std::shuffle(p.members.begin(), p.members.end(), rng);
    }
    const absl::Duration end = o.span * when(rng);
    p.created_at = o.start + end * 0.01;
    p.last_activity_at = o.start + end;
  }
  return plan;
}

// Lower-case ASCII to cut message texts from.
std::string TextPool(std::mt19937_64& rng) {
  std::string pool(8192, ' ');
  std::uniform_int_distribution<int> letter(0, 26);
  for (char& c : pool) {
    const int l = letter(rng);
    c = l == 26 ? ' ' : static_cast<char>('a' + l);
  }
  return pool;
}

}  // namespace

absl::StatusOr<HistoryGeneratorResult> GenerateHistory(
    const HistoryGeneratorOptions& options, storage::Database* db) {
  if (absl::Status valid = Validate(options); !valid.ok()) return valid;
  if (options.text_bytes > 4096) {
    return absl::InvalidArgumentError("text_bytes must be at most 4096");
  }
  absl::StatusOr<storage::UserRecord> existing =
      db->users()->GetUserByUsername(kHeavyUsername);
  if (existing.ok()) {
    return absl::FailedPreconditionError(
        "the database already holds generated history (user bench-heavy)");
  }
  if (!absl::IsNotFound(existing.status())) return existing.status();

  Progress progress(options.progress);
  HistoryGeneratorResult result;
  std::mt19937_64 rng(options.seed);
  std::vector<PlannedConversation> plan = PlanConversations(options, rng);
  const std::string text_pool = TextPool(rng);

  // Users: index 0 is the heavy user.
  absl::Time phase = absl::Now();
  std::vector<uint64_t> user_ids(options.users, 0);
  std::atomic<uint64_t> users_done{0};
  absl::Status status = ParallelFor(options.threads, options.users, [&](size_t i) {
    storage::NewUser user;
    user.username = i == 0 ? std::string(kHeavyUsername)
                           : absl::StrCat("bench-u", i);
    user.username_norm = user.username;
    user.display_name = user.username;
    user.created_at = options.start;
    absl::StatusOr<storage::UserRecord> created = db->users()->CreateUser(user);
    if (!created.ok()) return created.status();
    user_ids[i] = created->id;
    const uint64_t done = ++users_done;
    progress.Report(absl::StrCat("users: ", done, "/", options.users));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  result.users = options.users;
  result.heavy_user_id = user_ids[0];
  result.users_time = absl::Now() - phase;

  // Conversations with their initial members.
  phase = absl::Now();
  std::atomic<uint64_t> conversations_done{0};
  std::atomic<uint64_t> memberships{0};
  status = ParallelFor(options.threads, plan.size(), [&](size_t c) {
    PlannedConversation& p = plan[c];
    const std::string client_msg_id = absl::StrCat("gen-create-", c);
    if (p.kind == CONVERSATION_KIND_DIRECT) {
      absl::StatusOr<storage::DirectResult> direct =
          db->log()->GetOrCreateDirect(user_ids[p.members[0]],
                                       user_ids[p.members[1]], client_msg_id,
                                       p.created_at);
      if (!direct.ok()) return direct.status();
      if (!direct->created) {
        return absl::InternalError("planned direct pair already existed");
      }
      p.id = direct->change.conversation.id;
      p.last_seq = direct->change.conversation.last_seq;
    } else {
      std::vector<uint64_t> members;
      for (size_t m = 1; m < p.members.size(); ++m) {
        members.push_back(user_ids[p.members[m]]);
      }
      absl::StatusOr<storage::MemberChange> group = db->log()->CreateGroup(
          user_ids[p.members[0]], absl::StrCat("group ", c), members, 0,
          client_msg_id, p.created_at);
      if (!group.ok()) return group.status();
      p.id = group->conversation.id;
      p.last_seq = group->conversation.last_seq;
    }
    memberships += p.members.size();
    const uint64_t done = ++conversations_done;
    progress.Report(
        absl::StrCat("conversations: ", done, "/", options.conversations));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  result.conversations = plan.size();
  result.memberships = memberships.load();
  result.conversations_time = absl::Now() - phase;

  // Messages, biggest conversations first so the threads finish together.
  phase = absl::Now();
  std::vector<size_t> order(plan.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return plan[a].messages > plan[b].messages;
  });
  std::atomic<uint64_t> appended{0};
  const uint64_t total = options.messages;
  status = ParallelFor(options.threads, order.size(), [&](size_t k) {
    PlannedConversation& p = plan[order[k]];
    std::mt19937_64 local(options.seed ^ ((order[k] + 1) * 0x9E3779B97F4A7C15ull));
    std::uniform_int_distribution<size_t> sender(0, p.members.size() - 1);
    std::uniform_int_distribution<size_t> offset(
        0, text_pool.size() - options.text_bytes);
    const absl::Duration step =
        (p.last_activity_at - p.created_at) /
        static_cast<double>(std::max<uint64_t>(p.messages, 1));
    std::vector<storage::AppendRequest> batch;
    for (uint64_t m = 0; m < p.messages;) {
      batch.clear();
      const uint64_t n = std::min<uint64_t>(options.batch_size, p.messages - m);
      for (uint64_t j = 0; j < n; ++j) {
        storage::AppendRequest request;
        request.conversation_id = p.id;
        request.sender_id = user_ids[p.members[sender(local)]];
        request.client_msg_id = absl::StrCat("gen-", m + j);
        request.message.set_text(
            text_pool.substr(offset(local), options.text_bytes));
        batch.push_back(std::move(request));
      }
      m += n;
      const absl::Time now =
          m == p.messages ? p.last_activity_at
                          : p.created_at + step * static_cast<double>(m);
      absl::StatusOr<std::vector<storage::AppendOutcome>> outcomes =
          db->log()->AppendMessages(batch, now);
      if (!outcomes.ok()) return outcomes.status();
      for (const storage::AppendOutcome& outcome : *outcomes) {
        if (!outcome.status.ok()) return outcome.status;
        if (outcome.duplicate) {
          return absl::InternalError("generated client_msg_id was a duplicate");
        }
        p.last_seq = std::max(p.last_seq, outcome.entry.seq());
      }
      const uint64_t done = appended += n;
      progress.Report(absl::StrFormat(
          "messages: %d/%d (%.0f/s)", done, total,
          static_cast<double>(done) / absl::ToDoubleSeconds(absl::Now() - phase)));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  result.messages = appended.load();
  result.messages_time = absl::Now() - phase;

  // The heavy user has read most of their conversations, not all.
  std::uniform_int_distribution<uint64_t> behind(0, 30);
  for (uint32_t c = 0; c < options.heavy_user_conversations; ++c) {
    const PlannedConversation& p = plan[c];
    const uint64_t lag = behind(rng);
    if (lag >= p.last_seq) continue;
    absl::StatusOr<uint64_t> marked = db->read_markers()->MarkRead(
        result.heavy_user_id, p.id, p.last_seq - lag, p.last_activity_at);
    if (!marked.ok()) return marked.status();
  }

  for (const PlannedConversation& p : plan) {
    if (p.last_seq > result.deepest_last_seq) {
      result.deepest_last_seq = p.last_seq;
      result.deepest_conversation_id = p.id;
    }
  }
  progress.Report(
      absl::StrFormat("done: %d messages in %s", result.messages,
                      absl::FormatDuration(result.messages_time)),
      /*force=*/true);
  return result;
}

}  // namespace im::tools
