// The client library against the real services (in one process, over
// MariaDB; tag "mysql"): reconnect and resume when the network drops or the
// message service restarts, retried sends stored once, token renewal before
// expiry, ReplayTruncated filled from history, and exactly-once in-order
// delivery throughout.

#include <atomic>
#include <deque>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clients/cpp/chat_session.h"
#include "clients/cpp/im_client.h"
#include "gtest/gtest.h"
#include "storage/testing/mysql_test_database.h"
#include "tests/support/service_stack.h"

namespace im::client {
namespace {

namespace v1 = ::im::message::v1;
using ::im::testing::ServiceStack;
using ::im::testing::ServiceStackOptions;

constexpr char kPassword[] = "correct horse battery";

// Everything one chat session delivered, checked as it arrives: per
// conversation the entries must come in strictly increasing seq order with
// no repeat (the sequencer's promise); anything else is recorded as a
// violation.
class EventLog {
 public:
  ChatSession::EventCallback Callback() {
    return [this](ChatEvent event) {
      absl::MutexLock lock(&mu_);
      if (auto* entry = std::get_if<v1::Entry>(&event)) {
        uint64_t& last = last_seq_[entry->conversation_id()];
        if (entry->seq() <= last) {
          violations_.push_back(absl::StrCat("conversation ",
                                             entry->conversation_id(), " seq ",
                                             entry->seq(), " after ", last));
        }
        last = entry->seq();
        entries_[entry->conversation_id()].push_back(*entry);
      } else if (auto* outcome = std::get_if<SendOutcome>(&event)) {
        outcomes_[outcome->client_msg_id] = *outcome;
      } else if (auto* change = std::get_if<ConnectionChange>(&event)) {
        states_.push_back(change->state);
        if (change->state == ChatState::kSessionLost) lost_ = change->status;
      }
    };
  }

  // Waits until the entries of `conversation_id` hold every text in
  // `texts`.
  bool WaitForTexts(uint64_t conversation_id,
                    const absl::flat_hash_set<std::string>& texts,
                    absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto all_there = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      absl::flat_hash_set<std::string> seen;
      auto it = entries_.find(conversation_id);
      if (it != entries_.end()) {
        for (const v1::Entry& entry : it->second) {
          seen.insert(entry.message().text());
        }
      }
      for (const std::string& text : texts) {
        if (!seen.contains(text)) return false;
      }
      return true;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&all_there), timeout);
  }

  bool WaitForOutcomes(size_t count, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return outcomes_.size() >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

  std::vector<v1::Entry> Entries(uint64_t conversation_id) const {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(conversation_id);
    return it == entries_.end() ? std::vector<v1::Entry>() : it->second;
  }
  absl::flat_hash_map<std::string, SendOutcome> Outcomes() const {
    absl::MutexLock lock(&mu_);
    return outcomes_;
  }
  std::vector<std::string> Violations() const {
    absl::MutexLock lock(&mu_);
    return violations_;
  }
  int Count(ChatState state) const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(std::count(states_.begin(), states_.end(), state));
  }

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, uint64_t> last_seq_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::vector<v1::Entry>> entries_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, SendOutcome> outcomes_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> violations_ ABSL_GUARDED_BY(mu_);
  std::vector<ChatState> states_ ABSL_GUARDED_BY(mu_);
  absl::Status lost_ ABSL_GUARDED_BY(mu_);
};

v1::Message Text(const std::string& text) {
  v1::Message message;
  message.set_text(text);
  return message;
}

// Seqs of `entries` are exactly first, first+1, ..., last.
void ExpectContiguous(const std::vector<v1::Entry>& entries) {
  for (size_t i = 1; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].seq(), entries[i - 1].seq() + 1)
        << "at index " << i;
  }
}

