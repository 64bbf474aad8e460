#include "storage/mysql/mysql_options.h"

#include <cstdint>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace im::storage {
namespace {

constexpr absl::string_view kScheme = "mysql://";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::StatusOr<std::string> PercentDecode(absl::string_view in,
                                          absl::string_view what) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad percent escape in DSN ", what));
    }
    const int hi = HexValue(in[i + 1]);
    const int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad percent escape in DSN ", what));
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string PercentEncode(absl::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : in) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                       c == '.' || c == '~';
    if (plain) {
      out.push_back(c);
    } else {
      const auto b = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    }
  }
  return out;
}

absl::Status ParseDurationParam(absl::string_view key, absl::string_view value,
                                absl::Duration* out) {
  if (!absl::ParseDuration(value, out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("DSN ", key, " must be a duration like 5s: ", value));
  }
  return absl::OkStatus();
}

absl::Status ParseIntParam(absl::string_view key, absl::string_view value,
                           int* out) {
  if (!absl::SimpleAtoi(value, out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("DSN ", key, " must be an integer: ", value));
  }
  return absl::OkStatus();
}

absl::Status ApplyParam(absl::string_view key, absl::string_view value,
                        MysqlOptions& o) {
  if (key == "pool") return ParseIntParam(key, value, &o.pool_size);
  if (key == "max_transaction_attempts") {
    return ParseIntParam(key, value, &o.max_transaction_attempts);
  }
  if (key == "max_cached_statements") {
    return ParseIntParam(key, value, &o.max_cached_statements);
  }
  if (key == "acquire_timeout") {
    return ParseDurationParam(key, value, &o.acquire_timeout);
  }
  if (key == "connect_timeout") {
    return ParseDurationParam(key, value, &o.connect_timeout);
  }
  if (key == "read_timeout") {
    return ParseDurationParam(key, value, &o.read_timeout);
  }
  if (key == "write_timeout") {
    return ParseDurationParam(key, value, &o.write_timeout);
  }
  if (key == "lock_wait_timeout") {
    return ParseDurationParam(key, value, &o.lock_wait_timeout);
  }
  if (key == "validate_after_idle") {
    return ParseDurationParam(key, value, &o.validate_after_idle);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown DSN key: ", key));
}

std::string QueryString(const MysqlOptions& o) {
  const MysqlOptions d;
  std::vector<std::string> params;
  if (o.pool_size != d.pool_size) {
    params.push_back(absl::StrCat("pool=", o.pool_size));
  }
  auto duration = [&](absl::string_view key, absl::Duration v,
                      absl::Duration def) {
    if (v != def) params.push_back(absl::StrCat(key, "=", absl::FormatDuration(v)));
  };
  duration("acquire_timeout", o.acquire_timeout, d.acquire_timeout);
  duration("connect_timeout", o.connect_timeout, d.connect_timeout);
  duration("read_timeout", o.read_timeout, d.read_timeout);
  duration("write_timeout", o.write_timeout, d.write_timeout);
  duration("lock_wait_timeout", o.lock_wait_timeout, d.lock_wait_timeout);
  duration("validate_after_idle", o.validate_after_idle,
           d.validate_after_idle);
  if (o.max_transaction_attempts != d.max_transaction_attempts) {
    params.push_back(
        absl::StrCat("max_transaction_attempts=", o.max_transaction_attempts));
  }
  if (o.max_cached_statements != d.max_cached_statements) {
    params.push_back(
        absl::StrCat("max_cached_statements=", o.max_cached_statements));
  }
  return params.empty() ? "" : absl::StrCat("?", absl::StrJoin(params, "&"));
}

std::string Dsn(const MysqlOptions& o, absl::string_view password) {
  const bool ipv6 = o.host.find(':') != std::string::npos;
  return absl::StrCat(kScheme, PercentEncode(o.user),
                      password.empty() ? "" : ":", password, "@",
                      ipv6 ? "[" : "", o.host, ipv6 ? "]" : "", ":", o.port,
                      o.database.empty() ? "" : "/",
                      PercentEncode(o.database), QueryString(o));
}

}  // namespace

