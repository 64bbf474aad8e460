#include "services/gateway/gateway.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <deque>
#include <limits>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "services/common/byte_buffer.h"
#include "services/gateway/cors_policy.h"
#include "services/gateway/grpc_web_codec.h"
#include "services/gateway/static_files.h"
#include "spdlog/spdlog.h"

namespace im::gateway {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Headers the grpc-web protocol itself uses; browsers may send them.
constexpr const char* kGrpcWebRequestHeaders[] = {
    "content-type", "x-grpc-web", "x-user-agent", "grpc-timeout"};

// How long and how much a refused upload is still read before the socket is
// closed, so the browser sees the answer rather than a reset.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerBytes = 4 << 20;

beast::string_view ToBeast(absl::string_view s) { return {s.data(), s.size()}; }
absl::string_view ToAbsl(beast::string_view s) { return {s.data(), s.size()}; }

std::chrono::steady_clock::duration ToSteady(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

bool IsPrintableAscii(absl::string_view value) {
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// Metadata from the backend as HTTP header/trailer lines: "-bin" values are
// base64; gRPC's reserved names are not copied.
void AppendMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
    HeaderList* out) {
  for (const auto& [key_ref, value_ref] : metadata) {
    std::string key(key_ref.data(), key_ref.size());
    std::string value(value_ref.data(), value_ref.size());
    if (key.empty() || key[0] == ':' || absl::StartsWith(key, "grpc-") ||
        key == "content-type") {
      continue;
    }
    if (absl::EndsWith(key, "-bin")) value = EncodeBase64Chunk(value);
    out->emplace_back(std::move(key), std::move(value));
  }
}

// grpc-status, grpc-message and details, then the backend's trailers.
HeaderList StatusTrailers(const grpc::Status& status,
                          const HeaderList& trailing_metadata) {
  HeaderList trailers;
  trailers.emplace_back("grpc-status",
                        absl::StrCat(static_cast<int>(status.error_code())));
  if (!status.error_message().empty()) {
    trailers.emplace_back("grpc-message",
                          PercentEncodeGrpcMessage(status.error_message()));
  }
  if (!status.error_details().empty()) {
    trailers.emplace_back("grpc-status-details-bin",
                          EncodeBase64Chunk(status.error_details()));
  }
  trailers.insert(trailers.end(), trailing_metadata.begin(),
                  trailing_metadata.end());
  return trailers;
}

}  // namespace

class HttpSession;

// State shared by the listener, the sessions and the backend calls.
class GatewayCore {
 public:
  GatewayCore(const GatewayOptions& options, GatewayMetrics* metrics,
              std::unique_ptr<RouteTable> routes,
              std::unique_ptr<StaticFiles> static_files)
      : options_(options),
        metrics_(metrics),
        routes_(std::move(routes)),
        static_files_(std::move(static_files)),
        cors_(options.cors_allowed_origins, AllowedRequestHeaders(options)) {
    for (const std::string& name : options.forwarded_headers) {
      forwarded_headers_.insert(absl::AsciiStrToLower(name));
    }
  }

  const GatewayOptions& options() const { return options_; }
  GatewayMetrics& metrics() const { return *metrics_; }
  const RouteTable& routes() const { return *routes_; }
  const StaticFiles* static_files() const { return static_files_.get(); }
  const CorsPolicy& cors() const { return cors_; }
  bool IsForwarded(absl::string_view lowercase_name) const {
    return forwarded_headers_.contains(lowercase_name);
  }

  bool draining() const { return draining_.load(); }
  void set_draining() { draining_.store(true); }

  // Connection accounting; false when the limit is reached.
  bool TryAddConnection() {
    if (connections_.fetch_add(1) >= options_.max_connections) {
      connections_.fetch_sub(1);
      return false;
    }
    return true;
  }
  void RemoveConnection() { connections_.fetch_sub(1); }

  // Per-client-address call slots; false when the client is at its limit.
  bool TryAcquireCallSlot(const std::string& client) {
    absl::MutexLock lock(&mu_);
    int& calls = calls_per_client_[client];
    if (calls >= options_.max_calls_per_client) {
      if (calls == 0) calls_per_client_.erase(client);
      return false;
    }
    ++calls;
    return true;
  }
  void ReleaseCallSlot(const std::string& client) {
    absl::MutexLock lock(&mu_);
    auto it = calls_per_client_.find(client);
    if (it != calls_per_client_.end() && --it->second <= 0) {
      calls_per_client_.erase(it);
    }
  }

  // Backend calls whose OnDone has not run yet. The I/O threads must keep
  // running until this reaches zero, since OnDone posts to them.
  void BackendCallStarted() {
    absl::MutexLock lock(&mu_);
    ++backend_calls_;
  }
  void BackendCallDone() {
    absl::MutexLock lock(&mu_);
    --backend_calls_;
  }
  int backend_calls() const {
    absl::MutexLock lock(&mu_);
    return backend_calls_;
  }
  // True if the count reached zero before `deadline`.
  bool AwaitNoBackendCalls(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return backend_calls_ == 0;
    };
    return mu_.AwaitWithDeadline(absl::Condition(&none), deadline);
  }

