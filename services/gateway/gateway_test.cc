// The gateway in-process in front of a real gRPC server (a small
// AuthService stand-in), driven over real HTTP/1.1 sockets.

#include "services/gateway/gateway.h"

#include <grpcpp/grpcpp.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "im/auth/v1/auth.grpc.pb.h"
#include "services/common/grpc_server.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/grpc_web_codec.h"

namespace im::gateway {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr char kAllowedOrigin[] = "http://app.example.test";
constexpr char kLoginPath[] = "/im.auth.v1.AuthService/Login";
constexpr char kWhoAmIPath[] = "/im.auth.v1.AuthService/WhoAmI";
constexpr char kWatchPath[] = "/im.auth.v1.AuthService/WatchRevocations";

// ---- The backend ----

// Login: "bad" fails with UNAUTHENTICATED; others get a token.
// WhoAmI: needs "authorization: Bearer good"; adds a trailer.
// WatchRevocations: sends batch 1, waits for release_second, sends batch 2
// and ends OK; in hold mode it instead waits for cancellation after batch 1.
class FakeAuthService final : public auth::v1::AuthService::Service {
 public:
  grpc::Status Login(grpc::ServerContext* context,
                     const auth::v1::LoginRequest* request,
                     auth::v1::LoginResponse* response) override {
    RecordCall(context);
    if (request->username() == "bad") {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "wrong username or password");
    }
    response->mutable_tokens()->set_access_token(
        absl::StrCat("token-for-", request->username()));
    response->mutable_tokens()->set_user_id(7);
    return grpc::Status::OK;
  }

  grpc::Status WhoAmI(grpc::ServerContext* context,
                      const auth::v1::WhoAmIRequest*,
                      auth::v1::WhoAmIResponse* response) override {
    RecordCall(context);
    auto it = context->client_metadata().find("authorization");
    if (it == context->client_metadata().end() ||
        it->second != "Bearer good") {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "missing or invalid bearer token");
    }
    context->AddTrailingMetadata("x-trace", "abc");
    response->mutable_user()->set_user_id(42);
    response->mutable_user()->set_username("alice");
    response->set_session_id(9);
    return grpc::Status::OK;
  }

  grpc::Status WatchRevocations(
      grpc::ServerContext* context, const auth::v1::WatchRevocationsRequest*,
      grpc::ServerWriter<auth::v1::RevocationBatch>* writer) override {
    RecordCall(context);
    auth::v1::RevocationBatch first;
    first.set_snapshot(true);
    first.add_sessions()->set_session_id(1);
    writer->Write(first);
    if (hold_.load()) {
      // Stays open until the caller goes away.
      while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
      // Only the first cancellation notifies; later ones just count.
      if (cancellations_.fetch_add(1) == 0) cancelled_.Notify();
      return grpc::Status::CANCELLED;
    }
    release_second_.WaitForNotification();
    auth::v1::RevocationBatch second;
    second.add_sessions()->set_session_id(2);
    second.add_sessions()->set_session_id(3);
    writer->Write(second);
    return grpc::Status::OK;
  }

  int calls() const { return calls_.load(); }
  std::string last_authorization() {
    absl::MutexLock lock(&mu_);
    return last_authorization_;
  }
  std::string last_request_id() {
    absl::MutexLock lock(&mu_);
    return last_request_id_;
  }
  bool last_had_cookie() {
    absl::MutexLock lock(&mu_);
    return last_had_cookie_;
  }
  std::string last_forwarded_for() {
    absl::MutexLock lock(&mu_);
    return last_forwarded_for_;
  }
  std::optional<absl::Duration> last_deadline_left() {
    absl::MutexLock lock(&mu_);
    return last_deadline_left_;
  }

  std::atomic<bool> hold_{false};
  absl::Notification release_second_;
  absl::Notification cancelled_;
  std::atomic<int> cancellations_{0};

 private:
  void RecordCall(grpc::ServerContext* context) {
    calls_.fetch_add(1);
    absl::MutexLock lock(&mu_);
    const auto& md = context->client_metadata();
    auto auth = md.find("authorization");
    last_authorization_ =
        auth == md.end() ? "" : std::string(auth->second.data(),
                                            auth->second.size());
    last_had_cookie_ = md.find("cookie") != md.end();
    auto forwarded = md.find("x-forwarded-for");
    last_forwarded_for_ =
        forwarded == md.end()
            ? ""
            : std::string(forwarded->second.data(), forwarded->second.size());
    auto id = md.find("x-request-id");
    last_request_id_ =
        id == md.end() ? "" : std::string(id->second.data(), id->second.size());
    const absl::Time deadline = absl::FromChrono(context->deadline());
    last_deadline_left_ = deadline == absl::InfiniteFuture() ||
                                  deadline > absl::Now() + absl::Hours(1000)
                              ? std::nullopt
                              : std::optional(deadline - absl::Now());
  }

  std::atomic<int> calls_{0};
  absl::Mutex mu_;
  std::string last_authorization_ ABSL_GUARDED_BY(mu_);
  std::string last_request_id_ ABSL_GUARDED_BY(mu_);
  std::string last_forwarded_for_ ABSL_GUARDED_BY(mu_);
  bool last_had_cookie_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Duration> last_deadline_left_ ABSL_GUARDED_BY(mu_);
};

