#include "services/message/message_e2e_suite.h"

#include <algorithm>
#include <atomic>
#include <map>
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
  const uint64_t a = env_->CreateUser("alice");
  const uint64_t b = env_->CreateUser("bob");
  const std::string ta = env_->Token(a, 1);
  const uint64_t conv = env_->Direct(ta, b);
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
  const uint64_t a = env_->CreateUser("alice");
  const uint64_t b = env_->CreateUser("bob");
  const std::string ta = env_->Token(a, 1);
  const uint64_t conv = env_->Direct(ta, b);
  ChatClient ca(*env_, ta);
  ASSERT_TRUE(ca.AwaitReady());

  struct Case {
    std::string name;
    v1::SendFrame send;
    std::string expected_text;
  };
  std::vector<Case> cases;
  auto make = [&](const std::string& name, const std::string& client_msg_id,
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
  const uint64_t a = env_->CreateUser("alice");
  const uint64_t b = env_->CreateUser("bob");
  const std::string ta = env_->Token(a, 1);
  const uint64_t conv = env_->Direct(ta, b);
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
