#include "tests/faults/queue_checker.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace im::faults {
namespace {

constexpr size_t kMaxProblems = 20;

using SendKey = std::tuple<uint64_t, uint64_t, std::string>;  // conv, sender, id

std::string Describe(const LogEntry& entry) {
  return absl::StrCat("conversation ", entry.conversation, " seq ", entry.seq,
                      " (sender ", entry.sender, ", id ", entry.client_msg_id,
                      ")");
}

class Checker {
 public:
  explicit Checker(CheckReport& report) : report_(report) {}

  void Problem(std::string text) {
    if (report_.problems.size() < kMaxProblems) {
      report_.problems.push_back(std::move(text));
    }
  }

  // The agreed log of each conversation: the longest member history, after
  // checking every member's against it.
  std::map<uint64_t, std::vector<LogEntry>> ReferenceLogs(
      const std::vector<MemberView>& views) {
    std::map<uint64_t, const MemberView*> longest;
    for (const MemberView& view : views) {
      const MemberView*& best = longest[view.conversation];
      if (best == nullptr || view.history.size() > best->history.size()) {
        best = &view;
      }
    }
    std::map<uint64_t, std::vector<LogEntry>> logs;
    for (const auto& [conversation, view] : longest) {
      logs[conversation] = view->history;
    }
    for (const MemberView& view : views) {
      if (view.history != logs[view.conversation]) {
        ++report_.history_divergences;
        Problem(absl::StrCat(view.name, " pages a history of conversation ",
                             view.conversation, " that differs from another "
                             "member's (", view.history.size(), " vs ",
                             logs[view.conversation].size(), " entries)"));
      }
    }
    return logs;
  }

  void CheckSeqs(const std::map<uint64_t, std::vector<LogEntry>>& logs) {
    for (const auto& [conversation, log] : logs) {
      for (size_t i = 0; i < log.size(); ++i) {
        if (log[i].seq != i + 1) {
          ++report_.seq_gaps;
          Problem(absl::StrCat("conversation ", conversation, " has seq ",
                               log[i].seq, " at position ", i + 1));
          break;
        }
      }
    }
  }

  void CheckSends(const std::vector<SendRecord>& sends,
                  const std::map<uint64_t, std::vector<LogEntry>>& logs) {
    std::map<SendKey, std::vector<const LogEntry*>> stored;
    for (const auto& [conversation, log] : logs) {
      for (const LogEntry& entry : log) {
        if (!entry.is_message) continue;
        stored[{entry.conversation, entry.sender, entry.client_msg_id}]
            .push_back(&entry);
      }
    }
    std::set<SendKey> sent;
    for (const SendRecord& send : sends) {
      const SendKey key{send.conversation, send.sender, send.client_msg_id};
      sent.insert(key);
      ++report_.sends;
      const auto found = stored.find(key);
      const size_t copies = found == stored.end() ? 0 : found->second.size();
      switch (send.outcome) {
        case SendOutcome::kAcked:
          ++report_.acked;
          if (copies == 0) {
            ++report_.lost;
            Problem(absl::StrCat("LOST: acked send ", send.client_msg_id,
                                 " of user ", send.sender, " to conversation ",
                                 send.conversation, " (seq ", send.acked_seq,
                                 ") is not in the log"));
          } else if (found->second.front()->seq != send.acked_seq) {
            ++report_.ack_seq_mismatches;
            Problem(absl::StrCat("acked send ", send.client_msg_id, " at seq ",
                                 send.acked_seq, " is stored as ",
                                 Describe(*found->second.front())));
          }
          break;
        case SendOutcome::kFailed:
          ++report_.failed;
          if (copies > 0) {
            ++report_.failed_but_stored;
            Problem(absl::StrCat("refused send ", send.client_msg_id,
                                 " is stored as ",
                                 Describe(*found->second.front())));
          }
          break;
        case SendOutcome::kUnknown:
          ++report_.unknown;
          if (copies > 0) ++report_.recovered;
          break;
      }
    }
    for (const auto& [key, entries] : stored) {
      if (entries.size() > 1) {
        ++report_.duplicated;
        Problem(absl::StrCat("DUPLICATE: ", Describe(*entries[0]), " stored ",
                             entries.size(), " times (also seq ",
                             entries[1]->seq, ")"));
      }
      if (sent.count(key) == 0) {
        ++report_.unexpected;
        Problem(absl::StrCat("UNEXPECTED: ", Describe(*entries[0]),
                             " was never sent"));
      }
    }
    CheckOrder(sends, stored);
  }