  uint64_t Register(std::weak_ptr<HttpSession> session) {
    absl::MutexLock lock(&mu_);
    const uint64_t id = next_session_id_++;
    sessions_.emplace(id, std::move(session));
    return id;
  }
  void Unregister(uint64_t id) {
    absl::MutexLock lock(&mu_);
    sessions_.erase(id);
  }
  std::vector<std::shared_ptr<HttpSession>> LiveSessions() {
    absl::MutexLock lock(&mu_);
    std::vector<std::shared_ptr<HttpSession>> out;
    for (auto& [id, weak] : sessions_) {
      if (auto session = weak.lock()) out.push_back(std::move(session));
    }
    return out;
  }

 private:
  static std::vector<std::string> AllowedRequestHeaders(
      const GatewayOptions& options) {
    std::vector<std::string> headers(std::begin(kGrpcWebRequestHeaders),
                                     std::end(kGrpcWebRequestHeaders));
    for (const std::string& name : options.forwarded_headers) {
      headers.push_back(absl::AsciiStrToLower(name));
    }
    return headers;
  }

  const GatewayOptions options_;
  GatewayMetrics* const metrics_;
  const std::unique_ptr<RouteTable> routes_;
  const std::unique_ptr<StaticFiles> static_files_;
  const CorsPolicy cors_;
  absl::flat_hash_set<std::string> forwarded_headers_;
  std::atomic<bool> draining_{false};
  std::atomic<int> connections_{0};

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> calls_per_client_ ABSL_GUARDED_BY(mu_);
  int backend_calls_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_session_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, std::weak_ptr<HttpSession>> sessions_
      ABSL_GUARDED_BY(mu_);
};

// One forwarded call: a generic gRPC call that writes the browser's single
// request message, half-closes, and reads until the backend finishes. Works
// for unary and server-streaming methods alike.
//
// Reads are driven by the session: after each message the session owns the
// "read turn" and either asks for the next message (ReadNext) once the
// browser took the previous one, or gives the turn up (StopReading). A hold
// keeps OnDone from running while the session owns the turn.
class ProxyCall : public grpc::ClientBidiReactor<grpc::ByteBuffer,
                                                 grpc::ByteBuffer> {
 public:
  ProxyCall(std::shared_ptr<HttpSession> session, GatewayCore* core)
      : session_(std::move(session)), core_(core) {}

  grpc::ClientContext& context() { return context_; }

  // Starts the call; `self` keeps this object alive until OnDone.
  static void Start(std::shared_ptr<ProxyCall> self, grpc::GenericStub* stub,
                    const std::string& method, const std::string& request) {
    ProxyCall* call = self.get();
    call->self_ = std::move(self);
    grpc::Slice slice(request.data(), request.size());
    call->request_ = grpc::ByteBuffer(&slice, 1);
    call->core_->BackendCallStarted();
    stub->PrepareBidiStreamingCall(&call->context_, method,
                                   grpc::StubOptions(), call);
    call->AddHold();
    call->StartWriteLast(&call->request_, grpc::WriteOptions());
    call->StartRead(&call->response_);
    call->StartCall();
  }

  // Only while the session owns the read turn.
  void ReadNext() { StartRead(&response_); }
  void StopReading() { RemoveHold(); }
  // Any time; ends the backend call with CANCELLED if it is still running.
  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  bool first_message_ = true;  // touched only by gRPC's serialized reactions
  std::shared_ptr<HttpSession> session_;
  GatewayCore* const core_;
  std::shared_ptr<ProxyCall> self_;
};

// What a connection's current grpc-web call needs to answer the browser.
struct WebCall {
  std::shared_ptr<ProxyCall> proxy;
  WebEncoding encoding = WebEncoding::kBinary;
  std::string service;
  std::string method;
  std::string origin;  // granted origin, empty when no CORS headers apply
  unsigned http_version = 11;
  bool keep_alive = true;
  absl::Time started_at;
  bool headers_sent = false;
  bool session_owns_read = false;
  bool abandoned = false;  // browser gone; the backend call is cancelled
};

// A piece of a streamed (chunked) response, written in order.
struct Outbound {
  enum class Kind { kHeader, kChunk, kLastChunk } kind;
  std::string data;
  bool after_message = false;  // the backend may be read again after it
};