class ImClientIntegrationTest : public ::testing::Test {
 protected:
  void StartStack(ServiceStackOptions options = {}) {
    stack_ = ServiceStack::Start(storage::testing::MakeMysqlTestDatabase(),
                                 options);
    ASSERT_NE(stack_, nullptr);
  }

  // A registered, signed-in user.
  std::unique_ptr<ImClient> NewUser(const std::string& name,
                                    SessionTokens::Options tokens = {}) {
    ImClient::Options options;
    options.endpoints = stack_->endpoints();
    options.device_name = name + "-device";
    options.device_kind = auth::v1::DEVICE_KIND_CLI;
    options.tokens = tokens;
    absl::StatusOr<std::unique_ptr<ImClient>> client = ImClient::Create(options);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return nullptr;
    absl::StatusOr<auth::v1::User> user =
        (*client)->Register(name, kPassword, name);
    EXPECT_TRUE(user.ok()) << user.status();
    absl::Status login = (*client)->Login(name, kPassword);
    EXPECT_TRUE(login.ok()) << login;
    return *std::move(client);
  }

  EventLog& NewLog() { return logs_.emplace_back(); }

  // A stack with alice and bob signed in and their direct conversation.
  void StartWithAliceAndBob(ServiceStackOptions options = {}) {
    StartStack(options);
    if (stack_ == nullptr) return;
    alice_ = NewUser("alice");
    bob_ = NewUser("bob");
    ASSERT_TRUE(alice_ && bob_);
    absl::StatusOr<v1::Conversation> direct =
        alice_->GetOrCreateDirect(bob_->user_id());
    ASSERT_TRUE(direct.ok()) << direct.status();
    direct_ = direct->conversation_id();
  }

  static ChatSession::Options FastReconnect() {
    ChatSession::Options options;
    options.reconnect_backoff = {absl::Milliseconds(20),
                                 absl::Milliseconds(300), 2.0};
    return options;
  }

  ChatSession* StartChat(ImClient& client, EventLog& log,
                         ChatSession::Options options = FastReconnect()) {
    absl::StatusOr<ChatSession*> chat =
        client.StartChat(std::move(options), log.Callback());
    EXPECT_TRUE(chat.ok()) << chat.status();
    if (!chat.ok()) return nullptr;
    EXPECT_TRUE((*chat)->WaitUntilLive(absl::Seconds(10)));
    return *chat;
  }

  // The stored log of a conversation: message entries' client_msg_ids.
  std::vector<std::string> StoredClientMsgIds(uint64_t conversation_id) {
    std::vector<std::string> ids;
    uint64_t after = 0;
    for (;;) {
      absl::StatusOr<std::vector<storage::Entry>> page =
          stack_->db().reader()->ReadAfter(conversation_id, after, UINT64_MAX,
                                           500);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok() || page->empty()) break;
      for (const storage::Entry& entry : *page) {
        if (entry.has_message()) ids.push_back(entry.client_msg_id());
        after = entry.seq();
      }
    }
    return ids;
  }

  // Declared first: the logs outlive every client (and so every chat
  // session) that feeds them, fixture members and test locals alike.
  std::deque<EventLog> logs_;
  std::unique_ptr<ServiceStack> stack_;
  std::unique_ptr<ImClient> alice_, bob_;
  uint64_t direct_ = 0;
};

