#ifndef IM_TESTS_SUPPORT_RAW_RPC_H_
#define IM_TESTS_SUPPORT_RAW_RPC_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/rpc_method.h>

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// Calls with request bytes as they are, not through generated stubs: the
// way to send what a well-behaved client library would never serialize
// (strings that are not UTF-8, malformed wire data, unknown fields).

namespace im::testing {

grpc::ByteBuffer ToByteBuffer(absl::string_view bytes);
std::string ByteBufferToString(const grpc::ByteBuffer& buffer);

// `path` is "/package.Service/Method". An empty token sends no
// authorization metadata.
struct RawCall {
  explicit RawCall(std::string path) : path(std::move(path)) {}
  std::string path;
  std::string token;
  absl::Duration timeout = absl::Seconds(10);
};

struct RawReply {
  grpc::Status status;
  std::string body;  // the response bytes when OK
};

RawReply RawUnary(const std::shared_ptr<grpc::Channel>& channel,
                  const RawCall& call, absl::string_view request);

// A bidirectional stream of raw frames (Chat) on its own ClientContext.
class RawBidiStream {
 public:
  RawBidiStream(const std::shared_ptr<grpc::Channel>& channel,
                const RawCall& call);
  bool Write(absl::string_view frame);
  // Half-closes.
  void WritesDone();
  // The next frame; false when the stream ended.
  bool Read(std::string* frame);
  grpc::Status Finish();
  grpc::ClientContext& context() { return context_; }

 private:
  std::string path_;
  grpc::internal::RpcMethod method_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>>
      stream_;
};

// A server stream opened with one raw request.
class RawServerStream {
 public:
  RawServerStream(const std::shared_ptr<grpc::Channel>& channel,
                  const RawCall& call, absl::string_view request);
  bool Read(std::string* frame);
  grpc::Status Finish();
  grpc::ClientContext& context() { return context_; }

 private:
  std::string path_;
  grpc::internal::RpcMethod method_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader_;
};

}  // namespace im::testing

#endif  // IM_TESTS_SUPPORT_RAW_RPC_H_
