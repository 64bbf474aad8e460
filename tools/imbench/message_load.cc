#include "tools/imbench/message_load.h"

#include <algorithm>
#include <cmath>
#include <ostream>
#include <queue>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tools/imbench/progress_ticker.h"

namespace im::imbench {

namespace v1 = ::im::message::v1;
using client::ChatEvent;
using client::ChatSession;
using client::ChatState;
using client::ConnectionChange;
using client::SendOutcome;

struct MessageLoad::Record {
  absl::Time intended;
  // 0 pending, 1 acked, 2 failed.
  std::atomic<int> state{0};
  std::atomic<uint64_t> seq{0};
  std::atomic<int> deliveries{0};
};

struct MessageLoad::Sender {
  int stream = 0;
  ChatSession* chat = nullptr;
  uint64_t conversation = 0;
  double rate = 0;
  int expected_deliveries = 0;
  // Preallocated (never moved): other threads index it while sending.
  std::unique_ptr<Record[]> records;
  uint64_t capacity = 0;
  std::atomic<uint64_t> sent{0};
};

struct MessageLoad::Stream {
  int index = 0;
  // Touched only by this stream's callback (the session serializes it).
  absl::flat_hash_map<uint64_t, uint64_t> last_seq;
};

namespace {

std::string NewRunId() {
  absl::BitGen rng;
  return absl::StrFormat("%08x", absl::Uniform<uint32_t>(rng));
}

std::string CodeName(absl::StatusCode code) {
  return absl::StatusCodeToString(code);
}

}  // namespace

MessageLoad::MessageLoad(const MessageLoadOptions& options)
    : options_(options), run_id_(NewRunId()) {}

MessageLoad::~MessageLoad() = default;

int MessageLoad::AddStream() {
  auto stream = std::make_unique<Stream>();
  stream->index = static_cast<int>(streams_.size());
  streams_.push_back(std::move(stream));
  return streams_.back()->index;
}

ChatSession::EventCallback MessageLoad::Callback(int stream) {
  Stream* state = streams_[stream].get();
  return [this, state](ChatEvent event) { OnEvent(*state, event); };
}

void MessageLoad::AddSender(int stream, ChatSession* chat,
                            uint64_t conversation, double rate, int streams) {
  auto sender = std::make_unique<Sender>();
  sender->stream = stream;
  sender->chat = chat;
  sender->conversation = conversation;
  sender->rate = rate;
  sender->expected_deliveries = streams;
  sender->capacity = static_cast<uint64_t>(
      std::ceil(rate * absl::ToDoubleSeconds(options_.duration))) + 2;
  sender->records.reset(new Record[sender->capacity]);
  senders_.push_back(std::move(sender));
}

bool MessageLoad::ParseClientMsgId(const std::string& id, int* sender,
                                   uint64_t* n) const {
  // b<run>-<sender>-<n>
  std::vector<absl::string_view> parts = absl::StrSplit(id, '-');
  if (parts.size() != 3 || parts[0] != "b" + run_id_) return false;
  if (!absl::SimpleAtoi(parts[1], sender) || !absl::SimpleAtoi(parts[2], n)) {
    return false;
  }
  return *sender >= 0 && *sender < static_cast<int>(senders_.size()) &&
         *n < senders_[*sender]->capacity;
}

bool MessageLoad::ParsePayload(const std::string& text, int* sender,
                               uint64_t* n, absl::Time* intended) const {
  // imb1 <run> <sender> <n> <intended unix ns> <padding>
  std::vector<absl::string_view> parts =
      absl::StrSplit(text, absl::MaxSplits(' ', 5));
  if (parts.size() < 5 || parts[0] != "imb1" || parts[1] != run_id_) {
    return false;
  }
  int64_t nanos = 0;
  if (!absl::SimpleAtoi(parts[2], sender) || !absl::SimpleAtoi(parts[3], n) ||
      !absl::SimpleAtoi(parts[4], &nanos)) {
    return false;
  }
  *intended = absl::FromUnixNanos(nanos);
  return *sender >= 0 && *sender < static_cast<int>(senders_.size()) &&
         *n < senders_[*sender]->capacity;
}

void MessageLoad::CountError(const std::string& kind) {
  absl::MutexLock lock(&errors_mu_);
  ++errors_[kind];
}

void MessageLoad::OnEvent(Stream& stream, ChatEvent& event) {
  const absl::Time now = absl::Now();
  if (auto* entry = std::get_if<v1::Entry>(&event)) {
    uint64_t& last = stream.last_seq[entry->conversation_id()];
    if (last != 0 && entry->seq() != last + 1) {
      out_of_order_.fetch_add(1);
      absl::MutexLock lock(&errors_mu_);
      if (order_violations_.size() < 10) {
        order_violations_.push_back(absl::StrCat(
            "stream ", stream.index, " got seq ", entry->seq(),
            " after ", last, " in conversation ", entry->conversation_id()));
      }
    }
    last = std::max(last, entry->seq());
    int sender = 0;
    uint64_t n = 0;
    absl::Time intended;
    if (!entry->has_message() ||
        !ParsePayload(entry->message().text(), &sender, &n, &intended)) {
      foreign_.fetch_add(1);
      return;
    }
    senders_[sender]->records[n].deliveries.fetch_add(1);
    delivered_.fetch_add(1);
    deliver_latency_.Record(now - intended);
    if (stream.index != senders_[sender]->stream) {
      deliver_to_others_latency_.Record(now - intended);
    }
  } else if (auto* outcome = std::get_if<SendOutcome>(&event)) {
    int sender = 0;
    uint64_t n = 0;
    if (!ParseClientMsgId(outcome->client_msg_id, &sender, &n)) return;
    Record& record = senders_[sender]->records[n];
    if (outcome->state == SendOutcome::State::kAcked) {
      record.seq.store(outcome->seq);
      record.state.store(1);
      acked_.fetch_add(1);
      ack_latency_.Record(now - record.intended);
    } else {
      record.state.store(2);
      failed_.fetch_add(1);
      CountError("send:" + CodeName(outcome->status.code()));
    }
  } else if (auto* change = std::get_if<ConnectionChange>(&event)) {
    if (change->state == ChatState::kDisconnected && !change->status.ok()) {
      CountError("stream_end:" + CodeName(change->status.code()));
    } else if (change->state == ChatState::kSessionLost) {
      CountError("session_lost:" + CodeName(change->status.code()));
    }
  }
}

void MessageLoad::Schedule() {
  // Earliest due send first.
  struct Due {
    absl::Time when;
    int sender;
    bool operator>(const Due& other) const { return when > other.when; }
  };
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> queue;
  absl::BitGen rng;
  const absl::Time start = absl::Now();
  const absl::Time window_end = start + options_.duration;
  for (size_t i = 0; i < senders_.size(); ++i) {
    const double period = 1.0 / senders_[i]->rate;
    // A random phase, so senders do not fire in lock step.
    queue.push({start + absl::Seconds(absl::Uniform(rng, 0.0, period)),
                static_cast<int>(i)});
  }
  while (!queue.empty()) {
    Due due = queue.top();
    queue.pop();
    if (due.when >= window_end) continue;
    const absl::Time now = absl::Now();
    if (due.when > now) absl::SleepFor(due.when - now);
    Sender& sender = *senders_[due.sender];
    std::optional<PreparedSend> send = PrepareSend(due.sender, due.when);
    if (!send.has_value()) continue;
    absl::StatusOr<std::string> id = sender.chat->Send(
        sender.conversation, std::move(send->message), send->client_msg_id);
    if (!id.ok()) {
      sender.records[send->n].state.store(2);
      failed_.fetch_add(1);
      CountError("client:" + CodeName(id.status().code()));
    }
    queue.push({due.when + absl::Seconds(1.0 / sender.rate), due.sender});
  }
}

std::optional<MessageLoad::PreparedSend> MessageLoad::PrepareSend(
    int sender_index, absl::Time intended) {
  Sender& sender = *senders_[sender_index];
  const uint64_t n = sender.sent.load();
  if (n >= sender.capacity) return std::nullopt;
  sender.records[n].intended = intended;
  PreparedSend send;
  send.n = n;
  send.client_msg_id = absl::StrCat("b", run_id_, "-", sender_index, "-", n);
  std::string text = absl::StrCat("imb1 ", run_id_, " ", sender_index, " ", n,
                                  " ", absl::ToUnixNanos(intended), " ");
  if (static_cast<int>(text.size()) < options_.payload_bytes) {
    text.append(options_.payload_bytes - text.size(), 'x');
  }
  send.message.set_text(std::move(text));
  sender.sent.store(n + 1);
  sent_.fetch_add(1);
  return send;
}

void MessageLoad::Run(Report& report) {
  const absl::Time start = absl::Now();
  auto progress = std::make_unique<ProgressTicker>(
      options_.progress, [this](absl::Duration elapsed) {
        return absl::StrFormat(
            "t=%5.1fs sent %llu acked %llu delivered %llu failed %llu  "
            "ack p99 %.1f ms  deliver p99 %.1f ms",
            absl::ToDoubleSeconds(elapsed), sent_.load(), acked_.load(),
            delivered_.load(), failed_.load(),
            absl::ToDoubleMilliseconds(ack_latency_.Percentile(0.99)),
            absl::ToDoubleMilliseconds(deliver_latency_.Percentile(0.99)));
      });
  Schedule();
  const absl::Time window_closed = absl::Now();
  const uint64_t acked_in_window = acked_.load();
  const uint64_t delivered_in_window = delivered_.load();

  // Drain: every send resolved, every acked one delivered everywhere.
  auto settled = [&] {
    for (const auto& sender : senders_) {
      const uint64_t sent = sender->sent.load();
      for (uint64_t n = 0; n < sent; ++n) {
        const Record& record = sender->records[n];
        const int state = record.state.load();
        if (state == 0) return false;
        if (state == 1 &&
            record.deliveries.load() < sender->expected_deliveries) {
          return false;
        }
      }
    }
    return true;
  };
  const absl::Time drain_deadline = absl::Now() + options_.drain_timeout;
  while (!settled() && absl::Now() < drain_deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  // Late duplicates would arrive just after; give them a moment.
  absl::SleepFor(absl::Milliseconds(300));
  progress.reset();

  const double window = absl::ToDoubleSeconds(window_closed - start);
  const double seconds = absl::ToDoubleSeconds(options_.duration);
  report.Add("offered rate", options_.rate, "msg/s");
  report.Add("sent", static_cast<double>(sent_.load()), "msgs");
  report.Add("acked", static_cast<double>(acked_.load()), "msgs");
  report.Add("achieved rate (acked)", acked_in_window / seconds, "msg/s");
  report.Add("acked after window",
             static_cast<double>(acked_.load() - acked_in_window), "msgs");
  report.Add("delivered", static_cast<double>(delivered_.load()), "entries");
  report.Add("delivery rate", delivered_in_window / seconds, "entries/s");
  report.Add("send window", window, "s");
  report.AddLatency("send->ack", ack_latency_);
  report.AddLatency("send->deliver", deliver_latency_);
  report.AddLatency("send->deliver other", deliver_to_others_latency_);
  Verify(report);
}

void MessageLoad::Verify(Report& report) {
  uint64_t unresolved = 0, lost = 0, duplicated = 0, acked_total = 0;
  absl::flat_hash_set<std::pair<uint64_t, uint64_t>> seqs;
  uint64_t seq_reused = 0;
  for (const auto& sender : senders_) {
    const uint64_t sent = sender->sent.load();
    for (uint64_t n = 0; n < sent; ++n) {
      const Record& record = sender->records[n];
      const int state = record.state.load();
      const int deliveries = record.deliveries.load();
      if (state == 0) ++unresolved;
      if (state == 1) {
        ++acked_total;
        if (!seqs.insert({sender->conversation, record.seq.load()}).second) {
          ++seq_reused;
        }
        if (deliveries < sender->expected_deliveries) {
          lost += sender->expected_deliveries - deliveries;
        }
      }
      if (deliveries > sender->expected_deliveries) {
        duplicated += deliveries - sender->expected_deliveries;
      }
    }
  }
  {
    absl::MutexLock lock(&errors_mu_);
    for (const auto& [kind, count] : errors_) report.AddError(kind, count);
    for (const std::string& violation : order_violations_) {
      report.failures.push_back("order: " + violation);
    }
  }
  report.AddError("unacked_after_drain", unresolved);
  if (lost > 0) {
    report.failures.push_back(absl::StrCat(
        lost, " deliveries of acked messages never arrived (loss)"));
  }
  if (duplicated > 0) {
    report.failures.push_back(
        absl::StrCat(duplicated, " deliveries arrived more than once"));
  }
  if (out_of_order_.load() > 0) {
    report.failures.push_back(absl::StrCat(
        out_of_order_.load(), " entries out of seq order or with a gap"));
  }
  if (seq_reused > 0) {
    report.failures.push_back(
        absl::StrCat(seq_reused, " acks reused a seq of another message"));
  }
  if (unresolved > 0) {
    report.failures.push_back(absl::StrCat(
        unresolved, " sends neither acked nor failed after the drain"));
  }
  report.verified = absl::StrCat(
      acked_total, " acked messages x their conversation's streams, each "
      "exactly once and in seq order");
}

// -------------------------------------------------------------- scenarios --

namespace {

absl::Status WaitLive(const std::vector<ChatSession*>& chats) {
  for (ChatSession* chat : chats) {
    if (!chat->WaitUntilLive(absl::Seconds(60))) {
      return absl::DeadlineExceededError(
          absl::StrCat("a stream did not become live (state ",
                       client::ChatStateName(chat->state()), ")"));
    }
  }
  return absl::OkStatus();
}

ChatSession::Options StreamOptions(uint64_t conversation, uint64_t last_seq) {
  ChatSession::Options options;
  // Resume exactly where the conversation is now: no replay of earlier runs.
  if (last_seq > 0) options.initial_cursors[conversation] = last_seq;
  options.replay_unlisted = false;
  return options;
}

}  // namespace

absl::Status RunDirect(Fleet& fleet, int users, const MessageLoadOptions& load,
                       Report& report) {
  if (users < 2 || users % 2 != 0) {
    return absl::InvalidArgumentError("--users must be even and at least 2");
  }
  if (absl::Status status = fleet.SignIn(users); !status.ok()) return status;
  std::vector<uint64_t> conversations(users / 2), last_seqs(users / 2);
  absl::Status created =
      Fleet::ParallelFor(users / 2, 8, [&](int pair) -> absl::Status {
        absl::StatusOr<v1::Conversation> direct =
            fleet.user(2 * pair).GetOrCreateDirect(fleet.user_id(2 * pair + 1));
        if (!direct.ok()) return direct.status();
        conversations[pair] = direct->conversation_id();
        last_seqs[pair] = direct->last_seq();
        return absl::OkStatus();
      });
  if (!created.ok()) return created;
  MessageLoad run(load);
  StopStreamsOnExit stop_streams(fleet);
  std::vector<ChatSession*> chats(users);
  for (int u = 0; u < users; ++u) {
    const int stream = run.AddStream();
    absl::StatusOr<ChatSession*> chat = fleet.OpenStream(
        u, StreamOptions(conversations[u / 2], last_seqs[u / 2]),
        run.Callback(stream));
    if (!chat.ok()) return chat.status();
    chats[u] = *chat;
  }
  if (absl::Status live = WaitLive(chats); !live.ok()) return live;
  for (int u = 0; u < users; ++u) {
    run.AddSender(u, chats[u], conversations[u / 2], load.rate / users, 2);
  }
  report.Set("users", absl::StrCat(users));
  report.Set("conversations", absl::StrCat(users / 2));
  report.Set("message_channels", absl::StrCat(fleet.message_channels()));
  run.Run(report);
  return absl::OkStatus();
}

absl::Status RunGroup(Fleet& fleet, int members, int senders,
                      const MessageLoadOptions& load, Report& report) {
  if (members < 2 || senders < 1 || senders > members) {
    return absl::InvalidArgumentError(
        "need --members >= 2 and 1 <= --senders <= --members");
  }
  if (absl::Status status = fleet.SignIn(members); !status.ok()) return status;
  std::vector<uint64_t> others;
  for (int u = 1; u < members; ++u) others.push_back(fleet.user_id(u));
  absl::StatusOr<v1::Conversation> group = fleet.user(0).CreateGroup(
      absl::StrCat("imbench group of ", members), others);
  if (!group.ok()) return group.status();
  const uint64_t conversation = group->conversation_id();
  MessageLoad run(load);
  StopStreamsOnExit stop_streams(fleet);
  std::vector<ChatSession*> chats(members);
  for (int u = 0; u < members; ++u) {
    const int stream = run.AddStream();
    absl::StatusOr<ChatSession*> chat = fleet.OpenStream(
        u, StreamOptions(conversation, group->last_seq()), run.Callback(stream));
    if (!chat.ok()) return chat.status();
    chats[u] = *chat;
  }
  if (absl::Status live = WaitLive(chats); !live.ok()) return live;
  for (int u = 0; u < senders; ++u) {
    run.AddSender(u, chats[u], conversation, load.rate / senders, members);
  }
  report.Set("members", absl::StrCat(members));
  report.Set("senders", absl::StrCat(senders));
  report.Set("conversation", absl::StrCat(conversation));
  report.Set("message_channels", absl::StrCat(fleet.message_channels()));
  run.Run(report);
  return absl::OkStatus();
}

}  // namespace im::imbench