// ---- Reading grpc-web bodies (independent of the gateway's codec) ----

struct Frame {
  uint8_t flags;
  std::string payload;
};

// Frames of a binary grpc-web body; fails the test on a partial frame.
std::vector<Frame> ParseFrames(const std::string& body) {
  std::vector<Frame> frames;
  size_t pos = 0;
  while (pos < body.size()) {
    EXPECT_GE(body.size() - pos, 5u) << "partial frame header";
    if (body.size() - pos < 5) break;
    const uint8_t flags = static_cast<uint8_t>(body[pos]);
    const size_t length = (static_cast<uint8_t>(body[pos + 1]) << 24) |
                          (static_cast<uint8_t>(body[pos + 2]) << 16) |
                          (static_cast<uint8_t>(body[pos + 3]) << 8) |
                          static_cast<uint8_t>(body[pos + 4]);
    EXPECT_GE(body.size() - pos - 5, length) << "partial frame";
    if (body.size() - pos - 5 < length) break;
    frames.push_back({flags, body.substr(pos + 5, length)});
    pos += 5 + length;
  }
  return frames;
}

// Text bodies: padded base64 chunks, each decoded on its own.
std::string DecodeTextBody(const std::string& body) {
  std::string out;
  size_t start = 0;
  for (size_t i = 0; i + 4 <= body.size(); i += 4) {
    if (body[i + 3] != '=' && i + 4 != body.size()) continue;
    std::string chunk;
    EXPECT_TRUE(absl::Base64Unescape(body.substr(start, i + 4 - start), &chunk))
        << body;
    out += chunk;
    start = i + 4;
  }
  EXPECT_EQ(start, body.size()) << "text body is not padded base64";
  return out;
}

std::map<std::string, std::string> ParseTrailerBlock(const std::string& block) {
  std::map<std::string, std::string> trailers;
  size_t pos = 0;
  while (pos < block.size()) {
    const size_t end = block.find("\r\n", pos);
    EXPECT_NE(end, std::string::npos) << "trailer line without CRLF";
    if (end == std::string::npos) break;
    const std::string line = block.substr(pos, end - pos);
    const size_t colon = line.find(':');
    EXPECT_NE(colon, std::string::npos) << line;
    std::string value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    trailers[line.substr(0, colon)] = value;
    pos = end + 2;
  }
  return trailers;
}

std::string RawFrame(uint8_t flags, const std::string& payload) {
  std::string frame(5, '\0');
  frame[0] = static_cast<char>(flags);
  frame[1] = static_cast<char>((payload.size() >> 24) & 0xff);
  frame[2] = static_cast<char>((payload.size() >> 16) & 0xff);
  frame[3] = static_cast<char>((payload.size() >> 8) & 0xff);
  frame[4] = static_cast<char>(payload.size() & 0xff);
  return frame + payload;
}

std::string Framed(const google::protobuf::Message& message) {
  return RawFrame(0x00, message.SerializeAsString());
}

// ---- A small HTTP/1.1 client ----

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpResult {
  int status = 0;
  http::response<http::string_body> response;
  std::string header(const std::string& name) const {
    auto it = response.find(name);
    return it == response.end() ? "" : std::string(it->value());
  }
  bool has_header(const std::string& name) const {
    return response.find(name) != response.end();
  }
};

