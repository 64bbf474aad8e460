#ifndef IM_SERVICES_GATEWAY_GRPC_WEB_CODEC_H_
#define IM_SERVICES_GATEWAY_GRPC_WEB_CODEC_H_

// The grpc-web wire format (gRPC's PROTOCOL-WEB): length-prefixed frames,
// trailers carried as a body frame with the high bit of the flag byte set,
// and the base64 "text" variant. Pure functions; no I/O.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace im::gateway {

// Flag byte of a frame: 0x00 = message, 0x80 = trailers; 0x01 = compressed.
inline constexpr uint8_t kFrameCompressedFlag = 0x01;
inline constexpr uint8_t kFrameTrailersFlag = 0x80;
inline constexpr size_t kFrameHeaderBytes = 5;

// What a grpc-web request's Content-Type says about its body.
enum class WebEncoding {
  kBinary,  // application/grpc-web, application/grpc-web+proto
  kText,    // application/grpc-web-text, application/grpc-web-text+proto
};

// Parses a request Content-Type. std::nullopt for anything that is not
// grpc-web with the proto codec (plain application/grpc, +json, ...).
std::optional<WebEncoding> ParseWebContentType(absl::string_view content_type);

// The Content-Type the gateway answers with for `encoding`.
absl::string_view ResponseContentType(WebEncoding encoding);

// A frame header followed by `payload`.
std::string EncodeMessageFrame(absl::string_view payload);

// The trailer frame: flag 0x80 and "key: value\r\n" lines. Keys must already
// be lowercase; values are written as given.
std::string EncodeTrailerFrame(
    const std::vector<std::pair<std::string, std::string>>& trailers);

// The one message of a grpc-web request body (already base64-decoded).
// INVALID_ARGUMENT unless the body is exactly one complete, uncompressed
// message frame.
absl::StatusOr<std::string> DecodeSingleMessageFrame(absl::string_view body);

// Base64 text as grpc-web-text senders produce it: one or more standard,
// padded base64 chunks concatenated (padding may appear mid-stream).
// INVALID_ARGUMENT on anything else.
absl::StatusOr<std::string> DecodeBase64Chunks(absl::string_view text);

// Standard padded base64 of `bytes`, one self-contained chunk.
std::string EncodeBase64Chunk(absl::string_view bytes);

// A grpc-timeout header value ("1*8 digits" + H/M/S/m/u/n).
// INVALID_ARGUMENT when malformed.
absl::StatusOr<absl::Duration> ParseGrpcTimeout(absl::string_view value);

// gRPC's percent-encoding of grpc-message: bytes outside printable ASCII,
// and '%', become %XX.
std::string PercentEncodeGrpcMessage(absl::string_view message);

// A path of the form /package.Service/Method, the only shape forwarded.
bool IsGrpcMethodPath(absl::string_view path);

}  // namespace im::gateway

#endif  // IM_SERVICES_GATEWAY_GRPC_WEB_CODEC_H_
