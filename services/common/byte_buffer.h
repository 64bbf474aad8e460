#ifndef IM_SERVICES_COMMON_BYTE_BUFFER_H_
#define IM_SERVICES_COMMON_BYTE_BUFFER_H_

#include <grpcpp/support/byte_buffer.h>

#include <string>

namespace im {

// The bytes of a raw gRPC message (generic services and calls), copied into
// one string. Empty when the buffer cannot be read.
std::string ByteBufferToString(const grpc::ByteBuffer& buffer);

}  // namespace im

#endif  // IM_SERVICES_COMMON_BYTE_BUFFER_H_
