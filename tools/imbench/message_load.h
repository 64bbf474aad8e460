#ifndef IM_TOOLS_IMBENCH_MESSAGE_LOAD_H_
#define IM_TOOLS_IMBENCH_MESSAGE_LOAD_H_

#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clients/cpp/chat_session.h"
#include "tools/imbench/fleet.h"
#include "tools/imbench/latency_histogram.h"
#include "tools/imbench/report.h"

namespace im::imbench {

struct MessageLoadOptions {
  // Total sends per second over all senders, scheduled open-loop.
  double rate = 1000;
  absl::Duration duration = absl::Seconds(10);
  // After the send window: how long to wait for outstanding acks and
  // deliveries before counting what is missing as lost.
  absl::Duration drain_timeout = absl::Seconds(30);
  // Message text size (at least the header that carries the timestamps).
  int payload_bytes = 100;
  // A progress line per second on this stream (null: none).
  std::ostream* progress = nullptr;
};

// Open-loop message load with end-to-end verification. Each sender sends
// into one conversation at a fixed rate: send k is due at start + phase +
// k/rate and is handed to its ChatSession then, however late, and its
// latencies are measured from that intended time (so a stalled server
// shows as latency, not as fewer sends: no coordinated omission). The text
// carries the run id, sender, number and intended time; every stream
// checks what it receives against the sends: each acked message must reach
// each of its conversation's streams exactly once, in seq order.
class MessageLoad {
 public:
  explicit MessageLoad(const MessageLoadOptions& options);
  ~MessageLoad();

  // A stream that will receive (and, for a sender, get its acks). Returns
  // the stream's index; use Callback(index) when opening it.
  int AddStream();
  client::ChatSession::EventCallback Callback(int stream);
  // A sender on stream `stream` (opened with Callback(stream)) into
  // `conversation`, which `streams` streams receive.
  void AddSender(int stream, client::ChatSession* chat, uint64_t conversation,
                 double rate, int streams);

  // Runs the window and the drain; fills `report` (metrics, latencies,
  // errors, verification).
  void Run(Report& report);

  // The pieces Run is made of, public for tests of the verification:
  // PrepareSend registers send number `n` of `sender` (due at `intended`)
  // and returns its client_msg_id and message (nullopt past the sender's
  // capacity); Verify compares what the streams received with what was
  // acked and adds the failures to `report`.
  struct PreparedSend {
    uint64_t n = 0;
    std::string client_msg_id;
    ::im::message::v1::Message message;
  };
  std::optional<PreparedSend> PrepareSend(int sender, absl::Time intended);
  void Verify(Report& report);

 private:
  struct Record;
  struct Sender;
  struct Stream;

  void Schedule();
  void OnEvent(Stream& stream, client::ChatEvent& event);
  // Sender and send number of a payload or client_msg_id of this run.
  bool ParsePayload(const std::string& text, int* sender, uint64_t* n,
                    absl::Time* intended) const;
  bool ParseClientMsgId(const std::string& id, int* sender, uint64_t* n) const;
  void CountError(const std::string& kind);

  const MessageLoadOptions options_;
  const std::string run_id_;
  std::vector<std::unique_ptr<Sender>> senders_;
  std::vector<std::unique_ptr<Stream>> streams_;
  LatencyHistogram ack_latency_;
  LatencyHistogram deliver_latency_;
  // Deliveries to streams other than the sender's own (in `direct` the
  // partner's: with --pin_users_to_nodes, always on the other node).
  LatencyHistogram deliver_to_others_latency_;
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> out_of_order_{0};
  std::atomic<uint64_t> foreign_{0};
  absl::Mutex errors_mu_;
  std::map<std::string, uint64_t> errors_ ABSL_GUARDED_BY(errors_mu_);
  std::vector<std::string> order_violations_ ABSL_GUARDED_BY(errors_mu_);
};

// The `direct` scenario: `users` users in pairs, each sending to its
// partner at rate / users (both streams receive every message).
absl::Status RunDirect(Fleet& fleet, int users, const MessageLoadOptions& load,
                       Report& report);

// The `group` scenario: one new group of `members` members (all holding a
// stream) and the first `senders` sending at rate / senders.
absl::Status RunGroup(Fleet& fleet, int members, int senders,
                      const MessageLoadOptions& load, Report& report);

}  // namespace im::imbench

#endif  // IM_TOOLS_IMBENCH_MESSAGE_LOAD_H_
