#include "tests/support/raw_rpc.h"

#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/support/sync_stream.h>

#include <vector>

#include "absl/strings/str_cat.h"

namespace im::testing {
namespace {

void Prepare(grpc::ClientContext& context, const RawCall& call) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + call.timeout));
  if (!call.token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", call.token));
  }
}

}  // namespace

grpc::ByteBuffer ToByteBuffer(absl::string_view bytes) {
  grpc::Slice slice(bytes.data(), bytes.size());
  return grpc::ByteBuffer(&slice, 1);
}

std::string ByteBufferToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

RawReply RawUnary(const std::shared_ptr<grpc::Channel>& channel,
                  const RawCall& call, absl::string_view request) {
  grpc::internal::RpcMethod method(call.path.c_str(),
                                   grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::ClientContext context;
  Prepare(context, call);
  grpc::ByteBuffer response;
  RawReply reply;
  reply.status =
      grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
          channel.get(), method, &context, ToByteBuffer(request), &response);
  if (reply.status.ok()) reply.body = ByteBufferToString(response);
  return reply;
}

RawBidiStream::RawBidiStream(const std::shared_ptr<grpc::Channel>& channel,
                             const RawCall& call)
    : path_(call.path),
      method_(path_.c_str(), grpc::internal::RpcMethod::BIDI_STREAMING) {
  Prepare(context_, call);
  stream_.reset(grpc::internal::ClientReaderWriterFactory<
                grpc::ByteBuffer, grpc::ByteBuffer>::Create(channel.get(),
                                                            method_,
                                                            &context_));
}

bool RawBidiStream::Write(absl::string_view frame) {
  return stream_->Write(ToByteBuffer(frame));
}

void RawBidiStream::WritesDone() { stream_->WritesDone(); }

bool RawBidiStream::Read(std::string* frame) {
  grpc::ByteBuffer buffer;
  if (!stream_->Read(&buffer)) return false;
  *frame = ByteBufferToString(buffer);
  return true;
}

grpc::Status RawBidiStream::Finish() { return stream_->Finish(); }

RawServerStream::RawServerStream(const std::shared_ptr<grpc::Channel>& channel,
                                 const RawCall& call,
                                 absl::string_view request)
    : path_(call.path),
      method_(path_.c_str(), grpc::internal::RpcMethod::SERVER_STREAMING) {
  Prepare(context_, call);
  reader_.reset(grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(
      channel.get(), method_, &context_, ToByteBuffer(request)));
}

bool RawServerStream::Read(std::string* frame) {
  grpc::ByteBuffer buffer;
  if (!reader_->Read(&buffer)) return false;
  *frame = ByteBufferToString(buffer);
  return true;
}

grpc::Status RawServerStream::Finish() { return reader_->Finish(); }

}  // namespace im::testing
