// End-to-end tests of the presence service over real gRPC (server on a free
// port, in-memory storage fakes).

#include "services/presence/presence_service.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/presence/presence_lease_client.h"
#include "services/common/proto_time.h"
#include "services/presence/presence_test_support.h"
#include "storage/fake/fake_database.h"

namespace im::presence {
namespace {

using ::im::presence::v1::PresenceBatch;
using ::im::presence::v1::PRESENCE_STATE_OFFLINE;
using ::im::presence::v1::PRESENCE_STATE_ONLINE;
using ::im::presence::v1::PRESENCE_STATE_UNKNOWN;

// Tests of node death and heartbeats use the short TTL; the others hold
// leases by raw RPCs without heartbeats and use the long one.
constexpr absl::Duration kTtl = absl::Milliseconds(300);
constexpr absl::Duration kLongTtl = absl::Seconds(30);
constexpr absl::Duration kGrace = absl::Milliseconds(150);
constexpr absl::Duration kWindow = absl::Milliseconds(50);
constexpr absl::Duration kTick = absl::Milliseconds(10);
// Generous: only a hung or broken service takes this long.
constexpr absl::Duration kWait = absl::Seconds(5);

PresenceServiceImpl::Options TestOptions(absl::Duration ttl) {
  PresenceServiceImpl::Options options;
  options.lease_ttl = ttl;
  options.grace_period = kGrace;
  options.coalesce_window = kWindow;
  options.tick = kTick;
  options.last_seen_interval = absl::Seconds(60);
  options.last_seen_flush_period = absl::Milliseconds(20);
  options.visibility_cache_ttl = absl::Milliseconds(100);
  options.visibility_refresh = absl::Milliseconds(200);
  return options;
}

class PresenceServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    alice_ = CreateUser("alice");
    bob_ = CreateUser("bob");
    carol_ = CreateUser("carol");
    dave_ = CreateUser("dave");
    const absl::Time now = absl::Now();
    ASSERT_TRUE(database_.log()->GetOrCreateDirect(alice_, bob_, "", now).ok());
    ASSERT_TRUE(database_.log()
                    ->CreateGroup(alice_, "team", {carol_}, 0, "", now)
                    .ok());
    // dave shares a conversation with bob, none with alice.
    ASSERT_TRUE(database_.log()->GetOrCreateDirect(dave_, bob_, "", now).ok());
    harness_ = std::make_unique<PresenceHarness>(&database_,
                                                 TestOptions(kLongTtl));
    harness_->Start();
  }

  // A fresh presence whose leases expire after kTtl without heartbeats.
  void UseShortTtl() {
    harness_.reset();
    harness_ = std::make_unique<PresenceHarness>(&database_, TestOptions(kTtl));
    harness_->Start();
  }

  uint64_t CreateUser(const std::string& name) {
    storage::NewUser user;
    user.username = name;
    user.username_norm = name;
    user.display_name = name;
    user.created_at = absl::Now();
    absl::StatusOr<storage::UserRecord> created =
        database_.users()->CreateUser(user);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->id : 0;
  }

  v1::PresenceService::Stub* stub() { return harness_->stub(); }
  std::string Token(uint64_t user) { return harness_->UserToken(user, user * 100); }
  std::string Internal() { return harness_->InternalToken(); }

