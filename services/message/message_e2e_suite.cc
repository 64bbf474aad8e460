#include "services/message/message_e2e_suite.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace im::message::testing {
namespace {

using ::im::message::v1::MemberEvent;

constexpr int kInvalidArgument = 3;
constexpr int kNotFound = 5;
constexpr int kResourceExhausted = 8;

std::vector<uint64_t> SeqsOf(const std::vector<v1::Entry>& entries) {
  std::vector<uint64_t> seqs;
  for (const v1::Entry& entry : entries) seqs.push_back(entry.seq());
  return seqs;
}

std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> seqs;
  for (uint64_t seq = first; seq <= last; ++seq) seqs.push_back(seq);
  return seqs;
}

using Stub = v1::MessageService::Stub;

// Calls a unary RPC of the stub with `token`.
template <typename Request, typename Response>
grpc::Status Call(MessageTestEnv& env, const std::string& token,
                  grpc::Status (Stub::*method)(grpc::ClientContext*,
                                               const Request&, Response*),
                  const Request& request, Response* response) {
  grpc::ClientContext context;
  Authorize(&context, token);
  return (env.Stub().get()->*method)(&context, request, response);
}

// Unary Send; returns the status and fills `ack`.
grpc::Status UnarySend(MessageTestEnv& env, const std::string& token,
                       uint64_t conversation_id,
                       const std::string& client_msg_id,
                       const std::string& text, v1::SendAck* ack = nullptr) {
  v1::SendRequest request;
  request.set_conversation_id(conversation_id);
  request.set_client_msg_id(client_msg_id);
  request.mutable_message()->set_text(text);
  v1::SendResponse response;
  grpc::Status status = Call(env, token, &Stub::Send, request, &response);
  if (ack != nullptr) *ack = response.ack();
  return status;
}

// A user with a token for one device.
struct TestUser {
  uint64_t id = 0;
  std::string token;
};

// Alice (device 1) and Bob and their direct conversation.
struct DirectPair {
  uint64_t a;
  uint64_t b;
  std::string ta;  // Alice's token
  uint64_t conv;
};
DirectPair MakeDirect(MessageTestEnv& env) {
  DirectPair pair;
  pair.a = env.CreateUser("alice");
  pair.b = env.CreateUser("bob");
  pair.ta = env.Token(pair.a, 1);
  pair.conv = env.Direct(pair.ta, pair.b);
  return pair;
}

// `count` users; the first owns a group of all of them (returned in
// `group`). Device (session) ids are 1000 * (index + 1).
std::vector<TestUser> MakeGroup(MessageTestEnv& env, int count,
                                uint64_t* group) {
  std::vector<TestUser> users(count);
  std::vector<uint64_t> member_ids;
  for (int i = 0; i < count; ++i) {
    users[i].id = env.CreateUser(absl::StrCat("member", i));
    users[i].token = env.Token(users[i].id, 1000 * (i + 1));
    if (i > 0) member_ids.push_back(users[i].id);
  }
  *group = env.CreateGroup(users[0].token, member_ids);
  return users;
}

}  // namespace

void MessageE2ETest::SetUp() {
  Restart(MessageTestEnv::DefaultOptions());
}

void MessageE2ETest::Restart(const MessageServiceOptions& options) {
  env_.reset();
  env_ = MessageTestEnv::Start(GetParam().make(), options);
  ASSERT_NE(env_, nullptr);
}

// Two users: the sender's stream gets its SendAck and then the entry; the
// other user gets the entry; the log holds exactly the creation and it.
TEST_P(MessageE2ETest, DirectConversationDeliversToBothSides) {
  const uint64_t a = env_->CreateUser("alice");
  const uint64_t b = env_->CreateUser("bob");
  const std::string ta = env_->Token(a, 101);
  const std::string tb = env_->Token(b, 201);
  const uint64_t conv = env_->Direct(ta, b);
  ASSERT_NE(conv, 0u);
  ChatClient ca(*env_, ta);
  ChatClient cb(*env_, tb);
  ASSERT_TRUE(ca.AwaitReady());
  ASSERT_TRUE(cb.AwaitReady());

  ASSERT_TRUE(ca.Send(7, conv, "m-1", "hello bob"));
  std::optional<v1::SendAck> ack = ca.AwaitAck(7);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->seq(), 2u);
  EXPECT_EQ(ack->conversation_id(), conv);
  EXPECT_EQ(ack->client_msg_id(), "m-1");
  EXPECT_FALSE(ack->duplicate());
  EXPECT_GT(ack->sent_at().seconds(), 0);

  ASSERT_TRUE(cb.AwaitSeq(conv, 2));
  ASSERT_TRUE(ca.AwaitSeq(conv, 2));
  std::vector<v1::Entry> got = cb.Entries(conv);
  ASSERT_EQ(SeqsOf(got), std::vector<uint64_t>({2}));
  EXPECT_EQ(got[0].sender_id(), a);
  EXPECT_EQ(got[0].client_msg_id(), "m-1");
  EXPECT_EQ(got[0].message().text(), "hello bob");
  EXPECT_EQ(got[0].sent_at().seconds(), ack->sent_at().seconds());
  EXPECT_EQ(got[0].sent_at().nanos(), ack->sent_at().nanos());

  // The sending stream: Ready, SendAck, then the entry.
  std::vector<v1::ServerFrame> frames = ca.frames();
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_TRUE(frames[0].has_ready());
  EXPECT_TRUE(frames[1].has_ack());
  EXPECT_TRUE(frames[2].has_entry());

  std::vector<storage::Entry> log = env_->Log(conv);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].member_event().kind(), MemberEvent::KIND_CREATED);
  EXPECT_EQ(log[1].message().text(), "hello bob");
}

// A 50-member group with three concurrent senders: every member's stream
// gets every entry exactly once, in seq order, and the log has no gap.
TEST_P(MessageE2ETest, FiftyMemberGroupEveryoneGetsEverythingInOrder) {
  constexpr int kMembers = 50;
  constexpr int kSenders = 3;
  constexpr int kPerSender = 20;
  uint64_t group = 0;
  std::vector<TestUser> users = MakeGroup(*env_, kMembers, &group);
  ASSERT_NE(group, 0u);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < 5; ++i) channels.push_back(env_->NewChannel());
  std::vector<std::unique_ptr<ChatClient>> clients;
  for (int i = 0; i < kMembers; ++i) {
    ChatClient::Options options;
    options.channel = channels[i % channels.size()];
    clients.push_back(
        std::make_unique<ChatClient>(*env_, users[i].token, options));
  }
  for (auto& client : clients) ASSERT_TRUE(client->AwaitReady());

  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      for (int i = 0; i < kPerSender; ++i) {
        clients[s]->Send(i + 1, group, absl::StrCat("s", s, "-", i),
                         absl::StrCat("message ", i, " from ", s));
      }
    });
  }
  for (std::thread& t : senders) t.join();
  std::set<uint64_t> acked;
  for (int s = 0; s < kSenders; ++s) {
    for (int i = 0; i < kPerSender; ++i) {
      std::optional<v1::SendAck> ack = clients[s]->AwaitAck(i + 1);
      ASSERT_TRUE(ack.has_value());
      EXPECT_TRUE(acked.insert(ack->seq()).second) << "seq acked twice";
    }
  }
  const uint64_t last = 1 + kSenders * kPerSender;
  const std::vector<uint64_t> expected = Range(2, last);
  EXPECT_EQ(acked, std::set<uint64_t>(expected.begin(), expected.end()));
  for (int i = 0; i < kMembers; ++i) {
    ASSERT_TRUE(clients[i]->AwaitSeq(group, last)) << "member " << i;
    EXPECT_EQ(clients[i]->Seqs(group), Range(2, last)) << "member " << i;
  }
  EXPECT_EQ(SeqsOf(env_->Log(group)), Range(1, last));
}

