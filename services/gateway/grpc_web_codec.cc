#include "services/gateway/grpc_web_codec.h"

#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace im::gateway {
namespace {

void AppendFrameHeader(uint8_t flags, size_t length, std::string* out) {
  out->push_back(static_cast<char>(flags));
  out->push_back(static_cast<char>((length >> 24) & 0xff));
  out->push_back(static_cast<char>((length >> 16) & 0xff));
  out->push_back(static_cast<char>((length >> 8) & 0xff));
  out->push_back(static_cast<char>(length & 0xff));
}

bool IsIdentifier(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<WebEncoding> ParseWebContentType(absl::string_view content_type) {
  // Parameters such as "; charset=utf-8" do not change the framing.
  absl::string_view media = content_type.substr(0, content_type.find(';'));
  const std::string type =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(media));
  if (type == "application/grpc-web" || type == "application/grpc-web+proto") {
    return WebEncoding::kBinary;
  }
  if (type == "application/grpc-web-text" ||
      type == "application/grpc-web-text+proto") {
    return WebEncoding::kText;
  }
  return std::nullopt;
}

absl::string_view ResponseContentType(WebEncoding encoding) {
  return encoding == WebEncoding::kText ? "application/grpc-web-text+proto"
                                        : "application/grpc-web+proto";
}

std::string EncodeMessageFrame(absl::string_view payload) {
  std::string out;
  out.reserve(kFrameHeaderBytes + payload.size());
  AppendFrameHeader(0, payload.size(), &out);
  out.append(payload.data(), payload.size());
  return out;
}

std::string EncodeTrailerFrame(
    const std::vector<std::pair<std::string, std::string>>& trailers) {
  std::string block;
  for (const auto& [key, value] : trailers) {
    absl::StrAppend(&block, key, ": ", value, "\r\n");
  }
  std::string out;
  AppendFrameHeader(kFrameTrailersFlag, block.size(), &out);
  out += block;
  return out;
}

absl::StatusOr<std::string> DecodeSingleMessageFrame(absl::string_view body) {
  if (body.size() < kFrameHeaderBytes) {
    return absl::InvalidArgumentError(
        "grpc-web request body must hold one length-prefixed message");
  }
  const uint8_t flags = static_cast<uint8_t>(body[0]);
  const size_t length = (static_cast<size_t>(static_cast<uint8_t>(body[1])) << 24) |
                        (static_cast<size_t>(static_cast<uint8_t>(body[2])) << 16) |
                        (static_cast<size_t>(static_cast<uint8_t>(body[3])) << 8) |
                        static_cast<size_t>(static_cast<uint8_t>(body[4]));
  if (flags != 0) {
    return absl::InvalidArgumentError(
        (flags & kFrameCompressedFlag) != 0
            ? "compressed grpc-web request messages are not supported"
            : "grpc-web request frame must be a message frame");
  }
  if (body.size() - kFrameHeaderBytes != length) {
    return absl::InvalidArgumentError(
        "grpc-web request body must hold exactly one message frame");
  }
  return std::string(body.substr(kFrameHeaderBytes));
}

absl::StatusOr<std::string> DecodeBase64Chunks(absl::string_view text) {
  if (text.size() % 4 != 0) {
    return absl::InvalidArgumentError(
        "grpc-web-text body is not padded base64");
  }
  std::string out;
  size_t chunk_start = 0;
  for (size_t group = 0; group < text.size(); group += 4) {
    // A group with padding ends a chunk; decode each chunk on its own.
    const bool padded = text[group + 3] == '=';
    const bool last = group + 4 == text.size();
    if (!padded && !last) continue;
    std::string decoded;
    if (!absl::Base64Unescape(
            text.substr(chunk_start, group + 4 - chunk_start), &decoded)) {
      return absl::InvalidArgumentError("grpc-web-text body is not base64");
    }
    out += decoded;
    chunk_start = group + 4;
  }
  return out;
}

std::string EncodeBase64Chunk(absl::string_view bytes) {
  return absl::Base64Escape(bytes);
}

absl::StatusOr<absl::Duration> ParseGrpcTimeout(absl::string_view value) {
  if (value.size() < 2 || value.size() > 9) {
    return absl::InvalidArgumentError("malformed grpc-timeout");
  }
  const absl::string_view digits = value.substr(0, value.size() - 1);
  for (char c : digits) {
    if (c < '0' || c > '9') {
      return absl::InvalidArgumentError("malformed grpc-timeout");
    }
  }
  int64_t amount = 0;
  if (!absl::SimpleAtoi(digits, &amount)) {
    return absl::InvalidArgumentError("malformed grpc-timeout");
  }
  switch (value.back()) {
    case 'H':
      return absl::Hours(amount);
    case 'M':
      return absl::Minutes(amount);
    case 'S':
      return absl::Seconds(amount);
    case 'm':
      return absl::Milliseconds(amount);
    case 'u':
      return absl::Microseconds(amount);
    case 'n':
      return absl::Nanoseconds(amount);
    default:
      return absl::InvalidArgumentError("malformed grpc-timeout unit");
  }
}

std::string PercentEncodeGrpcMessage(absl::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (char c : message) {
    const uint8_t byte = static_cast<uint8_t>(c);
    if (byte >= 0x20 && byte <= 0x7e && byte != '%') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0x0f]);
    }
  }
  return out;
}

bool IsGrpcMethodPath(absl::string_view path) {
  if (path.empty() || path[0] != '/') return false;
  const std::vector<absl::string_view> parts =
      absl::StrSplit(path.substr(1), '/');
  if (parts.size() != 2) return false;
  // The service is dot-separated identifiers; the method one identifier.
  const std::vector<absl::string_view> service_parts =
      absl::StrSplit(parts[0], '.');
  for (absl::string_view name : service_parts) {
    if (!IsIdentifier(name)) return false;
  }
  return IsIdentifier(parts[1]);
}

}  // namespace im::gateway