  grpc::Status OpenLease(const std::string& token, const std::string& node,
                         uint64_t user, uint64_t session,
                         v1::OpenLeaseResponse* response,
                         const std::string& device = "phone") {
    v1::OpenLeaseRequest request;
    request.set_node_id(node);
    request.set_user_id(user);
    request.set_session_id(session);
    request.set_device_kind(auth::v1::DEVICE_KIND_MOBILE);
    request.set_device_name(device);
    return stub()->OpenLease(PresenceHarness::Context(token).get(), request,
                             response);
  }
  uint64_t Open(const std::string& node, uint64_t user, uint64_t session,
                const std::string& device = "phone") {
    v1::OpenLeaseResponse response;
    const grpc::Status status =
        OpenLease(Internal(), node, user, session, &response, device);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.lease_id();
  }
  grpc::Status CloseLease(const std::string& token, const std::string& node,
                          uint64_t lease_id) {
    v1::CloseLeaseRequest request;
    request.set_node_id(node);
    request.set_lease_id(lease_id);
    v1::CloseLeaseResponse response;
    return stub()->CloseLease(PresenceHarness::Context(token).get(), request,
                              &response);
  }
  void Close(const std::string& node, uint64_t lease_id) {
    EXPECT_TRUE(CloseLease(Internal(), node, lease_id).ok());
  }
  grpc::Status Heartbeat(const std::string& token, const std::string& node,
                         uint32_t count, v1::HeartbeatResponse* response) {
    v1::HeartbeatRequest request;
    request.set_node_id(node);
    request.set_lease_count(count);
    return stub()->Heartbeat(PresenceHarness::Context(token).get(), request,
                             response);
  }
  grpc::Status Query(const std::string& token,
                     const std::vector<uint64_t>& ids,
                     v1::QueryResponse* response) {
    v1::QueryRequest request;
    for (uint64_t id : ids) request.add_user_ids(id);
    return stub()->Query(PresenceHarness::Context(token).get(), request,
                         response);
  }
  // One user's presence as `viewer` sees it.
  v1::Presence QueryOne(uint64_t viewer, uint64_t user) {
    v1::QueryResponse response;
    const grpc::Status status = Query(Token(viewer), {user}, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.presences_size() == 1 ? response.presences(0)
                                          : v1::Presence();
  }
  std::unique_ptr<PresenceLeaseClient> LeaseClient(const std::string& node) {
    return harness_->LeaseClient(node);
  }
  static DeviceStream Stream(uint64_t user, uint64_t session,
                             const std::string& name) {
    return MobileStream(user, session, name);
  }

  storage::FakeDatabase database_;
  std::unique_ptr<PresenceHarness> harness_;
  uint64_t alice_ = 0, bob_ = 0, carol_ = 0, dave_ = 0;
};

// The presence of `user` in `batch`, or nullptr.
const v1::Presence* Find(const PresenceBatch& batch, uint64_t user) {
  for (const v1::Presence& presence : batch.presences()) {
    if (presence.user_id() == user) return &presence;
  }
  return nullptr;
}

std::vector<uint64_t> UserIds(const PresenceBatch& batch) {
  std::vector<uint64_t> ids;
  for (const v1::Presence& presence : batch.presences()) {
    ids.push_back(presence.user_id());
  }
  return ids;
}

TEST_F(PresenceServiceTest, LeaseRpcsRefuseNonInternalCallers) {
  v1::OpenLeaseResponse open;
  EXPECT_EQ(OpenLease(Token(bob_), "n1", bob_, 1, &open).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(OpenLease("", "n1", bob_, 1, &open).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  const uint64_t lease = Open("n1", bob_, 1);
  EXPECT_EQ(CloseLease(Token(bob_), "n1", lease).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::HeartbeatResponse heartbeat;
  EXPECT_EQ(Heartbeat(Token(bob_), "n1", 1, &heartbeat).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Heartbeat("", "n1", 1, &heartbeat).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // The refused close changed nothing.
  EXPECT_EQ(QueryOne(alice_, bob_).state(), PRESENCE_STATE_ONLINE);
}

TEST_F(PresenceServiceTest, OutOfBoundsRequestsAreInvalidArgument) {
  v1::QueryResponse response;
  EXPECT_EQ(Query(Token(alice_), {}, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Query(Token(alice_), std::vector<uint64_t>(501, bob_), &response)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(
      Query(Token(alice_), std::vector<uint64_t>(500, bob_), &response).ok());
  EXPECT_EQ(response.presences_size(), 500);

  for (size_t count : {size_t{0}, size_t{1001}}) {
    BatchReader reader(stub(), Token(alice_),
                       std::vector<uint64_t>(count, bob_));
    const std::optional<grpc::Status> status = reader.Finished(kWait);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  std::vector<uint64_t> thousand;
  for (uint64_t id = 1; id <= 1000; ++id) thousand.push_back(id);
  BatchReader reader(stub(), Token(alice_), thousand);
  std::optional<PresenceBatch> snapshot = reader.Next(kWait);
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->presences_size(), 1000);

  v1::SetStatusRequest status_request;
  v1::SetStatusResponse status_response;
  status_request.set_status_text(std::string(141, 'x'));
  EXPECT_EQ(stub()
                ->SetStatus(PresenceHarness::Context(Token(alice_)).get(),
                            status_request, &status_response)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Characters count, not bytes: 140 four-byte characters are fine.
  std::string pizzas;
  for (int i = 0; i < 140; ++i) pizzas += "\xF0\x9F\x8D\x95";
  status_request.set_status_text(pizzas);
  EXPECT_TRUE(stub()
                  ->SetStatus(PresenceHarness::Context(Token(alice_)).get(),
                              status_request, &status_response)
                  .ok());
  status_request.set_status_text(pizzas + "!");
  EXPECT_EQ(stub()
                ->SetStatus(PresenceHarness::Context(Token(alice_)).get(),
                            status_request, &status_response)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  status_request.set_status_text("line\nbreak");
  EXPECT_EQ(stub()
                ->SetStatus(PresenceHarness::Context(Token(alice_)).get(),
                            status_request, &status_response)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  v1::OpenLeaseResponse open;
  EXPECT_EQ(OpenLease(Internal(), "", bob_, 1, &open).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(OpenLease(Internal(), "n1", 0, 1, &open).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(OpenLease(Internal(), "n1", bob_, 0, &open).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(OpenLease(Internal(), std::string(129, 'n'), bob_, 1, &open)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(
      OpenLease(Internal(), "n1", bob_, 1, &open, std::string(129, 'd'))
          .error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  v1::HeartbeatResponse heartbeat;
  EXPECT_EQ(Heartbeat(Internal(), "", 0, &heartbeat).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Nothing of the refused calls went online.
  EXPECT_EQ(QueryOne(alice_, bob_).state(), PRESENCE_STATE_OFFLINE);
}

TEST_F(PresenceServiceTest, OnlineWhileEitherOfTwoDevicesIsConnected) {
  UseShortTtl();  // heartbeats must keep the leases
  std::unique_ptr<PresenceLeaseClient> node = LeaseClient("node-a");
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(QueryOne(alice_, bob_).state(), PRESENCE_STATE_OFFLINE);

  node->OnStreamOpened(Stream(bob_, 21, "phone"));
  node->OnStreamOpened(Stream(bob_, 22, "laptop"));
  ASSERT_TRUE(WaitUntil(
      [&] { return QueryOne(alice_, bob_).devices_size() == 2; }, kWait));
  v1::Presence presence = QueryOne(alice_, bob_);
  EXPECT_EQ(presence.state(), PRESENCE_STATE_ONLINE);
  EXPECT_EQ(presence.devices(0).name(), "phone");
  EXPECT_EQ(presence.devices(0).kind(), auth::v1::DEVICE_KIND_MOBILE);
  EXPECT_EQ(presence.devices(1).name(), "laptop");
  EXPECT_FALSE(presence.has_last_seen());

  node->OnStreamClosed(bob_, 21);
  ASSERT_TRUE(WaitUntil(
      [&] { return QueryOne(alice_, bob_).devices_size() == 1; }, kWait));
  presence = QueryOne(alice_, bob_);
  EXPECT_EQ(presence.state(), PRESENCE_STATE_ONLINE);
  EXPECT_EQ(presence.devices(0).name(), "laptop");

  const absl::Time before_close = absl::Now();
  node->OnStreamClosed(bob_, 22);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return QueryOne(alice_, bob_).state() == PRESENCE_STATE_OFFLINE;
      },
      kWait));
  presence = QueryOne(alice_, bob_);
  EXPECT_EQ(presence.devices_size(), 0);
  ASSERT_TRUE(presence.has_last_seen());
  EXPECT_GE(FromProtoTime(presence.last_seen()), before_close);
  EXPECT_LE(FromProtoTime(presence.last_seen()), absl::Now());
}

TEST_F(PresenceServiceTest, DeadNodesLeasesExpireWithinTheBound) {
  UseShortTtl();
  std::unique_ptr<PresenceLeaseClient> node = LeaseClient("node-dies");
  node->OnStreamOpened(Stream(bob_, 21, "phone"));
  BatchReader reader(stub(), Token(alice_), {bob_});
  ASSERT_TRUE(reader.Next(kWait).has_value());  // snapshot
  ASSERT_TRUE(WaitUntil(
      [&] { return QueryOne(alice_, bob_).state() == PRESENCE_STATE_ONLINE; },
      kWait));
  // Several TTLs pass: heartbeats keep the lease.
  absl::SleepFor(3 * kTtl);
  EXPECT_EQ(QueryOne(alice_, bob_).state(), PRESENCE_STATE_ONLINE);

  // The node dies: no close, no more heartbeats.
  const absl::Time died = absl::Now();
  node.reset();
  std::optional<PresenceBatch> offline;
  while ((offline = reader.Next(kWait)).has_value()) {
    const v1::Presence* bob = Find(*offline, bob_);
    if (bob != nullptr && bob->state() == PRESENCE_STATE_OFFLINE) break;
  }
  ASSERT_TRUE(offline.has_value());
  const absl::Duration took = absl::Now() - died;
  // Never before the TTL ran out since the last heartbeat (at most a third
  // of a TTL before `died`), and within TTL + ticks + one window.
  EXPECT_GE(took, kTtl - kTtl / 3);
  EXPECT_LE(took, kTtl + 5 * kTick + 2 * kWindow + absl::Milliseconds(500));
}

TEST_F(PresenceServiceTest, FlappingWithinGraceEmitsNothing) {
  std::string node = "n1";
  uint64_t lease = Open(node, bob_, 21);
  BatchReader reader(stub(), Token(alice_), {bob_, carol_});
  std::optional<PresenceBatch> snapshot = reader.Next(kWait);
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_TRUE(snapshot->snapshot());
  ASSERT_EQ(Find(*snapshot, bob_)->state(), PRESENCE_STATE_ONLINE);
  const auto online_since = Find(*snapshot, bob_)->devices(0).online_since();

  for (int i = 0; i < 6; ++i) {
    Close(node, lease);
    EXPECT_EQ(harness_->service()->stats().leases, 0u);
    absl::SleepFor(kGrace / 3);
    // Back on the same node or another, as after a reconnect.
    node = i % 2 == 0 ? "n2" : "n1";
    lease = Open(node, bob_, 21);
    absl::SleepFor(kGrace / 3);
  }
  // A marker change after the flaps: the next batch must hold only carol.
  absl::SleepFor(kGrace + kWindow);
  Open("n1", carol_, 31);
  std::optional<PresenceBatch> next = reader.Next(kWait);
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->snapshot());
  EXPECT_EQ(UserIds(*next), (std::vector<uint64_t>{carol_}));
  const v1::Presence bob = QueryOne(alice_, bob_);
  EXPECT_EQ(bob.state(), PRESENCE_STATE_ONLINE);
  ASSERT_EQ(bob.devices_size(), 1);
  EXPECT_EQ(bob.devices(0).online_since().seconds(), online_since.seconds());
  EXPECT_EQ(bob.devices(0).online_since().nanos(), online_since.nanos());
}

TEST_F(PresenceServiceTest, SubscriptionShowsOnlySharedConversationUsers) {
  const uint64_t nobody = 987654;
  BatchReader reader(stub(), Token(alice_),
                     {bob_, dave_, nobody, carol_, alice_, bob_});
  std::optional<PresenceBatch> snapshot = reader.Next(kWait);
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_TRUE(snapshot->snapshot());
  // Each requested user once, in request order.
  EXPECT_EQ(UserIds(*snapshot),
            (std::vector<uint64_t>{bob_, dave_, nobody, carol_, alice_}));
  EXPECT_EQ(Find(*snapshot, bob_)->state(), PRESENCE_STATE_OFFLINE);
  EXPECT_EQ(Find(*snapshot, carol_)->state(), PRESENCE_STATE_OFFLINE);
  EXPECT_EQ(Find(*snapshot, alice_)->state(), PRESENCE_STATE_OFFLINE);
  // dave exists but shares nothing with alice: same answer as no user.
  v1::Presence dave = *Find(*snapshot, dave_);
  v1::Presence missing = *Find(*snapshot, nobody);
  EXPECT_EQ(dave.state(), PRESENCE_STATE_UNKNOWN);
  dave.set_user_id(0);
  missing.set_user_id(0);
  EXPECT_EQ(dave.SerializeAsString(), missing.SerializeAsString());

  // dave comes online: alice hears nothing of it.
  Open("n1", dave_, 41);
  absl::SleepFor(kWindow * 3);
  Open("n1", bob_, 21);
  std::optional<PresenceBatch> next = reader.Next(kWait);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(UserIds(*next), (std::vector<uint64_t>{bob_}));
  EXPECT_EQ(next->presences(0).state(), PRESENCE_STATE_ONLINE);
  EXPECT_EQ(next->presences(0).devices(0).name(), "phone");
  // bob, who shares a conversation with dave, sees him.
  EXPECT_EQ(QueryOne(bob_, dave_).state(), PRESENCE_STATE_ONLINE);
}

TEST_F(PresenceServiceTest, QueryHidesUsersWithoutASharedConversation) {
  Open("n1", dave_, 41);
  v1::QueryResponse response;
  ASSERT_TRUE(
      Query(Token(alice_), {dave_, bob_, 555555, alice_, dave_}, &response)
          .ok());
  ASSERT_EQ(response.presences_size(), 5);
  EXPECT_EQ(response.presences(0).user_id(), dave_);
  EXPECT_EQ(response.presences(0).state(), PRESENCE_STATE_UNKNOWN);
  EXPECT_EQ(response.presences(0).devices_size(), 0);
  EXPECT_EQ(response.presences(1).state(), PRESENCE_STATE_OFFLINE);
  EXPECT_EQ(response.presences(2).state(), PRESENCE_STATE_UNKNOWN);
  EXPECT_EQ(response.presences(3).state(), PRESENCE_STATE_OFFLINE);
  EXPECT_EQ(response.presences(4).state(), PRESENCE_STATE_UNKNOWN);
  // Internal callers (the message service) see everyone.
  ASSERT_TRUE(Query(Internal(), {dave_}, &response).ok());
  EXPECT_EQ(response.presences(0).state(), PRESENCE_STATE_ONLINE);
}

TEST_F(PresenceServiceTest, NewConversationPartnerBecomesVisibleToSubscriber) {
  Open("n1", dave_, 41);
  BatchReader reader(stub(), Token(alice_), {dave_});
  std::optional<PresenceBatch> snapshot = reader.Next(kWait);
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->presences(0).state(), PRESENCE_STATE_UNKNOWN);
  ASSERT_TRUE(database_.log()
                  ->GetOrCreateDirect(alice_, dave_, "", absl::Now())
                  .ok());
  std::optional<PresenceBatch> next = reader.Next(kWait);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(UserIds(*next), (std::vector<uint64_t>{dave_}));
  EXPECT_EQ(next->presences(0).state(), PRESENCE_STATE_ONLINE);
}

TEST_F(PresenceServiceTest, LastSeenPersistedOnOfflineNotOnEveryFlap) {
  uint64_t lease = Open("n1", bob_, 21);
  for (int i = 0; i < 5; ++i) {
    Close("n1", lease);
    absl::SleepFor(kGrace / 3);
    lease = Open("n1", bob_, 21);
  }
  absl::SleepFor(kGrace + 10 * absl::Milliseconds(20));
  EXPECT_EQ(harness_->users()->rows_for(bob_), 0);

  Close("n1", lease);
  ASSERT_TRUE(WaitUntil(
      [&] { return harness_->users()->rows_for(bob_) == 1; }, kWait));
  const v1::Presence offline = QueryOne(alice_, bob_);
  ASSERT_EQ(offline.state(), PRESENCE_STATE_OFFLINE);
  absl::StatusOr<storage::UserRecord> stored = database_.users()->GetUser(bob_);
  ASSERT_TRUE(stored.ok());
  ASSERT_TRUE(stored->last_seen_at.has_value());
  EXPECT_EQ(absl::ToUnixMicros(*stored->last_seen_at),
            absl::ToUnixMicros(FromProtoTime(offline.last_seen())));

  // Real offline transitions within the interval are not written again.
  absl::Time seen = FromProtoTime(offline.last_seen());
  for (int i = 0; i < 3; ++i) {
    lease = Open("n1", bob_, 21);
    Close("n1", lease);
    ASSERT_TRUE(WaitUntil(
        [&] {
          const v1::Presence now = QueryOne(alice_, bob_);
          return now.state() == PRESENCE_STATE_OFFLINE &&
                 FromProtoTime(now.last_seen()) > seen;
        },
        kWait));
    seen = FromProtoTime(QueryOne(alice_, bob_).last_seen());
  }
  absl::SleepFor(10 * absl::Milliseconds(20));
  EXPECT_EQ(harness_->users()->rows_for(bob_), 1);

  // Shutdown writes the newest value; a restarted presence serves it.
  const v1::Presence latest = QueryOne(alice_, bob_);
  harness_->Restart();
  EXPECT_EQ(harness_->users()->rows_for(bob_), 2);
  const v1::Presence after_restart = QueryOne(alice_, bob_);
  EXPECT_EQ(after_restart.state(), PRESENCE_STATE_OFFLINE);
  ASSERT_TRUE(after_restart.has_last_seen());
  EXPECT_EQ(absl::ToUnixMicros(FromProtoTime(after_restart.last_seen())),
            absl::ToUnixMicros(FromProtoTime(latest.last_seen())));
}

TEST_F(PresenceServiceTest, LeaseClientResyncsAfterPresenceRestarts) {
  UseShortTtl();
  std::unique_ptr<PresenceLeaseClient> node = LeaseClient("node-r");
  node->OnStreamOpened(Stream(bob_, 21, "phone"));
  node->OnStreamOpened(Stream(carol_, 31, "web"));
  ASSERT_TRUE(WaitUntil(
      [&] {
        return QueryOne(alice_, bob_).state() == PRESENCE_STATE_ONLINE &&
               QueryOne(alice_, carol_).state() == PRESENCE_STATE_ONLINE;
      },
      kWait));
  harness_->Restart();  // memory lost
  ASSERT_TRUE(WaitUntil(
      [&] {
        return QueryOne(alice_, bob_).state() == PRESENCE_STATE_ONLINE &&
               QueryOne(alice_, carol_).state() == PRESENCE_STATE_ONLINE;
      },
      kWait));
  EXPECT_GE(node->stats().resyncs, 1u);
  EXPECT_EQ(harness_->service()->stats().leases, 2u);
  EXPECT_EQ(QueryOne(alice_, carol_).devices(0).name(), "web");
  // Closes after the resync still reach presence.
  node->OnStreamClosed(carol_, 31);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return QueryOne(alice_, carol_).state() == PRESENCE_STATE_OFFLINE;
      },
      kWait));
  EXPECT_EQ(QueryOne(alice_, bob_).state(), PRESENCE_STATE_ONLINE);
}

TEST_F(PresenceServiceTest, HeartbeatAsksForResyncWhenCountsDiffer) {
  v1::HeartbeatResponse response;
  ASSERT_TRUE(Heartbeat(Internal(), "n9", 2, &response).ok());
  EXPECT_TRUE(response.resync());
  EXPECT_EQ(response.renewed(), 0u);
  EXPECT_EQ(response.ttl_ms(), 30000u);
  Open("n9", bob_, 21);
  Open("n9", carol_, 31);
  ASSERT_TRUE(Heartbeat(Internal(), "n9", 2, &response).ok());
  EXPECT_FALSE(response.resync());
  EXPECT_EQ(response.renewed(), 2u);
}

TEST_F(PresenceServiceTest, StatusTextIsSharedWithPartnersOnly) {
  BatchReader reader(stub(), Token(alice_), {bob_});
  ASSERT_TRUE(reader.Next(kWait).has_value());
  v1::SetStatusRequest request;
  request.set_status_text("at lunch \xF0\x9F\x8D\x95");
  v1::SetStatusResponse response;
  ASSERT_TRUE(stub()
                  ->SetStatus(PresenceHarness::Context(Token(bob_)).get(),
                              request, &response)
                  .ok());
  std::optional<PresenceBatch> next = reader.Next(kWait);
  ASSERT_TRUE(next.has_value());
  ASSERT_EQ(next->presences_size(), 1);
  EXPECT_EQ(next->presences(0).status_text(), request.status_text());
  EXPECT_EQ(next->presences(0).state(), PRESENCE_STATE_OFFLINE);
  EXPECT_EQ(QueryOne(dave_, bob_).status_text(), request.status_text());
  EXPECT_EQ(QueryOne(carol_, bob_).state(), PRESENCE_STATE_UNKNOWN);
  EXPECT_EQ(QueryOne(carol_, bob_).status_text(), "");
  EXPECT_EQ(database_.users()->GetUser(bob_)->status_text,
            request.status_text());
  // A restarted presence reads it back.
  harness_->Restart();
  EXPECT_EQ(QueryOne(alice_, bob_).status_text(), request.status_text());
}

TEST_F(PresenceServiceTest, RevokedSessionEndsItsSubscriptions) {
  BatchReader reader(stub(), harness_->UserToken(alice_, 777), {bob_});
  ASSERT_TRUE(reader.Next(kWait).has_value());
  harness_->revocations()->Add(777, alice_, absl::Now());
  const std::optional<grpc::Status> status = reader.Finished(kWait);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(PresenceServiceTest, ShutdownEndsSubscriptionsWithUnavailable) {
  BatchReader reader(stub(), Token(alice_), {bob_});
  ASSERT_TRUE(reader.Next(kWait).has_value());
  harness_->service()->Shutdown();
  const std::optional<grpc::Status> status = reader.Finished(kWait);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(PresenceServiceTest, BurstsAreCoalescedIntoOneBatchPerWindow) {
  BatchReader reader(stub(), Token(alice_), {bob_, carol_});
  ASSERT_TRUE(reader.Next(kWait).has_value());
  // Many changes inside one window: a device and status each.
  Open("n1", bob_, 21, "a");
  Open("n1", bob_, 21, "b");
  Open("n1", bob_, 21, "c");
  Open("n1", carol_, 31, "x");
  std::vector<PresenceBatch> batches;
  while (auto batch = reader.Next(kWindow * 4)) batches.push_back(*batch);
  ASSERT_FALSE(batches.empty());
  // Each user at most once per batch, and the last state wins.
  const v1::Presence* bob = nullptr;
  for (const PresenceBatch& batch : batches) {
    std::vector<uint64_t> ids = UserIds(batch);
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
    if (Find(batch, bob_) != nullptr) bob = Find(batch, bob_);
  }
  ASSERT_NE(bob, nullptr);
  EXPECT_EQ(bob->devices(0).name(), "c");
}

}  // namespace
}  // namespace im::presence