// One browser connection. Everything but the Post* entry points runs on the
// connection's strand.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, GatewayCore* core)
      : stream_(std::move(socket)), core_(core) {
    beast::error_code ec;
    const tcp::endpoint peer = stream_.socket().remote_endpoint(ec);
    client_address_ = ec ? "unknown" : peer.address().to_string();
  }

  ~HttpSession() {
    if (call_slot_held_) core_->ReleaseCallSlot(client_address_);
    core_->Unregister(id_);
    core_->RemoveConnection();
    core_->metrics().ConnectionClosed();
  }

  void Start() {
    id_ = core_->Register(weak_from_this());
    core_->metrics().ConnectionOpened();
    net::dispatch(stream_.get_executor(),
                  [self = shared_from_this()] { self->ReadRequest(); });
  }

  // From any thread: ends the connection and cancels its call.
  void PostClose() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->closing_ = true;
      self->AbandonCall();
      self->CloseSocket();
    });
  }

  // From the call's reactions (any thread).
  void PostBackendMessage(std::string message, HeaderList initial_metadata) {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), message = std::move(message),
               initial = std::move(initial_metadata)]() mutable {
                self->OnBackendMessage(std::move(message), std::move(initial));
              });
  }
  void PostBackendDone(grpc::Status status, HeaderList initial_metadata,
                       HeaderList trailing_metadata) {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), status = std::move(status),
               initial = std::move(initial_metadata),
               trailing = std::move(trailing_metadata)]() mutable {
                self->OnBackendDone(std::move(status), std::move(initial),
                                    std::move(trailing));
              });
  }

 private:
  // ---- Reading requests ----

  void ReadRequest() {
    if (closing_) return;
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    // The size check happens once the header is in (OnHeaderRead), so the
    // refusal can see what kind of request it refuses.
    // (A large number rather than boost::none: Beast 1.74 compares the
    // Content-Length against an empty optional as if it were zero.)
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    stream_.expires_after(ToSteady(core_->options().idle_timeout));
    http::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&HttpSession::OnHeaderRead,
                                  shared_from_this()));
  }

  void OnHeaderRead(beast::error_code ec, size_t /*bytes*/) {
    if (ec) {
      OnRequestRead(ec, 0);
      return;
    }
    const uint64_t limit = core_->options().max_request_bytes;
    const boost::optional<uint64_t> length = parser_->content_length();
    if (length.has_value() && *length > limit) {
      stream_.expires_never();
      RefuseOversize(parser_->get());
      return;
    }
    // Chunked uploads are checked as they arrive.
    parser_->body_limit(limit);
    http::async_read(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&HttpSession::OnRequestRead,
                                  shared_from_this()));
  }

  void OnRequestRead(beast::error_code ec, size_t /*bytes*/) {
    stream_.expires_never();
    if (ec == http::error::body_limit) {
      RefuseOversize(parser_->get());
      return;
    }
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::eof ||
        ec == net::error::connection_reset) {
      CloseSocket();
      return;
    }
    if (ec) {
      spdlog::debug("gateway: bad request from {}: {}", client_address_,
                    ec.message());
      auto res = PlainResponse(http::status::bad_request, 11, false,
                               "bad request\n");
      core_->metrics().HttpRequest("other", 400);
      SendAndClose(std::move(res), /*linger=*/false);
      return;
    }
    HandleRequest(parser_->release());
  }

  void HandleRequest(http::request<http::string_body> req) {
    const absl::string_view target = ToAbsl(req.target());
    const absl::string_view path = target.substr(0, target.find('?'));
    const absl::string_view content_type =
        ToAbsl(req[http::field::content_type]);

    if (req.method() == http::verb::options) {
      HandlePreflight(req);
      return;
    }
    if (path == "/healthz" && req.method() == http::verb::get) {
      const bool ok = !core_->draining();
      core_->metrics().HttpRequest("healthz", ok ? 200 : 503);
      Send(PlainResponse(ok ? http::status::ok
                            : http::status::service_unavailable,
                         req.version(), req.keep_alive(),
                         ok ? "ok\n" : "draining\n"));
      return;
    }
    if (req.method() == http::verb::post &&
        ParseWebContentType(content_type).has_value()) {
      HandleGrpcWeb(std::move(req));
      return;
    }
    if (req.method() == http::verb::get || req.method() == http::verb::head) {
      HandleStatic(req);
      return;
    }
    if (req.method() == http::verb::post && IsGrpcMethodPath(path)) {
      core_->metrics().HttpRequest("grpc_web", 415);
      Send(PlainResponse(http::status::unsupported_media_type, req.version(),
                         req.keep_alive(),
                         "expected application/grpc-web or "
                         "application/grpc-web-text\n"));
      return;
    }
    core_->metrics().HttpRequest("other", 405);
    auto res = PlainResponse(http::status::method_not_allowed, req.version(),
                             req.keep_alive(), "method not allowed\n");
    res.set(http::field::allow, "GET, HEAD, POST, OPTIONS");
    Send(std::move(res));
  }

  // ---- CORS ----

  // The Origin header when it is granted; empty when there is none or it is
  // not granted.
  std::string GrantedOrigin(const http::request<http::string_body>& req,
                            bool* refused) const {
    *refused = false;
    auto origin_it = req.find(http::field::origin);
    if (origin_it == req.end()) return "";
    const absl::string_view origin = ToAbsl(origin_it->value());
    const absl::string_view host = ToAbsl(req[http::field::host]);
    if (!core_->cors().IsAllowed(origin, host)) {
      *refused = true;
      return "";
    }
    return std::string(origin);
  }

  template <class Fields>
  void AddCorsHeaders(const std::string& origin, Fields& fields) const {
    if (origin.empty()) return;
    fields.set(http::field::access_control_allow_origin, origin);
    fields.set(http::field::access_control_expose_headers,
               ToBeast(CorsPolicy::expose_headers()));
    fields.set(http::field::vary, "Origin");
  }

  void HandlePreflight(const http::request<http::string_body>& req) {
    bool refused = false;
    const std::string origin = GrantedOrigin(req, &refused);
    if (origin.empty()) {
      // No grant: answer without any Access-Control-* header, so the
      // browser blocks the actual request.
      core_->metrics().HttpRequest("preflight", 403);
      Send(PlainResponse(http::status::forbidden, req.version(),
                         req.keep_alive(), "origin not allowed\n"));
      return;
    }
    http::response<http::string_body> res(http::status::no_content,
                                          req.version());
    res.keep_alive(req.keep_alive());
    AddCorsHeaders(origin, res);
    res.set(http::field::access_control_allow_methods,
            ToBeast(CorsPolicy::allow_methods()));
    res.set(http::field::access_control_allow_headers,
            core_->cors().allow_headers());
    res.set(http::field::access_control_max_age,
            ToBeast(CorsPolicy::max_age_seconds()));
    res.prepare_payload();
    core_->metrics().HttpRequest("preflight", 204);
    Send(std::move(res));
  }

  // ---- Static files ----

  void HandleStatic(const http::request<http::string_body>& req) {
    const absl::string_view target = ToAbsl(req.target());
    const StaticFiles* files = core_->static_files();
    absl::StatusOr<StaticFile> file =
        files == nullptr ? absl::NotFoundError("no web root")
                         : files->Resolve(target);
    beast::error_code ec;
    http::file_body::value_type body;
    if (file.ok()) body.open(file->path.c_str(), beast::file_mode::scan, ec);
    if (!file.ok() || ec) {
      core_->metrics().HttpRequest("static", 404);
      Send(PlainResponse(http::status::not_found, req.version(),
                         req.keep_alive(), "not found\n"));
      return;
    }
    const uint64_t size = body.size();
    const bool is_html = absl::StartsWith(file->content_type, "text/html");
    auto set_headers = [&](auto& res) {
      res.set(http::field::content_type, file->content_type);
      res.set("X-Content-Type-Options", "nosniff");
      res.set(http::field::cache_control, "no-cache");
      if (is_html) {
        // The page loads only its own scripts and talks only to this
        // origin; inline scripts never run.
        res.set("Content-Security-Policy",
                "default-src 'self'; script-src 'self'; style-src 'self'; "
                "img-src 'self' data:; connect-src 'self'; "
                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
        res.set(http::field::x_frame_options, "DENY");
      }
      res.keep_alive(req.keep_alive());
    };
    core_->metrics().HttpRequest("static", 200);
    if (req.method() == http::verb::head) {
      http::response<http::empty_body> res(http::status::ok, req.version());
      set_headers(res);
      res.content_length(size);
      Send(std::move(res));
      return;
    }
    http::response<http::file_body> res(
        std::piecewise_construct, std::make_tuple(std::move(body)),
        std::make_tuple(http::status::ok, req.version()));
    set_headers(res);
    res.content_length(size);
    Send(std::move(res));
  }

  // ---- grpc-web calls ----

  void HandleGrpcWeb(http::request<http::string_body> req) {
    const absl::string_view target = ToAbsl(req.target());
    const std::string path(target.substr(0, target.find('?')));
    bool refused = false;
    const std::string origin = GrantedOrigin(req, &refused);
    if (refused) {
      // A browser would have been stopped by the preflight; never forward a
      // call from an origin without a grant.
      core_->metrics().HttpRequest("grpc_web", 403);
      Send(PlainResponse(http::status::forbidden, req.version(),
                         req.keep_alive(), "origin not allowed\n"));
      return;
    }

    call_.emplace();
    WebCall& call = *call_;
    call.encoding = *ParseWebContentType(ToAbsl(req[http::field::content_type]));
    call.origin = origin;
    call.http_version = req.version();
    call.keep_alive = req.keep_alive();
    call.started_at = absl::Now();
    if (IsGrpcMethodPath(path)) {
      const size_t slash = path.rfind('/');
      call.service = path.substr(1, slash - 1);
      call.method = path.substr(slash + 1);
    } else {
      call.service = "unknown";
      call.method = "unknown";
    }
    core_->metrics().CallStarted(call.service, call.method);

    if (call.service == "unknown") {
      FinishTrailersOnly(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                      "not a gRPC method path"));
      return;
    }
    const RouteTable::Backend* backend = core_->routes().Find(path);
    if (backend == nullptr) {
      FinishTrailersOnly(grpc::Status(
          grpc::StatusCode::UNIMPLEMENTED,
          absl::StrCat("unknown service ", call.service)));
      return;
    }
    if (core_->draining()) {
      FinishTrailersOnly(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                      "gateway is shutting down"));
      return;
    }

    std::string body = std::move(req.body());
    if (call.encoding == WebEncoding::kText) {
      absl::StatusOr<std::string> decoded = DecodeBase64Chunks(body);
      if (!decoded.ok()) {
        FinishTrailersOnly(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                        std::string(decoded.status().message())));
        return;
      }
      body = std::move(*decoded);
    }
    absl::StatusOr<std::string> message = DecodeSingleMessageFrame(body);
    if (!message.ok()) {
      FinishTrailersOnly(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                      std::string(message.status().message())));
      return;
    }

    std::optional<absl::Duration> timeout;
    auto timeout_it = req.find("grpc-timeout");
    if (timeout_it != req.end()) {
      absl::StatusOr<absl::Duration> parsed = ParseGrpcTimeout(ToAbsl(timeout_it->value()));
      if (!parsed.ok()) {
        FinishTrailersOnly(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                        "malformed grpc-timeout header"));
        return;
      }
      timeout = *parsed;
    }

    if (!core_->TryAcquireCallSlot(client_address_)) {
      FinishTrailersOnly(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          "too many concurrent calls from this client address"));
      return;
    }
    call_slot_held_ = true;

    auto proxy = std::make_shared<ProxyCall>(shared_from_this(), core_);
    grpc::ClientContext& context = proxy->context();
    for (const auto& field : req) {
      const std::string name = absl::AsciiStrToLower(ToAbsl(field.name_string()));
      const absl::string_view value = ToAbsl(field.value());
      if (core_->IsForwarded(name) && IsPrintableAscii(value)) {
        context.AddMetadata(name, std::string(value));
      }
    }
    // The client's address for per-client limits in the services (auth
    // trusts the last entry when the gateway is a --trusted_proxies entry).
    std::string forwarded_for = client_address_;
    auto forwarded_it = req.find("x-forwarded-for");
    if (forwarded_it != req.end() &&
        IsPrintableAscii(ToAbsl(forwarded_it->value()))) {
      forwarded_for =
          absl::StrCat(ToAbsl(forwarded_it->value()), ", ", client_address_);
    }
    context.AddMetadata("x-forwarded-for", forwarded_for);
    if (timeout.has_value()) {
      context.set_deadline(absl::ToChronoTime(absl::Now() + *timeout));
    }
    call.proxy = proxy;
    core_->metrics().MessageReceived(call.service, call.method);
    ProxyCall::Start(std::move(proxy), backend->stub.get(), path, *message);
    WatchForDisconnect();
  }

  // While a call runs, a read on the socket notices the browser leaving
  // (EOF or reset) so the backend call can be cancelled at once.
  void WatchForDisconnect() {
    if (watching_ || closing_) return;
    watching_ = true;
    stream_.async_read_some(
        buffer_.prepare(4096),
        beast::bind_front_handler(&HttpSession::OnWatchRead,
                                  shared_from_this()));
  }

  void OnWatchRead(beast::error_code ec, size_t bytes) {
    watching_ = false;
    if (!ec) buffer_.commit(bytes);
    if (awaiting_next_request_) {
      // The call ended and AfterResponse stopped the watch (or the next
      // request's first bytes arrived): parse the next request.
      awaiting_next_request_ = false;
      if (!ec || ec == net::error::operation_aborted) {
        ReadRequest();
      } else {
        CloseSocket();
      }
      return;
    }
    if (ec) {
      // The browser went away.
      AbandonCall();
      CloseSocket();
    }
    // Otherwise the client pipelined its next request while the call runs;
    // it stays in the buffer for the parser and the watch ends (a write
    // error still reveals a disconnect).
  }

  void OnBackendMessage(std::string message, HeaderList initial_metadata) {
    if (!call_.has_value()) return;
    WebCall& call = *call_;
    call.session_owns_read = true;
    if (call.abandoned || closing_) {
      GiveUpReadTurn();
      return;
    }
    if (!call.headers_sent) QueueStreamHeaders(initial_metadata);
    std::string frame = EncodeMessageFrame(message);
    if (call.encoding == WebEncoding::kText) frame = EncodeBase64Chunk(frame);
    outbound_.push_back({Outbound::Kind::kChunk, std::move(frame), true});
    core_->metrics().MessageSent(call.service, call.method);
    WriteNext();
  }

  void OnBackendDone(grpc::Status status, HeaderList initial_metadata,
                     HeaderList trailing_metadata) {
    if (!call_.has_value()) return;
    WebCall& call = *call_;
    call.proxy.reset();
    if (call.abandoned || closing_) {
      ReportCallHandled(grpc::StatusCode::CANCELLED);
      call_.reset();
      CloseSocket();
      return;
    }
    if (!call.headers_sent) {
      // Nothing was streamed: one trailers-only response (status in the
      // HTTP headers), the form grpc-web clients expect for early errors.
      HeaderList extra = initial_metadata;
      extra.insert(extra.end(), trailing_metadata.begin(),
                   trailing_metadata.end());
      FinishTrailersOnly(status, extra);
      return;
    }
    std::string frame =
        EncodeTrailerFrame(StatusTrailers(status, trailing_metadata));
    if (call.encoding == WebEncoding::kText) frame = EncodeBase64Chunk(frame);
    outbound_.push_back({Outbound::Kind::kChunk, std::move(frame), false});
    outbound_.push_back({Outbound::Kind::kLastChunk, "", false});
    final_status_ = status.error_code();
    WriteNext();
  }

  void QueueStreamHeaders(const HeaderList& initial_metadata) {
    WebCall& call = *call_;
    call.headers_sent = true;
    stream_response_.emplace(http::status::ok, call.http_version);
    http::response<http::empty_body>& res = *stream_response_;
    res.set(http::field::content_type, ToBeast(ResponseContentType(call.encoding)));
    res.keep_alive(call.keep_alive);
    res.chunked(true);
    AddCorsHeaders(call.origin, res);
    for (const auto& [key, value] : initial_metadata) res.insert(key, value);
    stream_serializer_.emplace(res);
    outbound_.push_back({Outbound::Kind::kHeader, "", false});
  }

  // Writes queued pieces one at a time.
  void WriteNext() {
    if (writing_ || outbound_.empty()) return;
    writing_ = true;
    stream_.expires_after(ToSteady(core_->options().write_timeout));
    const Outbound& next = outbound_.front();
    auto handler = beast::bind_front_handler(&HttpSession::OnOutboundWritten,
                                             shared_from_this());
    switch (next.kind) {
      case Outbound::Kind::kHeader:
        http::async_write_header(stream_, *stream_serializer_,
                                 std::move(handler));
        break;
      case Outbound::Kind::kChunk:
        net::async_write(stream_, http::make_chunk(net::buffer(next.data)),
                         std::move(handler));
        break;
      case Outbound::Kind::kLastChunk:
        net::async_write(stream_, http::make_chunk_last(), std::move(handler));
        break;
    }
  }

  void OnOutboundWritten(beast::error_code ec, size_t /*bytes*/) {
    writing_ = false;
    stream_.expires_never();
    if (ec) {
      // The browser is gone or stopped reading: cancel and drop everything.
      outbound_.clear();
      if (call_.has_value() && call_->proxy == nullptr) {
        // The backend had already finished; only the last writes failed.
        ReportCallHandled(grpc::StatusCode::CANCELLED);
        call_.reset();
      }
      AbandonCall();
      CloseSocket();
      return;
    }
    const Outbound done = std::move(outbound_.front());
    outbound_.pop_front();
    if (!call_.has_value()) return;
    if (done.kind == Outbound::Kind::kLastChunk) {
      ReportCallHandled(final_status_);
      const bool keep_alive = call_->keep_alive;
      call_.reset();
      AfterResponse(keep_alive);
      return;
    }
    if (done.after_message && call_->proxy != nullptr &&
        call_->session_owns_read) {
      call_->session_owns_read = false;
      call_->proxy->ReadNext();
    }
    WriteNext();
  }

  // Ends the call with a status only: HTTP 200 with grpc-status and
  // grpc-message as headers and an empty body.
  void FinishTrailersOnly(const grpc::Status& status,
                          const HeaderList& extra_headers = {}) {
    WebCall& call = *call_;
    http::response<http::empty_body> res(http::status::ok, call.http_version);
    res.set(http::field::content_type, ToBeast(ResponseContentType(call.encoding)));
    res.keep_alive(call.keep_alive);
    AddCorsHeaders(call.origin, res);
    for (const auto& [key, value] : StatusTrailers(status, extra_headers)) {
      res.insert(key, value);
    }
    res.content_length(0);
    ReportCallHandled(status.error_code());
    call_.reset();
    Send(std::move(res));
  }

  void ReportCallHandled(grpc::StatusCode code) {
    WebCall& call = *call_;
    core_->metrics().HttpRequest("grpc_web", 200);
    core_->metrics().CallHandled(call.service, call.method, code,
                                 absl::Now() - call.started_at);
    if (call_slot_held_) {
      call_slot_held_ = false;
      core_->ReleaseCallSlot(client_address_);
    }
  }

  // The browser is gone: cancel the backend call. Its remaining reactions
  // still arrive and are dropped.
  void AbandonCall() {
    if (!call_.has_value() || call_->abandoned) return;
    call_->abandoned = true;
    if (call_->proxy != nullptr) {
      call_->proxy->Cancel();
      GiveUpReadTurn();
    }
  }

  void GiveUpReadTurn() {
    if (call_->session_owns_read && call_->proxy != nullptr) {
      call_->session_owns_read = false;
      call_->proxy->StopReading();
    }
  }

  // ---- Simple responses ----

  http::response<http::string_body> PlainResponse(http::status status,
                                                  unsigned version,
                                                  bool keep_alive,
                                                  std::string body) const {
    http::response<http::string_body> res(status, version);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set("X-Content-Type-Options", "nosniff");
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  }

  // Writes a complete response, then reads the next request or closes.
  template <class Body>
  void Send(http::response<Body> res) {
    auto message =
        std::make_shared<http::response<Body>>(std::move(res));
    const bool keep_alive = message->keep_alive();
    stream_.expires_after(ToSteady(core_->options().write_timeout));
    http::async_write(
        stream_, *message,
        [self = shared_from_this(), message, keep_alive](beast::error_code ec,
                                                         size_t) {
          self->stream_.expires_never();
          if (ec) {
            self->CloseSocket();
            return;
          }
          self->AfterResponse(keep_alive);
        });
  }

  template <class Body>
  void SendAndClose(http::response<Body> res, bool linger) {
    res.keep_alive(false);
    auto message =
        std::make_shared<http::response<Body>>(std::move(res));
    stream_.expires_after(ToSteady(core_->options().write_timeout));
    http::async_write(stream_, *message,
                      [self = shared_from_this(), message, linger](
                          beast::error_code ec, size_t) {
                        self->stream_.expires_never();
                        if (ec || !linger) {
                          self->CloseSocket();
                        } else {
                          self->LingerAndClose();
                        }
                      });
  }

  void RefuseOversize(const http::request<http::string_body>& req) {
    const absl::string_view content_type =
        ToAbsl(req[http::field::content_type]);
    const std::optional<WebEncoding> encoding =
        ParseWebContentType(content_type);
    if (req.method() != http::verb::post || !encoding.has_value()) {
      core_->metrics().HttpRequest("other", 413);
      SendAndClose(PlainResponse(http::status::payload_too_large,
                                 req.version(), false,
                                 "request body too large\n"),
                   /*linger=*/true);
      return;
    }
    bool refused = false;
    const std::string origin = GrantedOrigin(req, &refused);
    const absl::string_view target = ToAbsl(req.target());
    const std::string path(target.substr(0, target.find('?')));
    const size_t slash = path.rfind('/');
    const bool method_path = IsGrpcMethodPath(path);
    const std::string service =
        method_path ? path.substr(1, slash - 1) : "unknown";
    const std::string method = method_path ? path.substr(slash + 1) : "unknown";
    core_->metrics().CallStarted(service, method);
    core_->metrics().CallHandled(service, method,
                                 grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 absl::ZeroDuration());
    core_->metrics().HttpRequest("grpc_web", 200);
    http::response<http::empty_body> res(http::status::ok, req.version());
    res.set(http::field::content_type, ToBeast(ResponseContentType(*encoding)));
    AddCorsHeaders(origin, res);
    const grpc::Status status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("request body larger than ",
                     core_->options().max_request_bytes, " bytes"));
    for (const auto& [key, value] : StatusTrailers(status, {})) {
      res.insert(key, value);
    }
    res.content_length(0);
    SendAndClose(std::move(res), /*linger=*/true);
  }

  // Half-closes, then reads and drops what the client still sends for a
  // short while, so it sees the response instead of a connection reset.
  void LingerAndClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(kLingerTime);
    ReadAndDiscard();
  }

  void ReadAndDiscard() {
    stream_.async_read_some(
        net::buffer(discard_),
        [self = shared_from_this()](beast::error_code ec, size_t bytes) {
          self->lingered_bytes_ += bytes;
          if (ec || self->lingered_bytes_ > kLingerBytes) {
            self->CloseSocket();
            return;
          }
          self->ReadAndDiscard();
        });
  }

  void AfterResponse(bool keep_alive) {
    if (!keep_alive || closing_) {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      CloseSocket();
      return;
    }
    if (watching_) {
      // Stop the disconnect watch; its handler then reads the next request
      // (no write is pending here, so cancel affects only that read).
      awaiting_next_request_ = true;
      beast::error_code ec;
      stream_.socket().cancel(ec);
      return;
    }
    ReadRequest();
  }

  void CloseSocket() {
    closing_ = true;
    beast::error_code ec;
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  GatewayCore* const core_;
  std::string client_address_;
  uint64_t id_ = 0;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<WebCall> call_;
  bool call_slot_held_ = false;
  std::deque<Outbound> outbound_;
  bool writing_ = false;
  grpc::StatusCode final_status_ = grpc::StatusCode::OK;
  std::optional<http::response<http::empty_body>> stream_response_;
  std::optional<http::response_serializer<http::empty_body>>
      stream_serializer_;
  bool watching_ = false;
  bool awaiting_next_request_ = false;
  bool closing_ = false;
  std::array<char, 16 * 1024> discard_;
  size_t lingered_bytes_ = 0;
};