TEST_F(ImClientIntegrationTest, SendIsAckedAndDeliveredOnceToBothSides) {
  ASSERT_NO_FATAL_FAILURE(StartWithAliceAndBob());
  ImClient* alice = alice_.get();
  ImClient* bob = bob_.get();
  const uint64_t conversation = direct_;

  EventLog& alice_log = NewLog();
  EventLog& bob_log = NewLog();
  ChatSession* alice_chat = StartChat(*alice, alice_log);
  ASSERT_NE(StartChat(*bob, bob_log), nullptr);
  ASSERT_NE(alice_chat, nullptr);

  absl::StatusOr<std::string> id = alice_chat->Send(conversation, Text("hi bob"));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(alice_log.WaitForOutcomes(1, absl::Seconds(10)));
  const SendOutcome outcome = alice_log.Outcomes().at(*id);
  EXPECT_EQ(outcome.state, SendOutcome::State::kAcked);
  EXPECT_FALSE(outcome.duplicate);
  ASSERT_TRUE(bob_log.WaitForTexts(conversation, {"hi bob"}, absl::Seconds(10)));
  // The sender's own stream echoes the entry: delivered once there too.
  ASSERT_TRUE(
      alice_log.WaitForTexts(conversation, {"hi bob"}, absl::Seconds(10)));
  for (EventLog* log : {&alice_log, &bob_log}) {
    std::vector<v1::Entry> entries = log->Entries(conversation);
    ASSERT_FALSE(entries.empty());
    EXPECT_EQ(entries.back().seq(), outcome.seq);
    EXPECT_EQ(entries.back().client_msg_id(), *id);
    EXPECT_EQ(entries.back().sender_id(), alice->user_id());
    EXPECT_TRUE(log->Violations().empty());
  }
  EXPECT_EQ(alice_chat->SendState(*id)->state, SendOutcome::State::kAcked);
  EXPECT_EQ(alice_chat->Cursors().at(conversation), outcome.seq);
}