class HttpConnection {
 public:
  explicit HttpConnection(int port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"),
                                  static_cast<uint16_t>(port)));
  }

  void Send(http::verb verb, const std::string& target, const Headers& headers,
            const std::string& body) {
    http::request<http::string_body> req(verb, target, 11);
    req.set(http::field::host, "gateway.test");
    for (const auto& [name, value] : headers) req.set(name, value);
    req.body() = body;
    req.prepare_payload();
    http::write(socket_, req);
  }

  HttpResult Read() {
    HttpResult result;
    http::read(socket_, buffer_, result.response);
    result.status = result.response.result_int();
    return result;
  }

  HttpResult RoundTrip(http::verb verb, const std::string& target,
                       const Headers& headers, const std::string& body = "") {
    Send(verb, target, headers, body);
    return Read();
  }

  // Streaming: reads the header, then body bytes until `done` says enough.
  void StartStreamRead() {
    parser_.emplace();
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    http::read_header(socket_, buffer_, *parser_);
  }
  const http::response<http::string_body>& stream_header() {
    return parser_->get();
  }
  // Reads until the decoded body holds `frames` complete frames or the
  // response ends; returns the body so far (raw, as sent).
  std::string ReadUntilFrames(size_t frames, bool text) {
    while (!parser_->is_done()) {
      const std::string& body = parser_->get().body();
      const std::string binary = text ? DecodeTextBody(body) : body;
      if (CountCompleteFrames(binary) >= frames) break;
      http::read_some(socket_, buffer_, *parser_);
    }
    return parser_->get().body();
  }
  bool stream_done() const { return parser_->is_done(); }
  // Reads the rest of the streamed response (through the last chunk).
  std::string ReadToEnd() {
    while (!parser_->is_done()) http::read_some(socket_, buffer_, *parser_);
    return parser_->get().body();
  }

  void Close() {
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  // True when the server has closed the connection.
  bool PeerClosed() {
    beast::error_code ec;
    char byte;
    socket_.read_some(net::buffer(&byte, 1), ec);
    return ec == net::error::eof || ec == net::error::connection_reset;
  }

 private:
  static size_t CountCompleteFrames(const std::string& body) {
    size_t count = 0;
    size_t pos = 0;
    while (body.size() - pos >= 5) {
      const size_t length = (static_cast<uint8_t>(body[pos + 1]) << 24) |
                            (static_cast<uint8_t>(body[pos + 2]) << 16) |
                            (static_cast<uint8_t>(body[pos + 3]) << 8) |
                            static_cast<uint8_t>(body[pos + 4]);
      if (body.size() - pos - 5 < length) break;
      pos += 5 + length;
      ++count;
    }
    return count;
  }

  net::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
};

Headers GrpcWebHeaders(bool text = false) {
  return {{"content-type",
           text ? "application/grpc-web-text" : "application/grpc-web+proto"},
          {"x-grpc-web", "1"}};
}

// ---- The fixture ----

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions server_options;
    server_options.name = "im.auth.v1.AuthService";
    absl::StatusOr<std::unique_ptr<GrpcServer>> server =
        GrpcServer::Start(server_options, {&service_});
    ASSERT_TRUE(server.ok()) << server.status();
    backend_ = std::move(*server);
    metrics_ = MakePrometheusGatewayMetrics(registry_);
  }

  void TearDown() override {
    if (gateway_ != nullptr) gateway_->Shutdown(absl::ZeroDuration());
    if (!service_.release_second_.HasBeenNotified()) {
      service_.release_second_.Notify();
    }
    backend_->Shutdown(absl::ZeroDuration());
  }

  GatewayOptions DefaultOptions() {
    GatewayOptions options;
    options.listen_address = "127.0.0.1:0";
    options.routes = {{"/im.auth.v1.AuthService/", backend_->address()}};
    options.cors_allowed_origins = {kAllowedOrigin};
    options.max_request_bytes = 4096;
    options.max_calls_per_client = 3;
    return options;
  }

  void StartGateway(const GatewayOptions& options) {
    absl::StatusOr<std::unique_ptr<Gateway>> gateway =
        Gateway::Start(options, metrics_.get());
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = std::move(*gateway);
  }
  void StartGateway() { StartGateway(DefaultOptions()); }

  std::string MetricsText() {
    return prometheus::TextSerializer().Serialize(registry_.Collect());
  }

  // A WatchRevocations stream whose first message has arrived; null (and
  // a test failure) otherwise.
  std::unique_ptr<HttpConnection> OpenHeldStream() {
    auto conn = std::make_unique<HttpConnection>(gateway_->port());
    conn->Send(http::verb::post, kWatchPath, GrpcWebHeaders(),
               Framed(auth::v1::WatchRevocationsRequest()));
    conn->StartStreamRead();
    const size_t frames = ParseFrames(conn->ReadUntilFrames(1, false)).size();
    EXPECT_EQ(frames, 1u);
    return frames == 1 ? std::move(conn) : nullptr;
  }

  // Waits (bounded) until the gateway has no calls in flight.
  bool AwaitNoLiveCalls() {
    for (int i = 0; i < 1000 && gateway_->live_calls() != 0; ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return gateway_->live_calls() == 0;
  }

  FakeAuthService service_;
  std::unique_ptr<GrpcServer> backend_;
  prometheus::Registry registry_;
  std::unique_ptr<GatewayMetrics> metrics_;
  std::unique_ptr<Gateway> gateway_;
};