void ProxyCall::OnReadDone(bool ok) {
  if (!ok) {
    // No more messages: give the turn back so OnDone can run.
    RemoveHold();
    return;
  }
  HeaderList initial;
  if (first_message_) {
    first_message_ = false;
    AppendMetadata(context_.GetServerInitialMetadata(), &initial);
  }
  session_->PostBackendMessage(ByteBufferToString(response_),
                               std::move(initial));
}

void ProxyCall::OnDone(const grpc::Status& status) {
  HeaderList initial;
  if (first_message_) {
    AppendMetadata(context_.GetServerInitialMetadata(), &initial);
  }
  HeaderList trailing;
  AppendMetadata(context_.GetServerTrailingMetadata(), &trailing);
  session_->PostBackendDone(status, std::move(initial), std::move(trailing));
  session_.reset();
  core_->BackendCallDone();
  // Last: may destroy this object.
  self_.reset();
}

// Accepts connections on its own strand.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, GatewayCore* core)
      : ioc_(ioc), acceptor_(net::make_strand(ioc)), core_(core) {}

  absl::Status Listen(const std::string& address) {
    const size_t colon = address.rfind(':');
    int port = -1;
    if (colon == std::string::npos ||
        !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
        port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("listen address must be host:port, got ", address));
    }
    std::string host = address.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    beast::error_code ec;
    const net::ip::address ip =
        net::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("listen host must be an IP address, got ", host));
    }
    const tcp::endpoint endpoint(ip, static_cast<uint16_t>(port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", address, ": ", ec.message()));
    }
    const tcp::endpoint bound = acceptor_.local_endpoint(ec);
    port_ = bound.port();
    address_ = absl::StrCat(address.substr(0, colon), ":", port_);
    return absl::OkStatus();
  }

  void Start() {
    net::dispatch(acceptor_.get_executor(),
                  [self = shared_from_this()] { self->Accept(); });
  }

  void PostStop() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->acceptor_.close(ec);
    });
  }

  int port() const { return port_; }
  const std::string& address() const { return address_; }

 private:
  void Accept() {
    acceptor_.async_accept(
        net::make_strand(ioc_),
        beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      if (!core_->TryAddConnection()) {
        core_->metrics().ConnectionRejected();
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<HttpSession>(std::move(socket), core_)->Start();
      }
    } else {
      spdlog::warn("gateway: accept failed: {}", ec.message());
    }
    Accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  GatewayCore* const core_;
  int port_ = 0;
  std::string address_;
};