TEST_F(ImClientIntegrationTest, NonRetryableRefusalsFailTheSend) {
  StartStack();
  std::unique_ptr<ImClient> alice = NewUser("alice");
  ASSERT_NE(alice, nullptr);
  EventLog& log = NewLog();
  ChatSession* chat = StartChat(*alice, log);
  ASSERT_NE(chat, nullptr);
  absl::StatusOr<std::string> foreign = chat->Send(987654321, Text("nobody"));
  ASSERT_TRUE(foreign.ok());
  absl::StatusOr<v1::Conversation> group = alice->CreateGroup("g", {});
  ASSERT_TRUE(group.ok()) << group.status();
  absl::StatusOr<std::string> huge = chat->Send(
      group->conversation_id(), Text(std::string(64 * 1024, 'x')));
  ASSERT_TRUE(huge.ok());
  ASSERT_TRUE(log.WaitForOutcomes(2, absl::Seconds(10)));
  const auto outcomes = log.Outcomes();
  EXPECT_EQ(outcomes.at(*foreign).state, SendOutcome::State::kFailed);
  EXPECT_EQ(outcomes.at(*foreign).status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(outcomes.at(*huge).state, SendOutcome::State::kFailed);
  EXPECT_EQ(outcomes.at(*huge).status.code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(chat->PendingSends().size(), 0u);
  EXPECT_EQ(chat->Send(group->conversation_id(), Text("again"), *foreign)
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
}

// A burst far over the server's send rate: most sends are refused with
// RESOURCE_EXHAUSTED and retried after a random delay, yet the
// conversation stores them exactly once and in the order Send was called.
TEST_F(ImClientIntegrationTest, RefusedSendsAreStoredInSubmissionOrder) {
  ServiceStackOptions options;
  options.message.send_rate = message::RateOptions(20, 3);
  ASSERT_NO_FATAL_FAILURE(StartWithAliceAndBob(options));
  EventLog& log = NewLog();
  ChatSession::Options chat_options = FastReconnect();
  chat_options.send_retry_backoff = {absl::Milliseconds(20),
                                     absl::Milliseconds(200), 2.0};
  ChatSession* chat = StartChat(*alice_, log, chat_options);
  ASSERT_NE(chat, nullptr);
  constexpr int kSends = 30;
  std::vector<std::string> submitted;
  for (int i = 0; i < kSends; ++i) {
    absl::StatusOr<std::string> id =
        chat->Send(direct_, Text(absl::StrCat("m", i)));
    ASSERT_TRUE(id.ok()) << id.status();
    submitted.push_back(*id);
  }
  ASSERT_TRUE(log.WaitForOutcomes(kSends, absl::Seconds(30)));
  uint64_t previous_seq = 0;
  for (const std::string& id : submitted) {
    const SendOutcome outcome = log.Outcomes().at(id);
    ASSERT_EQ(outcome.state, SendOutcome::State::kAcked) << outcome.status;
    EXPECT_GT(outcome.seq, previous_seq) << "send " << id << " overtaken";
    previous_seq = outcome.seq;
  }
  // The limit did refuse: some sends needed more than one attempt.
  EXPECT_GT(chat->stats().send_retries, 0u);
  EXPECT_EQ(StoredClientMsgIds(direct_), submitted);
}

// The network path to message drops again and again while both sides send
// and receive: every send is acked once, stored once, and delivered to
// the other side once and in order.
TEST_F(ImClientIntegrationTest, ResumesAfterConnectionCutsWithoutLossOrRepeat) {
  ASSERT_NO_FATAL_FAILURE(StartWithAliceAndBob());
  ImClient* alice = alice_.get();
  ImClient* bob = bob_.get();
  const uint64_t conversation = direct_;
  EventLog& alice_log = NewLog();
  EventLog& bob_log = NewLog();
  ChatSession* alice_chat = StartChat(*alice, alice_log);
  ChatSession* bob_chat = StartChat(*bob, bob_log);
  ASSERT_TRUE(alice_chat && bob_chat);

  std::atomic<bool> cutting{true};
  std::thread cutter([&] {
    while (cutting.load()) {
      absl::SleepFor(absl::Milliseconds(70));
      stack_->message_proxy().CutAll();
    }
  });
  constexpr int kSends = 300;
  absl::flat_hash_set<std::string> texts, ids;
  for (int i = 0; i < kSends; ++i) {
    const std::string text = absl::StrCat("m", i);
    texts.insert(text);
    ChatSession* from = i % 3 == 0 ? bob_chat : alice_chat;
    absl::StatusOr<std::string> id = from->Send(conversation, Text(text));
    ASSERT_TRUE(id.ok()) << id.status();
    ids.insert(*id);
    absl::SleepFor(absl::Milliseconds(3));
  }
  const bool acked = [&] {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      if (alice_chat->PendingSends().empty() &&
          bob_chat->PendingSends().empty()) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }();
  cutting.store(false);
  cutter.join();
  ASSERT_TRUE(acked) << "sends still pending";
  ASSERT_TRUE(alice_log.WaitForTexts(conversation, texts, absl::Seconds(30)));
  ASSERT_TRUE(bob_log.WaitForTexts(conversation, texts, absl::Seconds(30)));

  for (EventLog* log : {&alice_log, &bob_log}) {
    EXPECT_TRUE(log->Violations().empty()) << log->Violations().front();
    ExpectContiguous(log->Entries(conversation));
  }
  // Stored once each: no client_msg_id twice, all of them there.
  std::vector<std::string> stored = StoredClientMsgIds(conversation);
  EXPECT_EQ(stored.size(), static_cast<size_t>(kSends));
  EXPECT_EQ(absl::flat_hash_set<std::string>(stored.begin(), stored.end()),
            ids);
  size_t failed = 0;
  for (EventLog* log : {&alice_log, &bob_log}) {
    for (const auto& [id, outcome] : log->Outcomes()) {
      if (outcome.state != SendOutcome::State::kAcked) ++failed;
    }
  }
  EXPECT_EQ(failed, 0u);
  EXPECT_GT(alice_chat->stats().streams_opened, 3u);
  EXPECT_GT(bob_chat->stats().streams_opened, 3u);
}

// The server stores sends whose acks never reach the client; after the
// reconnect the client sends them again with the same client_msg_id and
// the server answers with the original seqs instead of storing them twice.
// One send per conversation is on the wire at a time, so the lost acks are
// those of each conversation's first send; the sends queued behind them go
// out after the resume.
TEST_F(ImClientIntegrationTest, LostAcksAreRetriedWithTheSameClientMsgId) {
  ASSERT_NO_FATAL_FAILURE(StartWithAliceAndBob());
  ImClient* alice = alice_.get();
  constexpr int kConversations = 5;
  constexpr int kSendsEach = 4;
  std::vector<uint64_t> conversations = {direct_};
  for (int i = 1; i < kConversations; ++i) {
    absl::StatusOr<v1::Conversation> group =
        alice->CreateGroup(absl::StrCat("g", i), {bob_->user_id()});
    ASSERT_TRUE(group.ok()) << group.status();
    conversations.push_back(group->conversation_id());
  }
  EventLog& log = NewLog();
  ChatSession* chat = StartChat(*alice, log);
  ASSERT_NE(chat, nullptr);

  stack_->message_proxy().SetBlackholeToClient(true);
  // Per conversation, the ids in the order they were sent.
  absl::flat_hash_map<uint64_t, std::vector<std::string>> sent;
  for (int k = 0; k < kSendsEach; ++k) {
    for (uint64_t conversation : conversations) {
      absl::StatusOr<std::string> id =
          chat->Send(conversation, Text(absl::StrCat("lost ack ", k)));
      ASSERT_TRUE(id.ok());
      sent[conversation].push_back(*id);
    }
  }
  // Wait until the server stored each conversation's first send (the acks
  // are being dropped; the rest wait for them).
  auto stored_firsts = [&] {
    int stored = 0;
    for (uint64_t conversation : conversations) {
      stored += static_cast<int>(StoredClientMsgIds(conversation).size());
    }
    return stored;
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (stored_firsts() < kConversations && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::SleepFor(absl::Milliseconds(200));  // nothing more may arrive
  ASSERT_EQ(stored_firsts(), kConversations);
  EXPECT_EQ(chat->PendingSends().size(),
            static_cast<size_t>(kConversations * kSendsEach));
  stack_->message_proxy().SetBlackholeToClient(false);
  stack_->message_proxy().CutAll();

  ASSERT_TRUE(log.WaitForOutcomes(kConversations * kSendsEach,
                                  absl::Seconds(30)));
  const auto outcomes = log.Outcomes();
  for (uint64_t conversation : conversations) {
    const std::vector<std::string>& ids = sent[conversation];
    uint64_t previous_seq = 0;
    for (size_t k = 0; k < ids.size(); ++k) {
      const SendOutcome& outcome = outcomes.at(ids[k]);
      EXPECT_EQ(outcome.state, SendOutcome::State::kAcked);
      // The first was stored before the cut: its retry finds it.
      EXPECT_EQ(outcome.duplicate, k == 0) << "send " << k;
      if (k == 0) {
        EXPECT_GE(outcome.attempts, 2);
      }
      EXPECT_GT(outcome.seq, previous_seq) << "send " << k << " overtaken";
      previous_seq = outcome.seq;
    }
    EXPECT_EQ(StoredClientMsgIds(conversation), ids);
  }
  EXPECT_EQ(chat->stats().sends_acked_duplicate,
            static_cast<uint64_t>(kConversations));
  // The entries themselves arrive once, after the resume.
  std::vector<v1::Entry> entries;
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while ((entries = log.Entries(direct_)).size() < kSendsEach + 1u &&
         absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(entries.size(), kSendsEach + 1u);  // + the conversation's creation
  ExpectContiguous(entries);
  EXPECT_TRUE(log.Violations().empty());
}

// The message service drains and restarts (acks of queued sends go out,
// streams end UNAVAILABLE); sessions come back and nothing is lost.
TEST_F(ImClientIntegrationTest, SurvivesMessageServiceRestart) {
  StartStack();
  std::unique_ptr<ImClient> alice = NewUser("alice");
  std::unique_ptr<ImClient> bob = NewUser("bob");
  ASSERT_TRUE(alice && bob);
  absl::StatusOr<v1::Conversation> group =
      alice->CreateGroup("team", {bob->user_id()});
  ASSERT_TRUE(group.ok()) << group.status();
  const uint64_t conversation = group->conversation_id();
  EventLog& alice_log = NewLog();
  EventLog& bob_log = NewLog();
  ChatSession* chat = StartChat(*alice, alice_log);
  ASSERT_NE(StartChat(*bob, bob_log), nullptr);
  ASSERT_NE(chat, nullptr);

  absl::flat_hash_set<std::string> texts;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 40; ++i) {
      const std::string text = absl::StrCat("r", round, "-", i);
      texts.insert(text);
      ASSERT_TRUE(chat->Send(conversation, Text(text)).ok());
    }
    // Streams that reached Ready so far (counted with the state change).
    auto ready = [](ChatSession* session) {
      return session->stats().streams_ready;
    };
    const uint64_t alice_ready = ready(chat);
    const uint64_t bob_ready = ready(bob->chat());
    ASSERT_TRUE(stack_->RestartMessage());
    // Both come back on the new server before the next round.
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while ((ready(chat) == alice_ready || ready(bob->chat()) == bob_ready) &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    ASSERT_GT(ready(bob->chat()), bob_ready)
        << "bob " << client::ChatStateName(bob->chat()->state());
    ASSERT_GT(ready(chat), alice_ready)
        << "alice " << client::ChatStateName(chat->state()) << " after "
        << chat->stats().streams_opened << " streams, "
        << chat->PendingSends().size() << " pending";
  }
  ASSERT_TRUE(alice_log.WaitForOutcomes(120, absl::Seconds(60)));
  for (const auto& [id, outcome] : alice_log.Outcomes()) {
    EXPECT_EQ(outcome.state, SendOutcome::State::kAcked) << outcome.status;
  }
  ASSERT_TRUE(bob_log.WaitForTexts(conversation, texts, absl::Seconds(30)));
  EXPECT_TRUE(bob_log.Violations().empty());
  ExpectContiguous(bob_log.Entries(conversation));
  EXPECT_EQ(StoredClientMsgIds(conversation).size(), 120u);
  EXPECT_GE(bob->chat()->stats().streams_ready, 4u);
}

// A device that was away longer than the server replays gets
// ReplayTruncated and reads the rest from history: every entry once, in
// order.
TEST_F(ImClientIntegrationTest, ReplayTruncatedIsFilledFromHistory) {
  ServiceStackOptions options;
  options.message = ServiceStackOptions::DefaultMessageOptions();
  options.message.stream.max_replay_entries = 25;
  options.message.stream.replay_page_size = 10;
  ASSERT_NO_FATAL_FAILURE(StartWithAliceAndBob(options));
  ImClient* alice = alice_.get();
  ImClient* bob = bob_.get();
  const uint64_t conversation = direct_;
  constexpr int kWhileAway = 180;
  for (int i = 0; i < kWhileAway; ++i) {
    ASSERT_TRUE(alice->SendUnary(conversation, Text(absl::StrCat("a", i)),
                                 absl::StrCat("away-", i))
                    .ok());
  }
  EventLog& log = NewLog();
  ChatSession::Options chat_options = FastReconnect();
  chat_options.initial_cursors = {{conversation, 1}};  // held: the creation
  chat_options.history_page = 17;
  ChatSession* chat = StartChat(*bob, log, chat_options);
  ASSERT_NE(chat, nullptr);
  // Live traffic right after the resume lands behind the filled range.
  ASSERT_TRUE(alice->SendUnary(conversation, Text("live"), "live-1").ok());
  absl::flat_hash_set<std::string> texts = {"live"};
  for (int i = 0; i < kWhileAway; ++i) texts.insert(absl::StrCat("a", i));
  ASSERT_TRUE(log.WaitForTexts(conversation, texts, absl::Seconds(30)));
  std::vector<v1::Entry> entries = log.Entries(conversation);
  ASSERT_EQ(entries.size(), kWhileAway + 1u);
  EXPECT_EQ(entries.front().seq(), 2u);
  ExpectContiguous(entries);
  EXPECT_TRUE(log.Violations().empty());
  const ChatSession::Stats stats = chat->stats();
  EXPECT_EQ(stats.replay_truncations, 1u);
  EXPECT_GE(stats.entries_from_history, kWhileAway - 25u);
  EXPECT_EQ(chat->Cursors().at(conversation), kWhileAway + 2u);
}

// Conversations created while a device was offline are replayed when it
// comes back without cursors for them (replay_unlisted).
TEST_F(ImClientIntegrationTest, ConversationsAddedWhileOfflineAreReplayed) {
  StartStack();
  std::unique_ptr<ImClient> alice = NewUser("alice");
  std::unique_ptr<ImClient> bob = NewUser("bob");
  ASSERT_TRUE(alice && bob);
  absl::StatusOr<v1::Conversation> group =
      alice->CreateGroup("while you were out", {bob->user_id()});
  ASSERT_TRUE(group.ok());
  ASSERT_TRUE(alice->SendUnary(group->conversation_id(), Text("welcome"), "w1")
                  .ok());
  EventLog& log = NewLog();
  ASSERT_NE(StartChat(*bob, log), nullptr);
  ASSERT_TRUE(log.WaitForTexts(group->conversation_id(), {"welcome"},
                               absl::Seconds(10)));
  std::vector<v1::Entry> entries = log.Entries(group->conversation_id());
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].member_event().kind(), v1::MemberEvent::KIND_CREATED);
  EXPECT_EQ(entries[1].message().text(), "welcome");
}

// Access tokens live 3 s here. The client renews them before they expire,
// its stream (which ends with its token) comes straight back, and sends and
// calls keep working for several lifetimes.
TEST_F(ImClientIntegrationTest, RenewsTokensBeforeTheyExpire) {
  ServiceStackOptions options;
  options.access_token_ttl = absl::Seconds(3);
  ASSERT_NO_FATAL_FAILURE(StartWithAliceAndBob(options));
  ImClient* alice = alice_.get();
  ImClient* bob = bob_.get();
  const uint64_t conversation = direct_;
  std::atomic<int> renewals{0};
  alice->tokens().AddTokensListener(
      [&](const auth::v1::TokenPair&) { renewals.fetch_add(1); });
  const std::string first_token = alice->tokens().AccessToken();
  EventLog& alice_log = NewLog();
  EventLog& bob_log = NewLog();
  ChatSession* chat = StartChat(*alice, alice_log);
  ASSERT_NE(StartChat(*bob, bob_log), nullptr);
  ASSERT_NE(chat, nullptr);

  absl::flat_hash_set<std::string> texts;
  const absl::Time end = absl::Now() + absl::Seconds(10);
  for (int i = 0; absl::Now() < end; ++i) {
    const std::string text = absl::StrCat("t", i);
    texts.insert(text);
    ASSERT_TRUE(chat->Send(conversation, Text(text)).ok());
    absl::SleepFor(absl::Milliseconds(250));
  }
  ASSERT_TRUE(alice_log.WaitForOutcomes(texts.size(), absl::Seconds(20)));
  for (const auto& [id, outcome] : alice_log.Outcomes()) {
    EXPECT_EQ(outcome.state, SendOutcome::State::kAcked) << outcome.status;
  }
  ASSERT_TRUE(bob_log.WaitForTexts(conversation, texts, absl::Seconds(20)));
  EXPECT_TRUE(bob_log.Violations().empty());
  // 10 s of 3 s tokens renewed at 75%: at least three renewals each.
  EXPECT_GE(renewals.load(), 3);
  EXPECT_NE(alice->tokens().AccessToken(), first_token);
  EXPECT_EQ(alice_log.Count(ChatState::kSessionLost), 0);
  absl::StatusOr<auth::v1::WhoAmIResponse> me = alice->WhoAmI();
  ASSERT_TRUE(me.ok()) << me.status();
  EXPECT_EQ(me->user().user_id(), alice->user_id());
}

// A session whose refresh is refused: a client allowed to keep its password
// logs in again; one that is not reports the session lost.
TEST_F(ImClientIntegrationTest, RefusedRefreshLogsInAgainOrLosesTheSession) {
  StartStack();
  SessionTokens::Options relogin;
  relogin.relogin_with_password = true;
  std::unique_ptr<ImClient> keeper = NewUser("keeper", relogin);
  std::unique_ptr<ImClient> plain = NewUser("plain");
  ASSERT_TRUE(keeper && plain);
  const uint64_t old_session = keeper->tokens().tokens().session_id();
  ASSERT_TRUE(keeper->Logout().ok());  // revokes the session and its refresh
  ASSERT_TRUE(plain->Logout().ok());

  EXPECT_TRUE(keeper->tokens().RenewNow().ok());
  EXPECT_NE(keeper->tokens().tokens().session_id(), old_session);
  absl::StatusOr<auth::v1::WhoAmIResponse> me = keeper->WhoAmI();
  ASSERT_TRUE(me.ok()) << me.status();
  EXPECT_EQ(me->session_id(), keeper->tokens().tokens().session_id());

  std::atomic<int> lost{0};
  plain->tokens().AddLostListener([&](const absl::Status& status) {
    EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
    lost.fetch_add(1);
  });
  EXPECT_EQ(plain->tokens().RenewNow().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(lost.load(), 1);
  EXPECT_FALSE(plain->tokens().signed_in());
}

// A service account's tokens have no refresh token: the client exchanges
// the API key again before they expire.
TEST_F(ImClientIntegrationTest, ServiceAccountExchangesItsKeyAgain) {
  ServiceStackOptions options;
  options.access_token_ttl = absl::Seconds(3);
  options.admin_usernames = {"root"};
  StartStack(options);
  std::unique_ptr<ImClient> root = NewUser("root");
  std::unique_ptr<ImClient> bob = NewUser("bob");
  ASSERT_TRUE(root && bob);
  ASSERT_TRUE(root->Login("root", kPassword).ok());  // now with ROLE_ADMIN
  absl::StatusOr<auth::v1::CreateServiceAccountResponse> account =
      root->CreateServiceAccount("notifier", "test bot");
  ASSERT_TRUE(account.ok()) << account.status();

  ImClient::Options bot_options;
  bot_options.endpoints = stack_->endpoints();
  absl::StatusOr<std::unique_ptr<ImClient>> bot = ImClient::Create(bot_options);
  ASSERT_TRUE(bot.ok());
  ASSERT_TRUE((*bot)->LoginWithApiKey(account->api_key()).ok());
  EXPECT_EQ((*bot)->tokens().tokens().role(), auth::v1::ROLE_SERVICE);
  EventLog& bob_log = NewLog();
  ASSERT_NE(StartChat(*bob, bob_log), nullptr);
  uint64_t conversation = 0;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<v1::SendAck> ack = (*bot)->Publish(
        0, bob->user_id(), Text(absl::StrCat("alert ", i)),
        absl::StrCat("alert-", i));
    ASSERT_TRUE(ack.ok()) << ack.status();
    conversation = ack->conversation_id();
    absl::SleepFor(absl::Seconds(2));
  }
  ASSERT_TRUE(bob_log.WaitForTexts(
      conversation, {"alert 0", "alert 1", "alert 2", "alert 3"},
      absl::Seconds(10)));
  EXPECT_TRUE((*bot)->tokens().signed_in());
}

}  // namespace
}  // namespace im::client