auth::v1::LoginRequest LoginAs(const std::string& username) {
  auth::v1::LoginRequest request;
  request.set_username(username);
  request.set_password("password123");
  return request;
}

// ---- Unary ----

TEST_F(GatewayTest, UnaryBinaryCallReturnsMessageThenTrailerFrame) {
  StartGateway();
  HttpConnection conn(gateway_->port());
  HttpResult result = conn.RoundTrip(http::verb::post, kLoginPath,
                                     GrpcWebHeaders(), Framed(LoginAs("alice")));
  ASSERT_EQ(result.status, 200);
  EXPECT_EQ(result.header("content-type"), "application/grpc-web+proto");
  std::vector<Frame> frames = ParseFrames(result.response.body());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].flags, 0x00);
  auth::v1::LoginResponse response;
  ASSERT_TRUE(response.ParseFromString(frames[0].payload));
  EXPECT_EQ(response.tokens().access_token(), "token-for-alice");
  EXPECT_EQ(response.tokens().user_id(), 7u);
  EXPECT_EQ(frames[1].flags, 0x80);
  std::map<std::string, std::string> trailers =
      ParseTrailerBlock(frames[1].payload);
  EXPECT_EQ(trailers["grpc-status"], "0");
  EXPECT_EQ(trailers.count("grpc-message"), 0u);
}

TEST_F(GatewayTest, UnaryTextCallAcceptsChunkedBase64AndAnswersInBase64) {
  StartGateway();
  HttpConnection conn(gateway_->port());
  // The request as two padded base64 chunks: frame header, then payload.
  const std::string frame = Framed(LoginAs("bob"));
  const std::string body = absl::Base64Escape(frame.substr(0, 5)) +
                           absl::Base64Escape(frame.substr(5));
  HttpResult result =
      conn.RoundTrip(http::verb::post, kLoginPath, GrpcWebHeaders(true), body);
  ASSERT_EQ(result.status, 200);
  EXPECT_EQ(result.header("content-type"), "application/grpc-web-text+proto");
  std::vector<Frame> frames = ParseFrames(DecodeTextBody(result.response.body()));
  ASSERT_EQ(frames.size(), 2u);
  auth::v1::LoginResponse response;
  ASSERT_TRUE(response.ParseFromString(frames[0].payload));
  EXPECT_EQ(response.tokens().access_token(), "token-for-bob");
  EXPECT_EQ(frames[1].flags, 0x80);
  EXPECT_EQ(ParseTrailerBlock(frames[1].payload)["grpc-status"], "0");
}

TEST_F(GatewayTest, BackendErrorIsATrailersOnlyResponse) {
  StartGateway();
  HttpConnection conn(gateway_->port());
  for (bool text : {false, true}) {
    std::string body = Framed(LoginAs("bad"));
    if (text) body = absl::Base64Escape(body);
    HttpResult result =
        conn.RoundTrip(http::verb::post, kLoginPath, GrpcWebHeaders(text), body);
    ASSERT_EQ(result.status, 200);
    EXPECT_EQ(result.header("grpc-status"), "16");
    EXPECT_EQ(result.header("grpc-message"), "wrong username or password");
    EXPECT_EQ(result.response.body(), "");
  }
}

