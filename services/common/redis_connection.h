#ifndef IM_SERVICES_COMMON_REDIS_CONNECTION_H_
#define IM_SERVICES_COMMON_REDIS_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

struct redisContext;

namespace im {

// Where a Redis server listens.
struct RedisAddress {
  std::string host;
  int port = 0;
};

// "host:port" (IPv6 as "[::1]:6379"); INVALID_ARGUMENT otherwise.
absl::StatusOr<RedisAddress> ParseRedisAddress(absl::string_view address);

// One RESP2 reply, owning its data.
struct RedisReply {
  enum class Type { kNil, kStatus, kError, kInteger, kString, kArray };
  Type type = Type::kNil;
  int64_t integer = 0;
  // kStatus, kError and kString.
  std::string str;
  std::vector<RedisReply> elements;

  bool is_error() const { return type == Type::kError; }
};

// One connection to a Redis server (hiredis, blocking sockets), used by one
// thread at a time. Commands are pipelined: Append queues one, ReadReply
// sends what is queued and returns the replies in order. An I/O error or a
// reply slower than io_timeout breaks the connection for good (broken()
// turns true, every later call fails UNAVAILABLE): connect a new one. A
// Redis error reply is a reply (RedisReply::kError), not a failure.
class RedisConnection {
 public:
  struct Options {
    RedisAddress address;
    absl::Duration connect_timeout = absl::Seconds(1);
    absl::Duration io_timeout = absl::Seconds(2);
  };

  // UNAVAILABLE when the server cannot be reached within connect_timeout.
  static absl::StatusOr<std::unique_ptr<RedisConnection>> Connect(
      const Options& options);
  ~RedisConnection();

  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Queues one command (binary-safe arguments).
  void Append(absl::Span<const std::string> args);
  void Append(std::initializer_list<absl::string_view> args);
  // Sends what is queued and reads the oldest outstanding reply.
  absl::StatusOr<RedisReply> ReadReply();
  // Append + ReadReply.
  absl::StatusOr<RedisReply> Command(
      std::initializer_list<absl::string_view> args);
  // For a subscribed connection: sends what is queued, then waits at most
  // `timeout` for the next reply or pushed message; nullopt when none is
  // complete by then.
  absl::StatusOr<std::optional<RedisReply>> ReadReplyWithin(
      absl::Duration timeout);

  bool broken() const { return broken_; }

 private:
  explicit RedisConnection(redisContext* context) : context_(context) {}
  void AppendArgv(const std::vector<const char*>& argv,
                  const std::vector<size_t>& lengths);
  // Marks the connection broken and returns UNAVAILABLE with its error.
  absl::Status Broke(absl::string_view what);
  // Writes the output buffer out.
  absl::Status Flush();

  redisContext* const context_;
  bool broken_ = false;
};

}  // namespace im

#endif  // IM_SERVICES_COMMON_REDIS_CONNECTION_H_