class Gateway::Impl {
 public:
  explicit Impl(std::unique_ptr<GatewayCore> core)
      : core_(std::move(core)), ioc_(core_->options().io_threads) {}

  ~Impl() { Shutdown(absl::ZeroDuration()); }

  absl::Status Start() {
    listener_ = std::make_shared<Listener>(ioc_, core_.get());
    if (absl::Status status = listener_->Listen(core_->options().listen_address);
        !status.ok()) {
      return status;
    }
    listener_->Start();
    const int threads = std::max(1, core_->options().io_threads);
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
    return absl::OkStatus();
  }

  void Drain() {
    core_->set_draining();
    if (listener_ != nullptr) listener_->PostStop();
  }

  void Shutdown(absl::Duration grace) {
    if (shut_down_) return;
    shut_down_ = true;
    Drain();
    core_->AwaitNoBackendCalls(absl::Now() + grace);
    for (const auto& session : core_->LiveSessions()) session->PostClose();
    // Every backend call must have run OnDone (which posts to the I/O
    // threads) before the threads stop.
    while (!core_->AwaitNoBackendCalls(absl::Now() + absl::Seconds(1))) {
      spdlog::warn("gateway: waiting for {} backend calls to end",
                   core_->backend_calls());
    }
    ioc_.stop();
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
  }