// All devices get the entry: the sending device (ack, then entry), the
// sender's other device, and the other member.
TEST_P(MessageE2ETest, MultiDeviceDeliveryIncludesSendersOtherDevices) {
  const uint64_t a = env_->CreateUser("alice");
  const uint64_t b = env_->CreateUser("bob");
  const uint64_t conv = env_->Direct(env_->Token(a, 1), b);
  ChatClient phone(*env_, env_->Token(a, 11));
  ChatClient laptop(*env_, env_->Token(a, 12));
  ChatClient other(*env_, env_->Token(b, 21));
  for (ChatClient* c : {&phone, &laptop, &other}) ASSERT_TRUE(c->AwaitReady());

  ASSERT_TRUE(phone.Send(1, conv, "p1", "from phone"));
  ASSERT_TRUE(phone.AwaitAck(1).has_value());
  for (ChatClient* c : {&phone, &laptop, &other}) {
    ASSERT_TRUE(c->AwaitSeq(conv, 2));
    EXPECT_EQ(c->Seqs(conv), std::vector<uint64_t>({2}));
  }
  ASSERT_TRUE(laptop.Send(1, conv, "l1", "from laptop"));
  ASSERT_TRUE(laptop.AwaitAck(1).has_value());
  for (ChatClient* c : {&phone, &laptop, &other}) {
    ASSERT_TRUE(c->AwaitSeq(conv, 3));
    EXPECT_EQ(c->Seqs(conv), std::vector<uint64_t>({2, 3}));
  }
  EXPECT_EQ(env_->presence().OpenStreams(11), 1);
  EXPECT_EQ(env_->presence().OpenStreams(12), 1);
}

// A retried client_msg_id returns the original seq and time, stores and
// delivers nothing new.
TEST_P(MessageE2ETest, RetryWithSameClientMsgIdIsIdempotent) {
  const auto [a, b, ta, conv] = MakeDirect(*env_);
  ChatClient ca(*env_, ta);
  ChatClient cb(*env_, env_->Token(b, 2));
  ASSERT_TRUE(ca.AwaitReady());
  ASSERT_TRUE(cb.AwaitReady());

  ASSERT_TRUE(ca.Send(1, conv, "same-id", "first"));
  std::optional<v1::SendAck> first = ca.AwaitAck(1);
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(ca.Send(2, conv, "same-id", "second try"));
  std::optional<v1::SendAck> second = ca.AwaitAck(2);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(first->seq(), 2u);
  EXPECT_FALSE(first->duplicate());
  EXPECT_EQ(second->seq(), 2u);
  EXPECT_TRUE(second->duplicate());
  EXPECT_EQ(second->sent_at().seconds(), first->sent_at().seconds());
  EXPECT_EQ(second->sent_at().nanos(), first->sent_at().nanos());

  // Unary Send with the same id: the same answer.
  v1::SendAck unary;
  ASSERT_TRUE(UnarySend(*env_, ta, conv, "same-id", "third", &unary).ok());
  EXPECT_EQ(unary.seq(), 2u);
  EXPECT_TRUE(unary.duplicate());

  ASSERT_TRUE(ca.Send(3, conv, "next-id", "next"));
  ASSERT_TRUE(ca.AwaitAck(3).has_value());
  ASSERT_TRUE(cb.AwaitSeq(conv, 3));
  EXPECT_EQ(cb.Seqs(conv), std::vector<uint64_t>({2, 3}));
  std::vector<storage::Entry> log = env_->Log(conv);
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[1].message().text(), "first");
  EXPECT_EQ(log[2].message().text(), "next");
}