absl::Status ValidateMysqlOptions(const MysqlOptions& o) {
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("mysql options: ", what));
  };
  if (o.host.empty()) return bad("host is empty");
  if (o.port <= 0 || o.port > 65535) return bad("port out of range");
  if (o.user.empty()) return bad("user is empty");
  if (o.pool_size < 1) return bad("pool_size must be at least 1");
  if (o.acquire_timeout < absl::ZeroDuration()) {
    return bad("acquire_timeout is negative");
  }
  for (absl::Duration d : {o.connect_timeout, o.read_timeout, o.write_timeout,
                           o.lock_wait_timeout}) {
    if (d < absl::Seconds(1) || d > absl::Hours(24)) {
      return bad("socket and lock timeouts must be between 1s and 24h");
    }
  }
  if (o.validate_after_idle < absl::ZeroDuration()) {
    return bad("validate_after_idle is negative");
  }
  if (o.max_transaction_attempts < 1) {
    return bad("max_transaction_attempts must be at least 1");
  }
  if (o.max_cached_statements < 8) {
    return bad("max_cached_statements must be at least 8");
  }
  return absl::OkStatus();
}

absl::StatusOr<MysqlOptions> ParseMysqlDsn(absl::string_view dsn) {
  if (!absl::StartsWith(dsn, kScheme)) {
    return absl::InvalidArgumentError("DSN must start with mysql://");
  }
  absl::string_view rest = dsn.substr(kScheme.size());
  MysqlOptions o;

  absl::string_view query;
  if (size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  // The password may contain '@' only percent-encoded; the last '@' ends
  // the credentials.
  const size_t at = rest.rfind('@');
  if (at == absl::string_view::npos) {
    return absl::InvalidArgumentError("DSN needs USER@HOST");
  }
  absl::string_view credentials = rest.substr(0, at);
  absl::string_view location = rest.substr(at + 1);

  absl::string_view user = credentials;
  if (size_t colon = credentials.find(':');
      colon != absl::string_view::npos) {
    user = credentials.substr(0, colon);
    absl::StatusOr<std::string> password =
        PercentDecode(credentials.substr(colon + 1), "password");
    if (!password.ok()) return password.status();
    o.password = *std::move(password);
  }
  absl::StatusOr<std::string> decoded_user = PercentDecode(user, "user");
  if (!decoded_user.ok()) return decoded_user.status();
  o.user = *std::move(decoded_user);

  absl::string_view host_port = location;
  if (size_t slash = location.find('/'); slash != absl::string_view::npos) {
    host_port = location.substr(0, slash);
    absl::StatusOr<std::string> database =
        PercentDecode(location.substr(slash + 1), "database");
    if (!database.ok()) return database.status();
    o.database = *std::move(database);
  }
  absl::string_view port;
  if (absl::StartsWith(host_port, "[")) {
    const size_t close = host_port.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("DSN host: unclosed [");
    }
    o.host = std::string(host_port.substr(1, close - 1));
    absl::string_view after = host_port.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return absl::InvalidArgumentError("DSN host: junk after ]");
      port = after.substr(1);
    }
  } else if (size_t colon = host_port.rfind(':');
             colon != absl::string_view::npos) {
    o.host = std::string(host_port.substr(0, colon));
    port = host_port.substr(colon + 1);
  } else {
    o.host = std::string(host_port);
  }
  if (!port.empty() && !absl::SimpleAtoi(port, &o.port)) {
    return absl::InvalidArgumentError(absl::StrCat("DSN port: ", port));
  }

  if (!query.empty()) {
    for (absl::string_view param : absl::StrSplit(query, '&')) {
      if (param.empty()) continue;
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(param, absl::MaxSplits('=', 1));
      if (auto s = ApplyParam(kv.first, kv.second, o); !s.ok()) return s;
    }
  }
  if (auto s = ValidateMysqlOptions(o); !s.ok()) return s;
  return o;
}

std::string MysqlDsn(const MysqlOptions& options) {
  return Dsn(options, PercentEncode(options.password));
}

std::string RedactedMysqlDsn(const MysqlOptions& options) {
  return Dsn(options, options.password.empty() ? "" : "***");
}

}  // namespace im::storage
