#ifndef IM_TESTS_FAULTS_QUEUE_CHECKER_H_
#define IM_TESTS_FAULTS_QUEUE_CHECKER_H_

#include <cstdint>
#include <string>
#include <vector>

// The verdict of a fault run, in the manner of Jepsen's queue checkers:
// what clients were told about each send, against what every member finally
// reads back and what their live sessions delivered.

namespace im::faults {

enum class SendOutcome {
  // The server acknowledged it (with a seq): it must be stored exactly once.
  kAcked,
  // Definitely refused (a non-retryable code): it must not be stored.
  kFailed,
  // Nobody knows (the connection broke, the deadline passed, the run ended
  // while it was pending): stored at most once.
  kUnknown,
};

const char* SendOutcomeName(SendOutcome outcome);

struct SendRecord {
  uint64_t sender = 0;
  uint64_t conversation = 0;
  std::string client_msg_id;
  // Submission order among this sender's sends; the seqs of a sender's sends
  // to one conversation must follow it when `ordered`.
  uint64_t order = 0;
  bool ordered = true;
  SendOutcome outcome = SendOutcome::kUnknown;
  // The acknowledged seq (kAcked only).
  uint64_t acked_seq = 0;
  // Times the client wrote it (stream sends; 0 when unknown), for reports.
  int attempts = 0;
};

// One entry of a conversation's log as a client saw it.
struct LogEntry {
  uint64_t conversation = 0;
  uint64_t seq = 0;
  uint64_t sender = 0;
  std::string client_msg_id;
  // False for membership events (written by the server, never sent).
  bool is_message = true;

  bool operator==(const LogEntry& other) const {
    return conversation == other.conversation && seq == other.seq &&
           sender == other.sender && client_msg_id == other.client_msg_id &&
           is_message == other.is_message;
  }
};

// What one member (one device) holds of one conversation at the end.
struct MemberView {
  // e.g. "user 3 device phone"; for reports.
  std::string name;
  uint64_t conversation = 0;
  // The whole log paged from history, ascending.
  std::vector<LogEntry> history;
  // What the device's live session delivered, in delivery order: must be
  // the log's first entries, each once, in order, reaching at least
  // `required_through` (the log's end when the session was caught up; what
  // was committed after it stopped may be missing).
  std::vector<LogEntry> received;
  uint64_t required_through = 0;
  // False when no live session belongs to this view (history only).
  bool has_received = true;
};

struct CheckReport {
  uint64_t sends = 0, acked = 0, failed = 0, unknown = 0;
  // Acked but absent from the log.
  uint64_t lost = 0;
  // (sender, conversation, client_msg_id) stored more than once.
  uint64_t duplicated = 0;
  // In the log but never sent by anyone.
  uint64_t unexpected = 0;
  // Definitely refused, yet stored.
  uint64_t failed_but_stored = 0;
  // Unknown outcome, and stored (once).
  uint64_t recovered = 0;
  // Acked with another seq than the one it is stored at.
  uint64_t ack_seq_mismatches = 0;
  // Seqs missing or repeated in a conversation's log.
  uint64_t seq_gaps = 0;
  // A sender's sends to one conversation stored out of submission order.
  uint64_t order_violations = 0;
  // Members whose history differs from another member's.
  uint64_t history_divergences = 0;
  // Members whose live session did not deliver the log in order, each entry
  // once, up to where it had to.
  uint64_t delivery_mismatches = 0;
  // The first few problems, in words.
  std::vector<std::string> problems;

  // No loss, duplicate, unexpected or misplaced entry anywhere.
  bool ok() const {
    return lost == 0 && duplicated == 0 && unexpected == 0 &&
           failed_but_stored == 0 && ack_seq_mismatches == 0 &&
           seq_gaps == 0 && order_violations == 0 &&
           history_divergences == 0 && delivery_mismatches == 0;
  }
};

// `views` holds at least one member view per conversation that had sends.
CheckReport CheckQueue(const std::vector<SendRecord>& sends,
                       const std::vector<MemberView>& views);

}  // namespace im::faults

#endif  // IM_TESTS_FAULTS_QUEUE_CHECKER_H_