TEST_F(GatewayTest, PassesAuthorizationAndTimeoutAndReturnsTrailers) {
  StartGateway();
  HttpConnection conn(gateway_->port());
  const std::string body = Framed(auth::v1::WhoAmIRequest());

  HttpResult anonymous =
      conn.RoundTrip(http::verb::post, kWhoAmIPath, GrpcWebHeaders(), body);
  EXPECT_EQ(anonymous.header("grpc-status"), "16");
  EXPECT_EQ(service_.last_authorization(), "");
  EXPECT_FALSE(service_.last_deadline_left().has_value());
  EXPECT_EQ(service_.last_forwarded_for(), "127.0.0.1");

  Headers headers = GrpcWebHeaders();
  headers.push_back({"authorization", "Bearer good"});
  headers.push_back({"x-request-id", "req-1"});
  headers.push_back({"grpc-timeout", "5S"});
  headers.push_back({"cookie", "session=should-not-pass"});
  headers.push_back({"x-forwarded-for", "203.0.113.9"});
  HttpResult result = conn.RoundTrip(http::verb::post, kWhoAmIPath, headers, body);
  ASSERT_EQ(result.status, 200);
  std::vector<Frame> frames = ParseFrames(result.response.body());
  ASSERT_EQ(frames.size(), 2u);
  auth::v1::WhoAmIResponse response;
  ASSERT_TRUE(response.ParseFromString(frames[0].payload));
  EXPECT_EQ(response.user().user_id(), 42u);
  std::map<std::string, std::string> trailers =
      ParseTrailerBlock(frames[1].payload);
  EXPECT_EQ(trailers["grpc-status"], "0");
  EXPECT_EQ(trailers["x-trace"], "abc");
  EXPECT_EQ(service_.last_authorization(), "Bearer good");
  EXPECT_EQ(service_.last_request_id(), "req-1");
  EXPECT_FALSE(service_.last_had_cookie());
  // The gateway appends the address it saw; services trust only that one.
  EXPECT_EQ(service_.last_forwarded_for(), "203.0.113.9, 127.0.0.1");
  std::optional<absl::Duration> left = service_.last_deadline_left();
  ASSERT_TRUE(left.has_value());
  EXPECT_GT(*left, absl::ZeroDuration());
  // The backend sees the browser's 5 s budget (plus clock rounding).
  EXPECT_LE(*left, absl::Seconds(6));
}

TEST_F(GatewayTest, RefusesMalformedCallsWithExactCodes) {
  StartGateway();
  HttpConnection conn(gateway_->port());
  struct Case {
    std::string path;
    Headers headers;
    std::string body;
    std::string code;
  };
  Headers bad_timeout = GrpcWebHeaders();
  bad_timeout.push_back({"grpc-timeout", "soon"});
  const std::vector<Case> cases = {
      {"/im.other.v1.Unknown/Call", GrpcWebHeaders(),
       Framed(LoginAs("x")), "12"},
      {kLoginPath, GrpcWebHeaders(), "\x00\x00\x00", "3"},
      {kLoginPath, GrpcWebHeaders(),
       Framed(LoginAs("x")) + Framed(LoginAs("y")), "3"},
      {kLoginPath, GrpcWebHeaders(true), "not base64!", "3"},
      {kLoginPath, bad_timeout, Framed(LoginAs("x")), "3"},
  };
  for (const Case& c : cases) {
    HttpResult result = conn.RoundTrip(http::verb::post, c.path, c.headers,
                                       c.body);
    EXPECT_EQ(result.status, 200) << c.path;
    EXPECT_EQ(result.header("grpc-status"), c.code) << c.path;
    EXPECT_FALSE(result.header("grpc-message").empty());
  }
  EXPECT_EQ(service_.calls(), 0);

  HttpResult json = conn.RoundTrip(
      http::verb::post, kLoginPath,
      {{"content-type", "application/grpc-web+json"}}, "{}");
  EXPECT_EQ(json.status, 415);
}