// Concurrent senders over Chat and unary Send: every ack has its own seq,
// the log is 1..N with no gap, and every stream sees 2..N in order.
TEST_P(MessageE2ETest, ConcurrentSendsGetExactGapFreeSeqOrder) {
  constexpr int kUsers = 4;
  constexpr int kPerUser = 50;
  uint64_t group = 0;
  std::vector<TestUser> users = MakeGroup(*env_, kUsers, &group);
  ASSERT_NE(group, 0u);
  std::vector<std::unique_ptr<ChatClient>> clients;
  for (int i = 0; i < kUsers; ++i) {
    clients.push_back(std::make_unique<ChatClient>(*env_, users[i].token));
    ASSERT_TRUE(clients.back()->AwaitReady());
  }
  absl::Mutex mu;
  std::vector<uint64_t> seqs;
  std::vector<std::thread> threads;
  for (int u = 0; u < kUsers; ++u) {
    threads.emplace_back([&, u] {
      for (int i = 0; i < kPerUser; ++i) {
        const std::string id = absl::StrCat("u", u, "-", i);
        if (u % 2 == 0) {
          v1::SendAck ack;
          grpc::Status status =
              UnarySend(*env_, users[u].token, group, id, "unary", &ack);
          EXPECT_TRUE(status.ok()) << status.error_message();
          absl::MutexLock lock(&mu);
          seqs.push_back(ack.seq());
        } else {
          clients[u]->Send(i + 1, group, id, "chat");
        }
      }
      if (u % 2 == 1) {
        for (int i = 0; i < kPerUser; ++i) {
          std::optional<v1::SendAck> ack = clients[u]->AwaitAck(i + 1);
          absl::MutexLock lock(&mu);
          seqs.push_back(ack.has_value() ? ack->seq() : 0);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const uint64_t last = 1 + kUsers * kPerUser;
  std::sort(seqs.begin(), seqs.end());
  EXPECT_EQ(seqs, Range(2, last));
  std::vector<storage::Entry> log = env_->Log(group);
  std::vector<uint64_t> log_seqs;
  for (const storage::Entry& entry : log) log_seqs.push_back(entry.seq());
  EXPECT_EQ(log_seqs, Range(1, last));
  for (auto& client : clients) {
    ASSERT_TRUE(client->AwaitSeq(group, last));
    EXPECT_EQ(client->Seqs(group), Range(2, last));
  }
}

// A non-member gets exactly what a missing conversation gets, on every RPC.
TEST_P(MessageE2ETest, NonMemberGetsNotFoundLikeMissingConversation) {
  const uint64_t a = env_->CreateUser("alice");
  const uint64_t b = env_->CreateUser("bob");
  const uint64_t c = env_->CreateUser("carol");
  const uint64_t conv = env_->Direct(env_->Token(a, 1), b);
  const uint64_t missing = conv + 1000;
  const std::string tc = env_->Token(c, 3);
  ChatClient cc(*env_, tc);
  ASSERT_TRUE(cc.AwaitReady());

  ASSERT_TRUE(cc.Send(1, conv, "x1", "let me in"));
  ASSERT_TRUE(cc.Send(2, missing, "x2", "anyone?"));
  std::optional<v1::Error> foreign = cc.AwaitError(1);
  std::optional<v1::Error> absent = cc.AwaitError(2);
  ASSERT_TRUE(foreign.has_value());
  ASSERT_TRUE(absent.has_value());
  EXPECT_EQ(foreign->code(), kNotFound);
  EXPECT_EQ(absent->code(), kNotFound);
  EXPECT_EQ(foreign->message(), "conversation not found");
  EXPECT_EQ(absent->message(), foreign->message());
  EXPECT_EQ(foreign->conversation_id(), conv);

  for (uint64_t id : {conv, missing}) {
    auto expect_not_found = [](const grpc::Status& status) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
      EXPECT_EQ(status.error_message(), "conversation not found");
    };
    expect_not_found(UnarySend(*env_, tc, id, "u1", "hi"));
    v1::MarkReadRequest read;
    read.set_conversation_id(id);
    read.set_seq(1);
    v1::MarkReadResponse read_response;
    expect_not_found(Call(*env_, tc, &Stub::MarkRead, read, &read_response));
    v1::SetTypingRequest typing;
    typing.set_conversation_id(id);
    v1::SetTypingResponse typing_response;
    expect_not_found(
        Call(*env_, tc, &Stub::SetTyping, typing, &typing_response));
    v1::ListMembersRequest list;
    list.set_conversation_id(id);
    v1::ListMembersResponse list_response;
    expect_not_found(Call(*env_, tc, &Stub::ListMembers, list, &list_response));
    v1::GetConversationRequest get;
    get.set_conversation_id(id);
    v1::GetConversationResponse get_response;
    expect_not_found(
        Call(*env_, tc, &Stub::GetConversation, get, &get_response));
  }

  // A cursor for someone else's conversation is ignored: nothing replays.
  ASSERT_EQ(UnarySend(*env_, env_->Token(a, 1), conv, "a1", "secret").error_code(),
            grpc::StatusCode::OK);
  ChatClient::Options options;
  options.hello = ChatClient::ResumeHello({{conv, 0}}, true);
  ChatClient probe(*env_, tc, options);
  ASSERT_TRUE(probe.AwaitReady());
  EXPECT_TRUE(probe.Entries(conv).empty());
  EXPECT_EQ(env_->Log(conv).size(), 2u);
}

// Bad sends get INVALID_ARGUMENT naming the problem; the stream stays open
// and a good send afterwards is stored.
TEST_P(MessageE2ETest, InvalidSendsAreRejectedAndTheStreamStaysOpen) {
  const auto [a, b, ta, conv] = MakeDirect(*env_);
  ChatClient ca(*env_, ta);
  ASSERT_TRUE(ca.AwaitReady());

  struct Case {
    std::string name;
    v1::SendFrame send;
    std::string expected_text;
  };
  std::vector<Case> cases;
  cases.reserve(32);  // make() hands out pointers into it
  auto make = [&, conv = conv](const std::string& name, const std::string& client_msg_id,
                  const std::string& text, const std::string& expected) {
    Case c;
    c.name = name;
    c.send.set_conversation_id(conv);
    c.send.set_client_msg_id(client_msg_id);
    c.send.mutable_message()->set_text(text);
    c.expected_text = expected;
    cases.push_back(c);
    return &cases.back();
  };
  make("oversize", "big", std::string(8 * 1024 + 1, 'x'), "limit is 8192");
  make("invalid utf8", "utf", std::string("bad \xff\xfe text"), "UTF-8");
  make("overlong utf8", "overlong", std::string("\xc0\xaf"), "UTF-8");
  make("surrogate", "surrogate", std::string("\xed\xa0\x80"), "UTF-8");
  make("bad client_msg_id", "has space", "hi", "client_msg_id");
  make("empty client_msg_id", "", "hi", "client_msg_id");
  make("long client_msg_id", std::string(65, 'a'), "hi", "client_msg_id");
  make("empty message", "empty", "", "neither text nor metadata");
  Case* many = make("too many metadata entries", "meta1", "hi", "entries");
  for (int i = 0; i < 17; ++i) {
    (*many->send.mutable_message()->mutable_metadata())[absl::StrCat("k", i)] =
        "v";
  }
  Case* big_value = make("metadata value too long", "meta2", "hi", "1024");
  (*big_value->send.mutable_message()->mutable_metadata())["k"] =
      std::string(1025, 'v');
  Case* total = make("metadata too large", "meta3", "hi", "in total");
  for (int i = 0; i < 5; ++i) {
    (*total->send.mutable_message()->mutable_metadata())[absl::StrCat("k", i)] =
        std::string(1000, 'v');
  }
  Case* content_type = make("content type", "ct", "hi", "content_type");
  content_type->send.mutable_message()->set_content_type("text/\x01plain");
  Case* no_conversation = make("conversation 0", "c0", "hi", "conversation_id");
  no_conversation->send.set_conversation_id(0);

  for (size_t i = 0; i < cases.size(); ++i) {
    v1::ClientFrame frame;
    *frame.mutable_send() = cases[i].send;
    frame.mutable_send()->set_request_id(100 + i);
    ASSERT_TRUE(ca.Write(frame)) << cases[i].name;
    std::optional<v1::Error> error = ca.AwaitError(100 + i);
    ASSERT_TRUE(error.has_value()) << cases[i].name;
    EXPECT_EQ(error->code(), kInvalidArgument) << cases[i].name;
    EXPECT_NE(error->message().find(cases[i].expected_text), std::string::npos)
        << cases[i].name << ": " << error->message();
  }
  ASSERT_TRUE(ca.Send(1, conv, "good", "finally"));
  std::optional<v1::SendAck> ack = ca.AwaitAck(1);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->seq(), 2u);
  EXPECT_EQ(env_->Log(conv).size(), 2u);

  // Unary Send: the same checks, INVALID_ARGUMENT rather than INTERNAL.
  grpc::Status bad_utf8 = UnarySend(*env_, ta, conv, "u-utf", "\xff");
  EXPECT_EQ(bad_utf8.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status too_big =
      UnarySend(*env_, ta, conv, "u-big", std::string(9000, 'y'));
  EXPECT_EQ(too_big.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Over the per-user send rate: RESOURCE_EXHAUSTED on that request only;
// the stream stays open and later sends succeed.
TEST_P(MessageE2ETest, RateLimitedSendGetsResourceExhaustedFrame) {
  MessageServiceOptions options = MessageTestEnv::DefaultOptions();
  options.send_rate = RateOptions(20, 3);
  Restart(options);
  const auto [a, b, ta, conv] = MakeDirect(*env_);
  ChatClient ca(*env_, ta);
  ASSERT_TRUE(ca.AwaitReady());
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(ca.Send(i, conv, absl::StrCat("r", i), "burst"));
  }
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(ca.AwaitAck(i).has_value());
  std::optional<v1::Error> limited = ca.AwaitError(4);
  ASSERT_TRUE(limited.has_value());
  EXPECT_EQ(limited->code(), kResourceExhausted);
  absl::SleepFor(absl::Milliseconds(200));  // refills at 20/s
  ASSERT_TRUE(ca.Send(5, conv, "r5", "later"));
  std::optional<v1::SendAck> later = ca.AwaitAck(5);
  ASSERT_TRUE(later.has_value());
  EXPECT_EQ(later->seq(), 5u);
  EXPECT_FALSE(ca.ended());
}

}  // namespace im::message::testing

namespace im::message::testing {
namespace {

// Entries of one connection must continue exactly after `cursor`: no gap,
// no duplicate, in order.
void ExpectContinuesAfter(const std::vector<v1::Entry>& entries,
                          uint64_t cursor, const std::string& what) {
  uint64_t expected = cursor + 1;
  for (const v1::Entry& entry : entries) {
    ASSERT_EQ(entry.seq(), expected) << what << ": after cursor " << cursor;
    ++expected;
  }
}

}  // namespace

// A device drops its stream and resumes again and again while three others
// keep sending: each connection continues exactly after the device's
// cursor, and in the end it holds every entry exactly once. Small pages,
// a small queue and a tiny hold-back bound push every switch from replay to
// live through the log-read paths.
TEST_P(MessageE2ETest, ResumeWhileOthersSendHasNoGapAndNoDuplicate) {
  MessageServiceOptions options = MessageTestEnv::DefaultOptions();
  options.stream.replay_page_size = 3;
  options.stream.max_queued_frames = 32;
  options.stream.max_held_live_entries = 4;
  Restart(options);
  uint64_t group = 0;
  std::vector<TestUser> users = MakeGroup(*env_, 4, &group);
  ASSERT_NE(group, 0u);
  const TestUser& reader = users[3];
  const uint64_t direct = env_->Direct(users[0].token, reader.id);

  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::vector<std::thread> senders;
  for (int s = 0; s < 3; ++s) {
    senders.emplace_back([&, s] {
      for (int i = 0; !stop.load(); ++i) {
        const uint64_t target = (s == 0 && i % 3 == 0) ? direct : group;
        grpc::Status status =
            UnarySend(*env_, users[s].token, target,
                      absl::StrCat("s", s, "-", i), absl::StrCat("m", i));
        ASSERT_TRUE(status.ok()) << status.error_message();
        sent.fetch_add(1);
      }
    });
  }

  absl::flat_hash_map<uint64_t, std::vector<uint64_t>> received;
  absl::flat_hash_map<uint64_t, uint64_t> cursors;
  for (int round = 0; round < 25; ++round) {
    if (round % 4 == 3) {
      // Let a backlog of many replay pages build up first.
      const int backlog = sent.load() + 150;
      while (sent.load() < backlog) absl::SleepFor(absl::Milliseconds(1));
    }
    ChatClient::Options client_options;
    // The first connection has no cursors and asks for everything.
    client_options.hello = ChatClient::ResumeHello(cursors, round == 0);
    ChatClient client(*env_, reader.token, client_options);
    // Stay for a while that varies: sometimes drop during the replay,
    // sometimes well after Ready.
    const int target = sent.load() + 1 + (round % 5) * 4;
    EXPECT_TRUE(client.WaitFor([&](const std::vector<v1::ServerFrame>&) {
      return sent.load() >= target;
    }, absl::Seconds(5))) << "senders stalled in round " << round;
    if (round % 2 == 0 && !client.AwaitReady(absl::Seconds(5))) {
      // Only a reader too slow for the small queue may miss Ready (on a
      // loaded machine): the server then cuts it off, another drop.
      grpc::Status end = client.AwaitEnd(absl::Seconds(5));
      EXPECT_EQ(end.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
          << "no Ready in round " << round << ": " << end.error_message();
    }
    client.Cancel();
    for (uint64_t conversation : {group, direct}) {
      std::vector<v1::Entry> entries = client.Entries(conversation);
      ExpectContinuesAfter(entries, cursors[conversation],
                           absl::StrCat("round ", round, " conversation ",
                                        conversation));
      if (HasFatalFailure()) {
        stop = true;
        for (std::thread& t : senders) t.join();
        return;
      }
      for (const v1::Entry& entry : entries) {
        received[conversation].push_back(entry.seq());
        cursors[conversation] = entry.seq();
      }
    }
  }
  stop = true;
  for (std::thread& t : senders) t.join();

  // A last resume catches up to the end of the log.
  ChatClient last(*env_, reader.token,
                  {ChatClient::ResumeHello(cursors), true, nullptr});
  ASSERT_TRUE(last.AwaitReady());
  for (uint64_t conversation : {group, direct}) {
    const uint64_t end = env_->Log(conversation).size();
    ASSERT_TRUE(cursors[conversation] == end || last.AwaitSeq(conversation, end));
    std::vector<v1::Entry> entries = last.Entries(conversation);
    ExpectContinuesAfter(entries, cursors[conversation], "last connection");
    for (const v1::Entry& entry : entries) {
      received[conversation].push_back(entry.seq());
    }
    EXPECT_EQ(received[conversation], Range(1, end))
        << "conversation " << conversation;
  }
}

// A cursor further behind than the replay bound gets ReplayTruncated and
// the newest entries only; a cursor within the bound gets everything.
TEST_P(MessageE2ETest, FarBehindCursorGetsReplayTruncated) {
  MessageServiceOptions options = MessageTestEnv::DefaultOptions();
  options.stream.max_replay_entries = 50;
  Restart(options);
  const uint64_t a = env_->CreateUser("alice");
  const uint64_t b = env_->CreateUser("bob");
  const std::string ta = env_->Token(a, 1);
  const uint64_t far = env_->Direct(ta, b);
  const uint64_t c = env_->CreateUser("carol");
  const uint64_t near = env_->Direct(ta, c);
  for (int i = 0; i < 80; ++i) {
    ASSERT_TRUE(UnarySend(*env_, ta, far, absl::StrCat("f", i), "x").ok());
  }
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(UnarySend(*env_, ta, near, absl::StrCat("n", i), "y").ok());
  }
  // far: seqs 1..81, cursor 5 -> 76 behind; near: 1..11, cursor 3.
  ChatClient client(*env_, env_->Token(b, 2),
                    {ChatClient::ResumeHello({{far, 5}}), true, nullptr});
  ChatClient near_client(*env_, env_->Token(c, 3),
                         {ChatClient::ResumeHello({{near, 3}}), true, nullptr});
  ASSERT_TRUE(client.AwaitReady());
  ASSERT_TRUE(near_client.AwaitReady());

  std::vector<v1::ServerFrame> frames = client.frames();
  ASSERT_FALSE(frames.empty());
  ASSERT_TRUE(frames[0].has_replay_truncated());
  EXPECT_EQ(frames[0].replay_truncated().conversation_id(), far);
  EXPECT_EQ(frames[0].replay_truncated().from_seq(), 32u);
  EXPECT_EQ(frames[0].replay_truncated().skipped_from_seq(), 6u);
  EXPECT_EQ(client.Seqs(far), Range(32, 81));
  EXPECT_TRUE(frames.back().has_ready());
  EXPECT_EQ(near_client.Seqs(near), Range(4, 11));
  for (const v1::ServerFrame& frame : near_client.frames()) {
    EXPECT_FALSE(frame.has_replay_truncated());
  }
  // Live continues after the replay.
  ASSERT_TRUE(UnarySend(*env_, ta, far, "after", "z").ok());
  ASSERT_TRUE(client.AwaitSeq(far, 82));
  EXPECT_EQ(client.Seqs(far), Range(32, 82));
}

// A client that stops reading is cut off with RESOURCE_EXHAUSTED; its
// session never queues more than the bound, and what it did get has no
// gap.
TEST_P(MessageE2ETest, SlowConsumerIsCutOffWithBoundedMemory) {
  MessageServiceOptions options = MessageTestEnv::DefaultOptions();
  options.stream.max_queued_frames = 64;
  options.stream.max_queued_bytes = 32 * 1024;
  Restart(options);
  const auto [a, b, ta, conv] = MakeDirect(*env_);
  ChatClient::Options slow_options;
  slow_options.read = false;
  // Keep the client's transport from buffering megabytes on its own.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
  slow_options.channel = grpc::CreateCustomChannel(
      env_->address(), grpc::InsecureChannelCredentials(), args);
  ChatClient slow(*env_, env_->Token(b, 2), slow_options);
  std::shared_ptr<StreamSession> session;
  for (int i = 0; i < 500 && session == nullptr; ++i) {
    std::vector<std::shared_ptr<StreamSession>> sessions =
        env_->service().router().SessionsOf(b);
    if (!sessions.empty()) session = sessions[0];
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_NE(session, nullptr);

  const std::string text(1000, 'z');
  int sent = 0;
  for (; sent < 5000 && !session->closed(); ++sent) {
    ASSERT_TRUE(
        UnarySend(*env_, ta, conv, absl::StrCat("flood-", sent), text).ok());
  }
  ASSERT_TRUE(session->closed()) << "the stream survived " << sent << " sends";
  EXPECT_LE(session->peak_queued_bytes(), 32u * 1024);
  EXPECT_GT(session->peak_queued_bytes(), 16u * 1024);

  slow.StartReading();
  grpc::Status status = slow.AwaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  std::vector<uint64_t> seqs = slow.Seqs(conv);
  ASSERT_FALSE(seqs.empty());
  EXPECT_EQ(seqs, Range(2, seqs.back()));
  EXPECT_LT(seqs.back(), static_cast<uint64_t>(sent) + 1);
}

// Revoking a session ends its streams with UNAUTHENTICATED within 2 s;
// the user's other device keeps working; a new stream is refused.
TEST_P(MessageE2ETest, RevokedSessionStreamsEndWithinTwoSeconds) {
  const uint64_t a = env_->CreateUser("alice");
  const uint64_t b = env_->CreateUser("bob");
  const std::string phone = env_->Token(a, 11);
  const std::string laptop = env_->Token(a, 12);
  const uint64_t conv = env_->Direct(phone, b);
  ChatClient chat(*env_, phone);
  v1::SubscribeRequest subscribe_request;
  SubscribeClient subscribe(*env_, phone, subscribe_request);
  ChatClient other(*env_, laptop);
  ASSERT_TRUE(chat.AwaitReady());
  ASSERT_TRUE(other.AwaitReady());
  ASSERT_TRUE(subscribe.WaitFor([](const std::vector<v1::ServerFrame>& f) {
    return !f.empty() && f.back().has_ready();
  }));

  env_->revocations().Add(11, a, absl::Now());
  grpc::Status chat_status = chat.AwaitEnd(absl::Seconds(2));
  grpc::Status subscribe_status = subscribe.AwaitEnd(absl::Seconds(2));
  EXPECT_EQ(chat_status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << chat_status.error_message();
  EXPECT_EQ(subscribe_status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << subscribe_status.error_message();

  ASSERT_TRUE(other.Send(1, conv, "still-here", "hi"));
  ASSERT_TRUE(other.AwaitAck(1).has_value());
  ChatClient again(*env_, phone);
  EXPECT_EQ(again.AwaitEnd().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(env_->presence().OpenStreams(11), 0);
  EXPECT_EQ(env_->presence().unmatched_closes(), 0);
}

// A stream ends with UNAUTHENTICATED when its access token expires.
TEST_P(MessageE2ETest, StreamEndsWhenItsTokenExpires) {
  const uint64_t a = env_->CreateUser("alice");
  ChatClient chat(*env_, env_->Token(a, 1, auth::v1::ROLE_USER,
                                     absl::Milliseconds(1500)));
  ASSERT_TRUE(chat.AwaitReady());
  grpc::Status status = chat.AwaitEnd(absl::Seconds(5));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << status.error_message();
}

// The per-user stream limit refuses one stream too many at open; polls do
// not count.
TEST_P(MessageE2ETest, TooManyStreamsPerUserIsResourceExhausted) {
  MessageServiceOptions options = MessageTestEnv::DefaultOptions();
  options.router.max_streams_per_user = 2;
  Restart(options);
  const uint64_t a = env_->CreateUser("alice");
  ChatClient first(*env_, env_->Token(a, 1));
  ChatClient second(*env_, env_->Token(a, 2));
  ASSERT_TRUE(first.AwaitReady());
  ASSERT_TRUE(second.AwaitReady());
  ChatClient third(*env_, env_->Token(a, 3));
  grpc::Status status = third.AwaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  v1::PollRequest poll;
  v1::PollResponse response;
  EXPECT_TRUE(
      Call(*env_, env_->Token(a, 4), &Stub::Poll, poll, &response).ok());
  second.Cancel();
  // A slot is free again once the server has seen the cancel.
  for (int i = 0; i < 200; ++i) {
    if (env_->service().router().SessionsOf(a).size() == 1) break;
    absl::SleepFor(absl::Milliseconds(5));
  }
  ChatClient fourth(*env_, env_->Token(a, 5));
  EXPECT_TRUE(fourth.AwaitReady());
}

// Poll answers at once when entries lie beyond the cursors, waits for one
// otherwise, and times out empty.
TEST_P(MessageE2ETest, PollReturnsAtOnceWaitsAndTimesOut) {
  const uint64_t a = env_->CreateUser("alice");
  const uint64_t b = env_->CreateUser("bob");
  const std::string ta = env_->Token(a, 1);
  const std::string tb = env_->Token(b, 2);
  const uint64_t conv = env_->Direct(ta, b);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(UnarySend(*env_, ta, conv, absl::StrCat("p", i), "x").ok());
  }
  auto poll = [&](uint64_t cursor, uint32_t wait_ms, uint32_t max_entries,
                  v1::PollResponse* response) {
    v1::PollRequest request;
    (*request.mutable_resume()->mutable_cursors())[conv] = cursor;
    request.set_wait_ms(wait_ms);
    request.set_max_entries(max_entries);
    return Call(*env_, tb, &Stub::Poll, request, response);
  };

  // At once: 2..4 are waiting although the poll could wait 20 s.
  v1::PollResponse at_once;
  absl::Time start = absl::Now();
  ASSERT_TRUE(poll(1, 20000, 0, &at_once).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(SeqsOf(EntriesOf({at_once.frames().begin(), at_once.frames().end()},
                             conv)),
            Range(2, 4));
  EXPECT_EQ(at_once.cursors().at(conv), 4u);
  EXPECT_FALSE(at_once.more());

  // max_entries: two of the three, more = true, cursor after them.
  v1::PollResponse limited;
  ASSERT_TRUE(poll(1, 0, 2, &limited).ok());
  EXPECT_EQ(SeqsOf(EntriesOf({limited.frames().begin(), limited.frames().end()},
                             conv)),
            Range(2, 3));
  EXPECT_EQ(limited.cursors().at(conv), 3u);
  EXPECT_TRUE(limited.more());

  // Waits: nothing beyond 4 until a send arrives.
  v1::PollResponse waited;
  grpc::Status waited_status;
  std::thread poller([&] { waited_status = poll(4, 20000, 0, &waited); });
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_TRUE(UnarySend(*env_, ta, conv, "late", "y").ok());
  poller.join();
  ASSERT_TRUE(waited_status.ok()) << waited_status.error_message();
  EXPECT_EQ(SeqsOf(EntriesOf({waited.frames().begin(), waited.frames().end()},
                             conv)),
            std::vector<uint64_t>({5}));
  EXPECT_EQ(waited.cursors().at(conv), 5u);

  // Without cursors: nothing old, but a cursor for every conversation the
  // caller is in, from which the next poll continues.
  v1::PollRequest bare;
  v1::PollResponse first_poll;
  ASSERT_TRUE(Call(*env_, tb, &Stub::Poll, bare, &first_poll).ok());
  EXPECT_EQ(first_poll.frames_size(), 0);
  ASSERT_EQ(first_poll.cursors().count(conv), 1u);
  EXPECT_EQ(first_poll.cursors().at(conv), 5u);

  // Times out: empty, cursor unchanged.
  v1::PollResponse empty;
  start = absl::Now();
  ASSERT_TRUE(poll(5, 300, 0, &empty).ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(290));
  EXPECT_EQ(empty.frames_size(), 0);
  EXPECT_EQ(empty.cursors().at(conv), 5u);
  EXPECT_FALSE(empty.more());
}

// Subscribe carries the same frames as Chat.
TEST_P(MessageE2ETest, SubscribeDeliversTheSameFramesAsChat) {
  const auto [a, b, ta, conv] = MakeDirect(*env_);
  ASSERT_TRUE(UnarySend(*env_, ta, conv, "before", "old").ok());
  v1::SubscribeRequest request;
  (*request.mutable_resume()->mutable_cursors())[conv] = 0;
  request.mutable_device()->set_kind(auth::v1::DEVICE_KIND_WEB);
  SubscribeClient web(*env_, env_->Token(b, 2), request);
  ChatClient native(*env_, env_->Token(b, 3),
                    {ChatClient::ResumeHello({{conv, 0}}), true, nullptr});
  ASSERT_TRUE(native.AwaitReady());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(UnarySend(*env_, ta, conv, absl::StrCat("s", i),
                          absl::StrCat("text ", i))
                    .ok());
  }
  ASSERT_TRUE(native.AwaitSeq(conv, 12));
  ASSERT_TRUE(web.WaitFor([conv = conv](const std::vector<v1::ServerFrame>& frames) {
    std::vector<v1::Entry> entries = EntriesOf(frames, conv);
    return !entries.empty() && entries.back().seq() == 12;
  }));
  std::vector<v1::ServerFrame> chat_frames = native.frames();
  std::vector<v1::ServerFrame> web_frames = web.frames();
  ASSERT_EQ(chat_frames.size(), web_frames.size());
  for (size_t i = 0; i < chat_frames.size(); ++i) {
    EXPECT_EQ(chat_frames[i].SerializeAsString(),
              web_frames[i].SerializeAsString())
        << "frame " << i;
  }
  EXPECT_EQ(native.Seqs(conv), Range(1, 12));
}

}  // namespace im::message::testing

namespace im::message::testing {
namespace {

MemberEvent::Kind KindOf(const storage::Entry& entry) {
  return entry.has_member_event() ? entry.member_event().kind()
                                  : MemberEvent::KIND_UNSPECIFIED;
}

}  // namespace

// Membership changes are log entries in order with the messages. A removed
// member's stream gets the entry that removes it and nothing after; a user
// added while streaming starts at the entry that adds it.
TEST_P(MessageE2ETest, MembershipEventsAreOrderedWithMessages) {
  const uint64_t owner = env_->CreateUser("owner");
  const uint64_t ann = env_->CreateUser("ann");
  const uint64_t ben = env_->CreateUser("ben");
  const std::string to = env_->Token(owner, 1);
  const std::string ta = env_->Token(ann, 2);
  const std::string tb = env_->Token(ben, 3);
  const uint64_t group = env_->CreateGroup(to, {ann});
  ChatClient owner_stream(*env_, to);
  ChatClient ann_stream(*env_, ta);
  ChatClient ben_stream(*env_, tb);  // not a member yet
  for (ChatClient* c : {&owner_stream, &ann_stream, &ben_stream}) {
    ASSERT_TRUE(c->AwaitReady());
  }

  v1::AddMembersRequest add;
  add.set_conversation_id(group);
  add.add_user_ids(ben);
  add.add_user_ids(ann);  // already a member: ignored
  v1::AddMembersResponse added;
  ASSERT_TRUE(Call(*env_, to, &Stub::AddMembers, add, &added).ok());
  EXPECT_EQ(added.seq(), 2u);
  EXPECT_EQ(std::vector<uint64_t>(added.added_user_ids().begin(),
                                  added.added_user_ids().end()),
            std::vector<uint64_t>({ben}));
  v1::SendAck ack;
  ASSERT_TRUE(UnarySend(*env_, to, group, "o1", "welcome ben", &ack).ok());
  EXPECT_EQ(ack.seq(), 3u);

  // Ann is not allowed to remove anyone (member role).
  v1::RemoveMemberRequest remove_by_ann;
  remove_by_ann.set_conversation_id(group);
  remove_by_ann.set_user_id(ben);
  v1::RemoveMemberResponse denied;
  EXPECT_EQ(Call(*env_, ta, &Stub::RemoveMember, remove_by_ann, &denied)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  v1::RemoveMemberRequest remove;
  remove.set_conversation_id(group);
  remove.set_user_id(ann);
  v1::RemoveMemberResponse removed;
  ASSERT_TRUE(Call(*env_, to, &Stub::RemoveMember, remove, &removed).ok());
  EXPECT_EQ(removed.seq(), 4u);
  ASSERT_TRUE(UnarySend(*env_, to, group, "o2", "ann is gone", &ack).ok());
  EXPECT_EQ(ack.seq(), 5u);
  // Ann can no longer send: the same answer as for a stranger.
  grpc::Status ann_send = UnarySend(*env_, ta, group, "a1", "hello?");
  EXPECT_EQ(ann_send.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ann_send.error_message(), "conversation not found");

  v1::LeaveRequest leave;
  leave.set_conversation_id(group);
  v1::LeaveResponse left;
  ASSERT_TRUE(Call(*env_, tb, &Stub::Leave, leave, &left).ok());
  EXPECT_EQ(left.seq(), 6u);
  ASSERT_TRUE(UnarySend(*env_, to, group, "o3", "alone", &ack).ok());
  EXPECT_EQ(ack.seq(), 7u);

  std::vector<storage::Entry> log = env_->Log(group);
  ASSERT_EQ(log.size(), 7u);
  EXPECT_EQ(KindOf(log[0]), MemberEvent::KIND_CREATED);
  EXPECT_EQ(KindOf(log[1]), MemberEvent::KIND_ADDED);
  EXPECT_EQ(KindOf(log[2]), MemberEvent::KIND_UNSPECIFIED);
  EXPECT_EQ(KindOf(log[3]), MemberEvent::KIND_REMOVED);
  EXPECT_EQ(KindOf(log[4]), MemberEvent::KIND_UNSPECIFIED);
  EXPECT_EQ(KindOf(log[5]), MemberEvent::KIND_LEFT);
  EXPECT_EQ(log[5].sender_id(), ben);

  ASSERT_TRUE(owner_stream.AwaitSeq(group, 7));
  EXPECT_EQ(owner_stream.Seqs(group), Range(2, 7));
  // Ann: up to her removal.
  ASSERT_TRUE(ann_stream.AwaitSeq(group, 4));
  // Ben: from his addition to his leaving.
  ASSERT_TRUE(ben_stream.AwaitSeq(group, 6));
  // Nothing more reaches them after the owner's last send was delivered.
  EXPECT_EQ(ann_stream.Seqs(group), Range(2, 4));
  EXPECT_EQ(ben_stream.Seqs(group), Range(2, 6));
  EXPECT_EQ(ben_stream.Entries(group)[0].member_event().kind(),
            MemberEvent::KIND_ADDED);

  // ListMembers reflects it; only members may list.
  v1::ListMembersRequest list;
  list.set_conversation_id(group);
  v1::ListMembersResponse members;
  ASSERT_TRUE(Call(*env_, to, &Stub::ListMembers, list, &members).ok());
  ASSERT_EQ(members.members_size(), 1);
  EXPECT_EQ(members.members(0).user_id(), owner);
  EXPECT_EQ(members.members(0).role(), v1::MEMBER_ROLE_OWNER);
}

// A read marker reaches every member's streams as a Receipt; lower marks
// change nothing; bad seqs are OUT_OF_RANGE.
TEST_P(MessageE2ETest, MarkReadSendsReceiptsToOtherMembers) {
  const uint64_t a = env_->CreateUser("alice");
  const uint64_t b = env_->CreateUser("bob");
  const std::string ta = env_->Token(a, 1);
  const std::string tb = env_->Token(b, 2);
  const uint64_t conv = env_->Direct(ta, b);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(UnarySend(*env_, ta, conv, absl::StrCat("m", i), "x").ok());
  }
  ChatClient alice(*env_, ta);
  ChatClient bob_phone(*env_, env_->Token(b, 3));
  ASSERT_TRUE(alice.AwaitReady());
  ASSERT_TRUE(bob_phone.AwaitReady());

  auto receipts = [](const std::vector<v1::ServerFrame>& frames) {
    std::vector<v1::Receipt> out;
    for (const v1::ServerFrame& frame : frames) {
      if (frame.has_receipt()) out.push_back(frame.receipt());
    }
    return out;
  };
  auto mark = [&](uint64_t seq, v1::MarkReadResponse* response) {
    v1::MarkReadRequest request;
    request.set_conversation_id(conv);
    request.set_seq(seq);
    return Call(*env_, tb, &Stub::MarkRead, request, response);
  };
  v1::MarkReadResponse response;
  ASSERT_TRUE(mark(3, &response).ok());
  EXPECT_EQ(response.read_seq(), 3u);
  ASSERT_TRUE(alice.WaitFor([&](const std::vector<v1::ServerFrame>& frames) {
    return !receipts(frames).empty();
  }));
  std::vector<v1::Receipt> got = receipts(alice.frames());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].conversation_id(), conv);
  EXPECT_EQ(got[0].user_id(), b);
  EXPECT_EQ(got[0].read_seq(), 3u);
  ASSERT_TRUE(bob_phone.WaitFor([&](const std::vector<v1::ServerFrame>& frames) {
    return !receipts(frames).empty();
  }));

  ASSERT_TRUE(mark(2, &response).ok());  // lower: no-op
  EXPECT_EQ(response.read_seq(), 3u);
  EXPECT_EQ(mark(0, &response).error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(mark(99, &response).error_code(), grpc::StatusCode::OUT_OF_RANGE);

  // The Chat Read frame: an Error frame for a bad seq, a receipt for Bob.
  v1::ClientFrame read;
  read.mutable_read()->set_request_id(9);
  read.mutable_read()->set_conversation_id(conv);
  read.mutable_read()->set_seq(6);
  ASSERT_TRUE(alice.Write(read));
  std::optional<v1::Error> error = alice.AwaitError(9);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code(), 11);  // OUT_OF_RANGE
  ASSERT_TRUE(UnarySend(*env_, tb, conv, "b1", "reply").ok());  // seq 5
  read.mutable_read()->set_request_id(10);
  read.mutable_read()->set_seq(5);
  ASSERT_TRUE(alice.Write(read));
  ASSERT_TRUE(bob_phone.WaitFor([&](const std::vector<v1::ServerFrame>& frames) {
    for (const v1::Receipt& receipt : receipts(frames)) {
      if (receipt.user_id() == a && receipt.read_seq() == 5) return true;
    }
    return false;
  }));
  // The first receipt (seq 3) went out exactly once.
  int seq3 = 0;
  for (const v1::Receipt& receipt : receipts(alice.frames())) {
    if (receipt.user_id() == b && receipt.read_seq() == 3) ++seq3;
  }
  EXPECT_EQ(seq3, 1);
}

// Typing reaches the other members only, is never stored, and is rate
// limited.
TEST_P(MessageE2ETest, TypingIsEphemeralAndRateLimited) {
  MessageServiceOptions options = MessageTestEnv::DefaultOptions();
  options.typing_rate = RateOptions(0.01, 2);
  Restart(options);
  const auto [a, b, ta, conv] = MakeDirect(*env_);
  ChatClient alice(*env_, ta);
  ChatClient bob(*env_, env_->Token(b, 2));
  ASSERT_TRUE(alice.AwaitReady());
  ASSERT_TRUE(bob.AwaitReady());

  v1::SetTypingRequest typing;
  typing.set_conversation_id(conv);
  v1::SetTypingResponse response;
  ASSERT_TRUE(Call(*env_, ta, &Stub::SetTyping, typing, &response).ok());
  ASSERT_TRUE(bob.WaitFor([](const std::vector<v1::ServerFrame>& frames) {
    for (const v1::ServerFrame& frame : frames) {
      if (frame.has_typing()) return true;
    }
    return false;
  }));
  v1::Typing seen;
  for (const v1::ServerFrame& frame : bob.frames()) {
    if (frame.has_typing()) seen = frame.typing();
  }
  EXPECT_EQ(seen.conversation_id(), conv);
  EXPECT_EQ(seen.user_id(), a);
  EXPECT_GT(seen.expires_at().seconds(), absl::ToUnixSeconds(absl::Now()));

  v1::ClientFrame frame;
  frame.mutable_typing()->set_request_id(5);
  frame.mutable_typing()->set_conversation_id(conv);
  ASSERT_TRUE(alice.Write(frame));  // second token of the burst
  frame.mutable_typing()->set_request_id(6);
  ASSERT_TRUE(alice.Write(frame));  // over the limit
  std::optional<v1::Error> limited = alice.AwaitError(6);
  ASSERT_TRUE(limited.has_value());
  EXPECT_EQ(limited->code(), kResourceExhausted);
  // Sends are unaffected by the typing bucket, and Alice never saw her own
  // typing.
  ASSERT_TRUE(alice.Send(7, conv, "after-typing", "hi"));
  ASSERT_TRUE(alice.AwaitAck(7).has_value());
  for (const v1::ServerFrame& f : alice.frames()) EXPECT_FALSE(f.has_typing());
  EXPECT_EQ(env_->Log(conv).size(), 2u);
}

// Service accounts publish to a user (their direct conversation, created on
// first use) or to a conversation they belong to, with the same
// idempotency; people may not publish.
TEST_P(MessageE2ETest, ServiceAccountPublishes) {
  const uint64_t bot = env_->CreateServiceAccount("bot");
  const uint64_t u = env_->CreateUser("user");
  const std::string tbot = env_->Token(bot, 0, auth::v1::ROLE_SERVICE);
  const std::string tu = env_->Token(u, 2);
  ChatClient user(*env_, tu);
  ASSERT_TRUE(user.AwaitReady());

  v1::PublishRequest publish;
  publish.set_user_id(u);
  publish.set_client_msg_id("order-42");
  publish.mutable_message()->set_text("your order shipped");
  v1::PublishResponse first;
  ASSERT_TRUE(Call(*env_, tbot, &Stub::Publish, publish, &first).ok());
  const uint64_t conv = first.ack().conversation_id();
  EXPECT_EQ(first.ack().seq(), 2u);
  EXPECT_FALSE(first.ack().duplicate());
  v1::PublishResponse again;
  ASSERT_TRUE(Call(*env_, tbot, &Stub::Publish, publish, &again).ok());
  EXPECT_EQ(again.ack().conversation_id(), conv);
  EXPECT_EQ(again.ack().seq(), 2u);
  EXPECT_TRUE(again.ack().duplicate());

  // The user was added by the creation entry while streaming: it sees the
  // conversation from seq 1.
  ASSERT_TRUE(user.AwaitSeq(conv, 2));
  EXPECT_EQ(user.Seqs(conv), Range(1, 2));

  v1::PublishRequest to_conversation;
  to_conversation.set_conversation_id(conv);
  to_conversation.set_client_msg_id("order-43");
  to_conversation.mutable_message()->set_text("delivered");
  v1::PublishResponse third;
  ASSERT_TRUE(Call(*env_, tbot, &Stub::Publish, to_conversation, &third).ok());
  EXPECT_EQ(third.ack().seq(), 3u);

  v1::PublishResponse denied;
  EXPECT_EQ(Call(*env_, tu, &Stub::Publish, publish, &denied).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::PublishRequest bad;
  bad.set_user_id(u);
  bad.set_client_msg_id("bad id");
  bad.mutable_message()->set_text("x");
  EXPECT_EQ(Call(*env_, tbot, &Stub::Publish, bad, &denied).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  const uint64_t other = env_->CreateUser("other");
  const uint64_t foreign = env_->Direct(env_->Token(other, 9), u);
  to_conversation.set_conversation_id(foreign);
  EXPECT_EQ(Call(*env_, tbot, &Stub::Publish, to_conversation, &denied)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// Drain: every send already accepted gets its ack (or a clear error), then
// the stream ends with UNAVAILABLE; new streams are refused.
TEST_P(MessageE2ETest, DrainAcksInFlightSendsThenEndsStreams) {
  const auto [a, b, ta, conv] = MakeDirect(*env_);
  ChatClient alice(*env_, ta);
  ASSERT_TRUE(alice.AwaitReady());
  constexpr int kSends = 200;
  for (int i = 1; i <= kSends; ++i) {
    ASSERT_TRUE(alice.Send(i, conv, absl::StrCat("d", i), "draining"));
  }
  // Some of these are being stored while the drain starts.
  ASSERT_TRUE(alice.WaitFor([](const std::vector<v1::ServerFrame>& frames) {
    for (const v1::ServerFrame& frame : frames) {
      if (frame.has_ack()) return true;
    }
    return false;
  }));
  env_->service().Drain();
  grpc::Status status = alice.AwaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();

  // No request got two answers; what was acked is in the log; what is in
  // the log was acked; a request without an answer was not stored (the
  // client retries it with the same client_msg_id).
  std::map<uint64_t, int> answers;
  std::set<uint64_t> acked_seqs;
  for (const v1::ServerFrame& frame : alice.frames()) {
    if (frame.has_ack()) {
      ++answers[frame.ack().request_id()];
      acked_seqs.insert(frame.ack().seq());
    }
    if (frame.has_error()) {
      ++answers[frame.error().request_id()];
      EXPECT_EQ(frame.error().code(), 14) << frame.error().message();
    }
  }
  std::vector<storage::Entry> log = env_->Log(conv);
  std::set<std::string> stored_ids;
  for (const storage::Entry& entry : log) {
    if (entry.seq() > 1) {
      EXPECT_EQ(acked_seqs.count(entry.seq()), 1u) << "unacked " << entry.seq();
      stored_ids.insert(entry.client_msg_id());
    }
  }
  EXPECT_EQ(acked_seqs.size() + 1, log.size());
  for (int i = 1; i <= kSends; ++i) {
    EXPECT_LE(answers[i], 1) << "request " << i;
    if (answers[i] == 0) {
      EXPECT_EQ(stored_ids.count(absl::StrCat("d", i)), 0u) << "request " << i;
    }
  }

  ChatClient late(*env_, ta);
  EXPECT_EQ(late.AwaitEnd().error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace im::message::testing

namespace im::message::testing {

// Several devices send with client_msg_ids while dropping and resuming
// their streams at random, retrying unanswered sends with the same id. In
// the end every acknowledged message is in every member's received set
// exactly once and in seq order, retries never stored twice, and every
// conversation's log is gap-free.
TEST_P(MessageE2ETest, RandomDropsAndRetriesKeepExactlyOnceDelivery) {
  MessageServiceOptions options = MessageTestEnv::DefaultOptions();
  options.stream.replay_page_size = 4;
  options.stream.max_queued_frames = 64;
  options.stream.max_held_live_entries = 8;
  Restart(options);
  constexpr int kUsers = 4;
  constexpr int kRounds = 12;
  uint64_t group = 0;
  std::vector<TestUser> users = MakeGroup(*env_, kUsers, &group);
  ASSERT_NE(group, 0u);
  const uint64_t direct01 = env_->Direct(users[0].token, users[1].id);
  const uint64_t direct23 = env_->Direct(users[2].token, users[3].id);
  auto conversations_of = [&](int u) {
    return std::vector<uint64_t>{group, u < 2 ? direct01 : direct23};
  };

  struct Acked {
    uint64_t conversation_id;
    std::string client_msg_id;
    uint64_t seq;
    uint64_t sender;
  };
  struct Device {
    absl::flat_hash_map<uint64_t, uint64_t> cursors;
    absl::flat_hash_map<uint64_t, std::vector<uint64_t>> received;
    std::map<std::string, uint64_t> pending;  // client_msg_id -> conversation
    std::map<std::string, uint64_t> acked;    // client_msg_id -> seq
    int connections = 0;
  };
  std::vector<Device> devices(kUsers);

  // One connection: resume, send (new ids and retries), maybe drop early.
  // Returns whether every send was answered and the replay finished.
  auto connect = [&](int u, std::mt19937& rng, int new_sends, bool wait_all) {
    bool complete = false;
    Device& device = devices[u];
    ChatClient::Options client_options;
    client_options.hello =
        ChatClient::ResumeHello(device.cursors, device.connections == 0);
    ++device.connections;
    ChatClient client(*env_, users[u].token, client_options);
    std::map<uint64_t, std::string> requests;  // request id -> client_msg_id
    uint64_t request_id = 0;
    for (const auto& [id, conversation] : device.pending) {
      requests[++request_id] = id;
      client.Send(request_id, conversation, id, "retry");
    }
    const std::vector<uint64_t> mine = conversations_of(u);
    for (int i = 0; i < new_sends; ++i) {
      const uint64_t conversation = mine[rng() % mine.size()];
      const std::string id =
          absl::StrCat("u", u, "-c", device.connections, "-", i);
      device.pending[id] = conversation;
      requests[++request_id] = id;
      client.Send(request_id, conversation, id, absl::StrCat("text ", id));
    }
    if (wait_all) {
      // Every answer, and the replay done.
      const bool answered = client.WaitFor(
          [&](const std::vector<v1::ServerFrame>& frames) {
            size_t acks = 0;
            bool ready = false;
            for (const v1::ServerFrame& f : frames) {
              acks += f.has_ack();
              ready = ready || f.has_ready();
            }
            return ready && acks == requests.size();
          });
      if (!answered) {
        // A burst larger than the small test queue ends the stream with
        // RESOURCE_EXHAUSTED: a drop like any other, the device resumes.
        grpc::Status end = client.AwaitEnd(absl::Seconds(5));
        EXPECT_EQ(end.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
            << "user " << u << ": " << end.error_message();
      }
      complete = answered;
    } else {
      absl::SleepFor(absl::Microseconds(rng() % 20000));
    }
    client.Cancel();
    for (const v1::ServerFrame& frame : client.frames()) {
      if (frame.has_error()) {
        ADD_FAILURE() << "user " << u << ": " << frame.error().ShortDebugString();
      }
      if (!frame.has_ack()) continue;
      const std::string& id = requests[frame.ack().request_id()];
      auto [it, first] = device.acked.emplace(id, frame.ack().seq());
      EXPECT_EQ(it->second, frame.ack().seq()) << "retry of " << id
                                               << " got another seq";
      device.pending.erase(id);
    }
    for (uint64_t conversation : mine) {
      uint64_t expected = device.cursors[conversation] + 1;
      for (const v1::Entry& entry : client.Entries(conversation)) {
        EXPECT_EQ(entry.seq(), expected)
            << "user " << u << " connection " << device.connections;
        expected = entry.seq() + 1;
        device.received[conversation].push_back(entry.seq());
        device.cursors[conversation] = entry.seq();
      }
    }
    return complete;
  };

  std::vector<std::thread> threads;
  for (int u = 0; u < kUsers; ++u) {
    threads.emplace_back([&, u] {
      std::mt19937 rng(1234 + u);
      for (int round = 0; round < kRounds; ++round) {
        connect(u, rng, static_cast<int>(rng() % 8), rng() % 3 == 0);
      }
      // Until every send has an answer.
      for (int tries = 0; !devices[u].pending.empty() && tries < 20; ++tries) {
        connect(u, rng, 0, true);
      }
      EXPECT_TRUE(devices[u].pending.empty()) << "user " << u;
    });
  }
  for (std::thread& t : threads) t.join();

  // Everyone catches up; then compare with the log.
  std::map<std::pair<uint64_t, std::string>, uint64_t> acked;  // by conv,id
  for (int u = 0; u < kUsers; ++u) {
    std::mt19937 rng(99);
    bool caught_up = false;
    for (int tries = 0; !caught_up && tries < 20; ++tries) {
      caught_up = connect(u, rng, 0, true);
    }
    EXPECT_TRUE(caught_up) << "user " << u;
  }
  for (uint64_t conversation : {group, direct01, direct23}) {
    std::vector<storage::Entry> log = env_->Log(conversation);
    EXPECT_EQ(SeqsOf(log), Range(1, log.size())) << "log has a gap";
    std::map<std::string, uint64_t> stored;  // client_msg_id -> seq
    for (const storage::Entry& entry : log) {
      if (entry.has_message()) {
        EXPECT_TRUE(stored.emplace(entry.client_msg_id(), entry.seq()).second);
      }
    }
    for (int u = 0; u < kUsers; ++u) {
      const std::vector<uint64_t> mine = conversations_of(u);
      if (std::find(mine.begin(), mine.end(), conversation) == mine.end()) {
        continue;
      }
      Device& device = devices[u];
      // Once more until the device is at the end of the log.
      for (int i = 0; i < 5 && device.cursors[conversation] < log.size(); ++i) {
        std::mt19937 rng(7);
        connect(u, rng, 0, true);
      }
      EXPECT_EQ(device.received[conversation], Range(1, log.size()))
          << "user " << u << " conversation " << conversation << " got "
          << device.received[conversation].size() << " of " << log.size()
          << " last " << device.received[conversation].back();
      for (const auto& [id, seq] : device.acked) {
        auto it = stored.find(id);
        if (it == stored.end()) continue;  // another conversation
        EXPECT_EQ(it->second, seq) << id;
      }
    }
    // Everything stored was acknowledged to its sender.
    for (const storage::Entry& entry : log) {
      if (!entry.has_message()) continue;
      bool found = false;
      for (int u = 0; u < kUsers; ++u) {
        if (users[u].id != entry.sender_id()) continue;
        auto it = devices[u].acked.find(entry.client_msg_id());
        found = it != devices[u].acked.end() && it->second == entry.seq();
      }
      EXPECT_TRUE(found) << "stored but never acked: " << entry.client_msg_id();
    }
  }
  int total_acked = 0;
  for (const Device& device : devices) total_acked += device.acked.size();
  EXPECT_GT(total_acked, kUsers * kRounds);
}

}  // namespace im::message::testing