  int port() const { return listener_->port(); }
  const std::string& address() const { return listener_->address(); }
  int live_calls() const { return core_->backend_calls(); }

 private:
  // Declared first so it outlives the io_context and the handlers it holds.
  std::unique_ptr<GatewayCore> core_;
  net::io_context ioc_;
  std::shared_ptr<Listener> listener_;
  std::vector<std::thread> threads_;
  bool shut_down_ = false;
};

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(
    const GatewayOptions& options, GatewayMetrics* metrics) {
  absl::StatusOr<std::unique_ptr<RouteTable>> routes =
      RouteTable::Create(options.routes, options.peer_tls);
  if (!routes.ok()) return routes.status();
  std::unique_ptr<StaticFiles> static_files;
  if (!options.web_root.empty()) {
    absl::StatusOr<std::unique_ptr<StaticFiles>> files =
        StaticFiles::Create(options.web_root);
    if (!files.ok()) return files.status();
    static_files = std::move(*files);
  }
  auto impl = std::make_unique<Impl>(std::make_unique<GatewayCore>(
      options, metrics, std::move(*routes), std::move(static_files)));
  if (absl::Status status = impl->Start(); !status.ok()) return status;
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gateway::~Gateway() = default;

int Gateway::port() const { return impl_->port(); }
const std::string& Gateway::address() const { return impl_->address(); }
int Gateway::live_calls() const { return impl_->live_calls(); }
void Gateway::Drain() { impl_->Drain(); }
void Gateway::Shutdown(absl::Duration grace) { impl_->Shutdown(grace); }

}  // namespace im::gateway