TEST_F(GatewayTest, UnreachableBackendIsUnavailable) {
  GatewayOptions options = DefaultOptions();
  // A port nothing listens on: bind one, note it, release it.
  net::io_context ioc;
  tcp::acceptor probe(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  const int dead_port = probe.local_endpoint().port();
  probe.close();
  options.routes = {
      {"/im.auth.v1.AuthService/", absl::StrCat("127.0.0.1:", dead_port)}};
  StartGateway(options);
  HttpConnection conn(gateway_->port());
  HttpResult result = conn.RoundTrip(http::verb::post, kLoginPath,
                                     GrpcWebHeaders(), Framed(LoginAs("a")));
  EXPECT_EQ(result.header("grpc-status"), "14");
}

// ---- Server streaming ----

void ExpectRevocationStream(FakeAuthService* service, int port, bool text) {
  HttpConnection conn(port);
  std::string body = Framed(auth::v1::WatchRevocationsRequest());
  if (text) body = absl::Base64Escape(body);
  conn.Send(http::verb::post, kWatchPath, GrpcWebHeaders(text), body);
  conn.StartStreamRead();
  EXPECT_EQ(conn.stream_header().result_int(), 200);
  EXPECT_TRUE(conn.stream_header().chunked());

  // The first batch reaches the browser while the backend still holds the
  // second back: messages are streamed, not buffered.
  std::string raw = conn.ReadUntilFrames(1, text);
  EXPECT_FALSE(conn.stream_done());
  std::vector<Frame> frames = ParseFrames(text ? DecodeTextBody(raw) : raw);
  ASSERT_EQ(frames.size(), 1u);
  auth::v1::RevocationBatch first;
  ASSERT_TRUE(first.ParseFromString(frames[0].payload));
  EXPECT_TRUE(first.snapshot());
  ASSERT_EQ(first.sessions_size(), 1);
  EXPECT_EQ(first.sessions(0).session_id(), 1u);

  service->release_second_.Notify();
  raw = conn.ReadToEnd();
  frames = ParseFrames(text ? DecodeTextBody(raw) : raw);
  ASSERT_EQ(frames.size(), 3u);
  auth::v1::RevocationBatch second;
  ASSERT_TRUE(second.ParseFromString(frames[1].payload));
  ASSERT_EQ(second.sessions_size(), 2);
  EXPECT_EQ(second.sessions(0).session_id(), 2u);
  EXPECT_EQ(second.sessions(1).session_id(), 3u);
  EXPECT_EQ(frames[2].flags, 0x80);
  EXPECT_EQ(ParseTrailerBlock(frames[2].payload)["grpc-status"], "0");
  if (text) {
    // Each frame is its own padded base64 chunk.
    EXPECT_EQ(raw, absl::Base64Escape(RawFrame(0x00, frames[0].payload)) +
                       absl::Base64Escape(RawFrame(0x00, frames[1].payload)) +
                       absl::Base64Escape(RawFrame(0x80, frames[2].payload)));
  }
  // The connection is kept alive for the next request.
  HttpResult next = conn.RoundTrip(http::verb::post, kLoginPath,
                                   GrpcWebHeaders(), Framed(LoginAs("c")));
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(ParseFrames(next.response.body()).size(), 2u);
}

TEST_F(GatewayTest, ServerStreamBinaryDeliversEachMessageAsItArrives) {
  StartGateway();
  ExpectRevocationStream(&service_, gateway_->port(), /*text=*/false);
}

TEST_F(GatewayTest, ServerStreamTextDeliversBase64ChunksAsTheyArrive) {
  StartGateway();
  ExpectRevocationStream(&service_, gateway_->port(), /*text=*/true);
}

TEST_F(GatewayTest, BrowserDisconnectCancelsTheBackendStream) {
  StartGateway();
  service_.hold_ = true;
  std::unique_ptr<HttpConnection> stream = OpenHeldStream();
  ASSERT_NE(stream, nullptr);
  HttpConnection& conn = *stream;
  EXPECT_EQ(gateway_->live_calls(), 1);
  EXPECT_FALSE(service_.cancelled_.HasBeenNotified());

  conn.Close();
  EXPECT_TRUE(service_.cancelled_.WaitForNotificationWithTimeout(
      absl::Seconds(30)));
  EXPECT_TRUE(AwaitNoLiveCalls());
  const std::string metrics = MetricsText();
  EXPECT_TRUE(absl::StrContains(
      metrics,
      "grpc_server_handled_total{grpc_code=\"Canceled\",grpc_method="
      "\"WatchRevocations\",grpc_service=\"im.auth.v1.AuthService\","
      "grpc_type=\"server_stream\"} 1"))
      << metrics;
}

TEST_F(GatewayTest, ShutdownEndsOpenStreams) {
  StartGateway();
  service_.hold_ = true;
  std::unique_ptr<HttpConnection> stream = OpenHeldStream();
  ASSERT_NE(stream, nullptr);
  HttpConnection& conn = *stream;
  gateway_->Shutdown(absl::Milliseconds(100));
  EXPECT_TRUE(service_.cancelled_.WaitForNotificationWithTimeout(
      absl::Seconds(30)));
  EXPECT_EQ(gateway_->live_calls(), 0);
  EXPECT_TRUE(conn.PeerClosed());
}

// ---- Limits ----

TEST_F(GatewayTest, OversizeRequestIsResourceExhaustedAndNeverForwarded) {
  StartGateway();
  auth::v1::LoginRequest big = LoginAs(std::string(5000, 'x'));
  {
    HttpConnection conn(gateway_->port());
    HttpResult result =
        conn.RoundTrip(http::verb::post, kLoginPath, GrpcWebHeaders(),
                       Framed(big));
    EXPECT_EQ(result.status, 200);
    EXPECT_EQ(result.header("grpc-status"), "8");
    EXPECT_TRUE(conn.PeerClosed());
  }
  {
    HttpConnection conn(gateway_->port());
    HttpResult result =
        conn.RoundTrip(http::verb::post, "/upload",
                       {{"content-type", "text/plain"}}, std::string(5000, 'x'));
    EXPECT_EQ(result.status, 413);
  }
  EXPECT_EQ(service_.calls(), 0);
}

TEST_F(GatewayTest, ConcurrentCallsPerClientAreLimited) {
  StartGateway();  // max_calls_per_client = 3
  service_.hold_ = true;
  std::vector<std::unique_ptr<HttpConnection>> streams;
  for (int i = 0; i < 3; ++i) {
    streams.push_back(OpenHeldStream());
    ASSERT_NE(streams.back(), nullptr);
  }
  HttpConnection extra(gateway_->port());
  HttpResult refused = extra.RoundTrip(http::verb::post, kLoginPath,
                                       GrpcWebHeaders(), Framed(LoginAs("d")));
  EXPECT_EQ(refused.header("grpc-status"), "8");

  streams[0]->Close();
  EXPECT_TRUE(service_.cancelled_.WaitForNotificationWithTimeout(
      absl::Seconds(30)));
  // A slot is free again once the closed stream is cleaned up.
  HttpResult accepted;
  for (int i = 0; i < 500; ++i) {
    accepted = extra.RoundTrip(http::verb::post, kLoginPath, GrpcWebHeaders(),
                               Framed(LoginAs("d")));
    if (accepted.header("grpc-status") != "8") break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(ParseFrames(accepted.response.body()).size(), 2u);
}

TEST_F(GatewayTest, IdleConnectionsAreClosed) {
  GatewayOptions options = DefaultOptions();
  options.idle_timeout = absl::Milliseconds(200);
  StartGateway(options);
  HttpConnection conn(gateway_->port());
  EXPECT_TRUE(conn.PeerClosed());
}

// ---- CORS ----

TEST_F(GatewayTest, PreflightGrantsAllowedOriginOnly) {
  StartGateway();
  HttpConnection conn(gateway_->port());
  const Headers preflight = {
      {"origin", kAllowedOrigin},
      {"access-control-request-method", "POST"},
      {"access-control-request-headers",
       "authorization,content-type,x-grpc-web,x-user-agent,grpc-timeout"}};
  HttpResult granted =
      conn.RoundTrip(http::verb::options, kLoginPath, preflight);
  EXPECT_EQ(granted.status, 204);
  EXPECT_EQ(granted.header("access-control-allow-origin"), kAllowedOrigin);
  const std::string allow_headers =
      granted.header("access-control-allow-headers");
  for (const char* name : {"authorization", "content-type", "x-grpc-web",
                           "x-user-agent", "grpc-timeout"}) {
    EXPECT_TRUE(absl::StrContains(allow_headers, name)) << name;
  }
  EXPECT_TRUE(absl::StrContains(granted.header("access-control-allow-methods"),
                                "POST"));
  const std::string expose = granted.header("access-control-expose-headers");
  EXPECT_TRUE(absl::StrContains(expose, "grpc-status"));
  EXPECT_TRUE(absl::StrContains(expose, "grpc-message"));

  Headers evil = preflight;
  evil[0].second = "http://evil.example.test";
  HttpResult denied = conn.RoundTrip(http::verb::options, kLoginPath, evil);
  EXPECT_EQ(denied.status, 403);
  EXPECT_FALSE(denied.has_header("access-control-allow-origin"));
  EXPECT_FALSE(denied.has_header("access-control-allow-headers"));
  EXPECT_FALSE(denied.has_header("access-control-allow-methods"));
}

TEST_F(GatewayTest, CallsFromUngrantedOriginsAreNotForwarded) {
  StartGateway();
  HttpConnection conn(gateway_->port());
  Headers allowed = GrpcWebHeaders();
  allowed.push_back({"origin", kAllowedOrigin});
  HttpResult ok = conn.RoundTrip(http::verb::post, kLoginPath, allowed,
                                 Framed(LoginAs("e")));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.header("access-control-allow-origin"), kAllowedOrigin);
  EXPECT_TRUE(absl::StrContains(ok.header("access-control-expose-headers"),
                                "grpc-status"));
  EXPECT_EQ(service_.calls(), 1);

  // The gateway's own origin needs no allow-list entry.
  Headers same = GrpcWebHeaders();
  same.push_back({"origin", "http://gateway.test"});
  HttpResult own = conn.RoundTrip(http::verb::post, kLoginPath, same,
                                  Framed(LoginAs("f")));
  EXPECT_EQ(own.status, 200);
  EXPECT_EQ(service_.calls(), 2);

  for (const char* origin :
       {"http://evil.example.test", "null", "http://app.example.test.evil",
        "http://gateway.test.evil"}) {
    Headers evil = GrpcWebHeaders();
    evil.push_back({"origin", origin});
    HttpResult denied = conn.RoundTrip(http::verb::post, kLoginPath, evil,
                                       Framed(LoginAs("g")));
    EXPECT_EQ(denied.status, 403) << origin;
    EXPECT_FALSE(denied.has_header("access-control-allow-origin")) << origin;
  }
  EXPECT_EQ(service_.calls(), 2);
}

// ---- Health, static files, metrics ----

TEST_F(GatewayTest, HealthzTurnsUnavailableWhenDraining) {
  StartGateway();
  HttpConnection conn(gateway_->port());
  HttpResult healthy = conn.RoundTrip(http::verb::get, "/healthz", {});
  EXPECT_EQ(healthy.status, 200);
  EXPECT_EQ(healthy.response.body(), "ok\n");
  gateway_->Drain();
  HttpResult draining = conn.RoundTrip(http::verb::get, "/healthz", {});
  EXPECT_EQ(draining.status, 503);
  HttpResult call = conn.RoundTrip(http::verb::post, kLoginPath,
                                   GrpcWebHeaders(), Framed(LoginAs("h")));
  EXPECT_EQ(call.header("grpc-status"), "14");
}

TEST_F(GatewayTest, ServesTheWebPageWithoutLeavingTheRoot) {
  namespace fs = std::filesystem;
  const fs::path base = fs::path(std::getenv("TEST_TMPDIR")) / "web";
  fs::remove_all(base);
  fs::create_directories(base / "root");
  std::ofstream(base / "root" / "index.html") << "<!doctype html><p>hi</p>";
  std::ofstream(base / "root" / "app.js") << "console.log('hi');";
  std::ofstream(base / "secret.txt") << "secret";
  GatewayOptions options = DefaultOptions();
  options.web_root = (base / "root").string();
  StartGateway(options);

  HttpConnection conn(gateway_->port());
  HttpResult index = conn.RoundTrip(http::verb::get, "/", {});
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(index.response.body(), "<!doctype html><p>hi</p>");
  EXPECT_TRUE(absl::StrContains(index.header("content-security-policy"),
                                "script-src 'self'"));
  HttpResult script = conn.RoundTrip(http::verb::get, "/app.js", {});
  EXPECT_EQ(script.status, 200);
  EXPECT_EQ(script.header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(script.header("x-content-type-options"), "nosniff");
  for (const char* target : {"/../secret.txt", "/%2e%2e/secret.txt",
                             "/..%2fsecret.txt", "/missing.html"}) {
    HttpResult missing = conn.RoundTrip(http::verb::get, target, {});
    EXPECT_EQ(missing.status, 404) << target;
    EXPECT_FALSE(absl::StrContains(missing.response.body(), "secret"));
  }
}

TEST_F(GatewayTest, MetricsCountCallsByMethodAndCode) {
  StartGateway();
  HttpConnection conn(gateway_->port());
  conn.RoundTrip(http::verb::post, kLoginPath, GrpcWebHeaders(),
                 Framed(LoginAs("i")));
  conn.RoundTrip(http::verb::post, kLoginPath, GrpcWebHeaders(),
                 Framed(LoginAs("bad")));
  conn.RoundTrip(http::verb::post, kLoginPath, GrpcWebHeaders(),
                 Framed(LoginAs("bad")));
  const std::string metrics = MetricsText();
  const std::string labels =
      "grpc_method=\"Login\",grpc_service=\"im.auth.v1.AuthService\","
      "grpc_type=\"unary\"";
  EXPECT_TRUE(absl::StrContains(
      metrics, absl::StrCat("grpc_server_started_total{", labels, "} 3")))
      << metrics;
  EXPECT_TRUE(absl::StrContains(
      metrics, absl::StrCat("grpc_server_handled_total{grpc_code=\"OK\",",
                            labels, "} 1")))
      << metrics;
  EXPECT_TRUE(absl::StrContains(
      metrics,
      absl::StrCat("grpc_server_handled_total{grpc_code=\"Unauthenticated\",",
                   labels, "} 2")))
      << metrics;
  EXPECT_TRUE(absl::StrContains(
      metrics, absl::StrCat("grpc_server_msg_sent_total{", labels, "} 1")))
      << metrics;
  EXPECT_TRUE(absl::StrContains(metrics, "gateway_live_calls 0")) << metrics;
}

}  // namespace
}  // namespace im::gateway