  void CheckOrder(const std::vector<SendRecord>& sends,
                  const std::map<SendKey, std::vector<const LogEntry*>>& stored) {
    // (sender, conversation) -> (order, seq, attempts) of its stored
    // ordered sends.
    std::map<std::pair<uint64_t, uint64_t>,
             std::vector<std::tuple<uint64_t, uint64_t, int>>>
        streams;
    for (const SendRecord& send : sends) {
      if (!send.ordered) continue;
      const auto found =
          stored.find({send.conversation, send.sender, send.client_msg_id});
      if (found == stored.end()) continue;
      streams[{send.sender, send.conversation}].emplace_back(
          send.order, found->second.front()->seq, send.attempts);
    }
    for (auto& [stream, sends_of] : streams) {
      std::sort(sends_of.begin(), sends_of.end());
      for (size_t i = 1; i < sends_of.size(); ++i) {
        const auto& [order, seq, attempts] = sends_of[i];
        const auto& [earlier_order, earlier_seq, earlier_attempts] =
            sends_of[i - 1];
        if (seq < earlier_seq) {
          ++report_.order_violations;
          Problem(absl::StrCat(
              "ORDER: user ", stream.first, "'s send #", order,
              " to conversation ", stream.second, " is stored at seq ", seq,
              " (written ", attempts, "x), before its earlier send #",
              earlier_order, " at seq ", earlier_seq, " (written ",
              earlier_attempts, "x)"));
        }
      }
    }
  }

  void CheckDeliveries(const std::vector<MemberView>& views,
                       const std::map<uint64_t, std::vector<LogEntry>>& logs) {
    for (const MemberView& view : views) {
      if (!view.has_received) continue;
      const std::vector<LogEntry>& log = logs.at(view.conversation);
      size_t at = 0;
      while (at < view.received.size() && at < log.size() &&
             view.received[at] == log[at]) {
        ++at;
      }
      const uint64_t reached = at == 0 ? 0 : log[at - 1].seq;
      if (at == view.received.size() && reached >= view.required_through) {
        continue;
      }
      ++report_.delivery_mismatches;
      if (at < view.received.size()) {
        Problem(absl::StrCat(view.name, " received ", Describe(view.received[at]),
                             " at position ", at + 1, " of conversation ",
                             view.conversation, "; the log has ",
                             at < log.size() ? Describe(log[at])
                                             : std::string("nothing"),
                             " there"));
      } else {
        Problem(absl::StrCat(view.name, " received conversation ",
                             view.conversation, " only through seq ", reached,
                             ", though it was caught up through seq ",
                             view.required_through));
      }
    }
  }

 private:
  CheckReport& report_;
};

}  // namespace

const char* SendOutcomeName(SendOutcome outcome) {
  switch (outcome) {
    case SendOutcome::kAcked:
      return "acked";
    case SendOutcome::kFailed:
      return "failed";
    case SendOutcome::kUnknown:
      return "unknown";
  }
  return "?";
}

CheckReport CheckQueue(const std::vector<SendRecord>& sends,
                       const std::vector<MemberView>& views) {
  CheckReport report;
  Checker checker(report);
  const std::map<uint64_t, std::vector<LogEntry>> logs =
      checker.ReferenceLogs(views);
  checker.CheckSeqs(logs);
  for (const SendRecord& send : sends) {
    if (logs.count(send.conversation) == 0) {
      checker.Problem(absl::StrCat("no member view of conversation ",
                                   send.conversation));
      ++report.history_divergences;
      break;
    }
  }
  checker.CheckSends(sends, logs);
  checker.CheckDeliveries(views, logs);
  return report;
}

}  // namespace im::faults
