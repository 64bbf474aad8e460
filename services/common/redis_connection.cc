#include "services/common/redis_connection.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

#include <cerrno>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace im {
namespace {

timeval AtLeastOneMillisecond(absl::Duration d) {
  timeval tv = absl::ToTimeval(d);
  if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1000;
  return tv;
}

RedisReply Convert(const redisReply& reply) {
  RedisReply out;
  switch (reply.type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = reply.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(reply.elements);
      for (size_t i = 0; i < reply.elements; ++i) {
        out.elements.push_back(Convert(*reply.element[i]));
      }
      break;
    default:
      out.type = RedisReply::Type::kNil;
      break;
  }
  return out;
}

// Takes ownership of `raw`.
RedisReply Adopt(void* raw) {
  auto* reply = static_cast<redisReply*>(raw);
  RedisReply out = Convert(*reply);
  freeReplyObject(reply);
  return out;
}

}  // namespace

absl::StatusOr<RedisAddress> ParseRedisAddress(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Redis address \"", address, "\" is not host:port"));
  }
  absl::string_view host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  if (host.empty() || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 1 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Redis address \"", address, "\" is not host:port (port 1-65535)"));
  }
  return RedisAddress{std::string(host), port};
}

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisConnection::Connect(
    const Options& options) {
  const std::string where =
      absl::StrCat(options.address.host, ":", options.address.port);
  redisContext* context = redisConnectWithTimeout(
      options.address.host.c_str(), options.address.port,
      AtLeastOneMillisecond(options.connect_timeout));
  if (context == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to Redis at ", where));
  }
  if (context->err != 0) {
    absl::Status status = absl::UnavailableError(absl::StrCat(
        "cannot connect to Redis at ", where, ": ", context->errstr));
    redisFree(context);
    return status;
  }
  if (redisSetTimeout(context, AtLeastOneMillisecond(options.io_timeout)) !=
          REDIS_OK ||
      redisEnableKeepAlive(context) != REDIS_OK) {
    absl::Status status = absl::UnavailableError(
        absl::StrCat("cannot set up the Redis connection to ", where, ": ",
                     context->errstr));
    redisFree(context);
    return status;
  }
  return std::unique_ptr<RedisConnection>(new RedisConnection(context));
}

RedisConnection::~RedisConnection() { redisFree(context_); }

absl::Status RedisConnection::Broke(absl::string_view what) {
  broken_ = true;
  const char* detail = context_->err != 0 ? context_->errstr : "";
  return absl::UnavailableError(
      absl::StrCat("Redis connection lost (", what, "): ", detail));
}

void RedisConnection::AppendArgv(const std::vector<const char*>& argv,
                                 const std::vector<size_t>& lengths) {
  if (broken_) return;
  if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()),
                             const_cast<const char**>(argv.data()),
                             lengths.data()) != REDIS_OK) {
    broken_ = true;
  }
}

void RedisConnection::Append(absl::Span<const std::string> args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  AppendArgv(argv, lengths);
}

void RedisConnection::Append(std::initializer_list<absl::string_view> args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (absl::string_view arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  AppendArgv(argv, lengths);
}

absl::StatusOr<RedisReply> RedisConnection::ReadReply() {
  if (broken_) return Broke("earlier failure");
  void* raw = nullptr;
  if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
    return Broke("reading a reply");
  }
  return Adopt(raw);
}

absl::StatusOr<RedisReply> RedisConnection::Command(
    std::initializer_list<absl::string_view> args) {
  Append(args);
  return ReadReply();
}

absl::Status RedisConnection::Flush() {
  int done = 0;
  while (!done) {
    if (redisBufferWrite(context_, &done) != REDIS_OK) {
      return Broke("writing");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<RedisReply>> RedisConnection::ReadReplyWithin(
    absl::Duration timeout) {
  if (broken_) return Broke("earlier failure");
  if (absl::Status flushed = Flush(); !flushed.ok()) return flushed;
  void* raw = nullptr;
  if (redisGetReplyFromReader(context_, &raw) != REDIS_OK) {
    return Broke("parsing");
  }
  if (raw != nullptr) return std::optional<RedisReply>(Adopt(raw));
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return std::optional<RedisReply>();
    pollfd fd{context_->fd, POLLIN, 0};
    const int ready =
        poll(&fd, 1,
             static_cast<int>(absl::ToInt64Milliseconds(
                 left + absl::Milliseconds(1) - absl::Nanoseconds(1))));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Broke("waiting");
    if (ready == 0) return std::optional<RedisReply>();
    if (redisBufferRead(context_) != REDIS_OK) return Broke("reading");
    if (redisGetReplyFromReader(context_, &raw) != REDIS_OK) {
      return Broke("parsing");
    }
    if (raw != nullptr) return std::optional<RedisReply>(Adopt(raw));
  }
}

}  // namespace im
