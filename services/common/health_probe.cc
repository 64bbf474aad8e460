#include "services/common/health_probe.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <vector>

#include "absl/synchronization/notification.h"
#include "services/common/status.h"

namespace im {
namespace {

constexpr char kCheckMethod[] = "/grpc.health.v1.Health/Check";

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// Reads a varint at *pos; false when the input ends inside it.
bool ReadVarint(const std::string& in, size_t* pos, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && *pos < in.size(); shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(in[(*pos)++]);
    *value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// HealthCheckResponse{status = 1}. Other fields are skipped as protobuf
// requires; an absent status means UNKNOWN.
absl::StatusOr<HealthStatus> DecodeResponse(const std::string& bytes) {
  uint64_t status = 0;
  size_t pos = 0;
  while (pos < bytes.size()) {
    uint64_t tag = 0;
    uint64_t value = 0;
    if (!ReadVarint(bytes, &pos, &tag)) break;
    const uint64_t wire_type = tag & 7;
    if (wire_type == 0) {
      if (!ReadVarint(bytes, &pos, &value)) break;
      if ((tag >> 3) == 1) status = value;
    } else if (wire_type == 2) {
      if (!ReadVarint(bytes, &pos, &value) || value > bytes.size() - pos) {
        break;
      }
      pos += value;
    } else if (wire_type == 1 && bytes.size() - pos >= 8) {
      pos += 8;
    } else if (wire_type == 5 && bytes.size() - pos >= 4) {
      pos += 4;
    } else {
      break;
    }
  }
  if (pos != bytes.size()) {
    return absl::InternalError("malformed HealthCheckResponse");
  }
  return status <= 3 ? static_cast<HealthStatus>(status)
                     : HealthStatus::kUnknown;
}

}  // namespace

absl::string_view HealthStatusName(HealthStatus status) {
  switch (status) {
    case HealthStatus::kServing:
      return "SERVING";
    case HealthStatus::kNotServing:
      return "NOT_SERVING";
    case HealthStatus::kServiceUnknown:
      return "SERVICE_UNKNOWN";
    case HealthStatus::kUnknown:
      break;
  }
  return "UNKNOWN";
}

absl::StatusOr<HealthStatus> CheckHealth(
    const std::shared_ptr<grpc::Channel>& channel, absl::string_view service,
    absl::Duration timeout) {
  // HealthCheckRequest{service = 1}.
  std::string request;
  if (!service.empty()) {
    request.push_back(0x0A);
    AppendVarint(service.size(), &request);
    request.append(service.data(), service.size());
  }
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;

  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  // Probes are used while servers start: wait for the connection instead of
  // failing fast, up to the deadline.
  context.set_wait_for_ready(true);
  grpc::Status call_status;
  absl::Notification done;
  stub.UnaryCall(&context, kCheckMethod, {}, &request_buffer, &response_buffer,
                 [&](grpc::Status status) {
                   call_status = std::move(status);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!call_status.ok()) return FromGrpcStatus(call_status);
  std::vector<grpc::Slice> slices;
  if (!response_buffer.Dump(&slices).ok()) {
    return absl::InternalError("unreadable HealthCheckResponse");
  }
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return DecodeResponse(bytes);
}

}  // namespace im
