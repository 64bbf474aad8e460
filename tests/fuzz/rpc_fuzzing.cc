#include "tests/fuzz/rpc_fuzzing.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/sync_stream.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "im/message/v1/message.pb.h"
#include "tests/fuzz/fuzz_backend.h"
#include "tests/support/raw_rpc.h"

namespace im::fuzz {
namespace {

using ::google::protobuf::MethodDescriptor;
using ::im::testing::ByteBufferToString;
using ::im::testing::ToByteBuffer;

// Reports a broken contract and aborts, so libFuzzer keeps the input.
[[noreturn]] void Violation(const MethodDescriptor& method,
                            Credential credential, const std::string& what) {
  std::fprintf(stderr, "CONTRACT VIOLATION in %s (credential %d): %s\n",
               method.full_name().c_str(), static_cast<int>(credential),
               what.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("status ", static_cast<int>(status.error_code()), " \"",
                      status.error_message(), "\"");
}

bool AcceptableCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return true;
    default:
      return false;
  }
}

bool CarriesValidToken(Credential credential) {
  switch (credential) {
    case Credential::kNone:
    case Credential::kExpired:
    case Credential::kForged:
    case Credential::kGarbage:
    case Credential::kNotBearer:
      return false;
    default:
      return true;
  }
}

// The RPCs callers may make without an access token.
bool NeedsNoToken(const MethodDescriptor& method) {
  static const auto* const kOpen = new absl::flat_hash_set<std::string>(
      {"im.auth.v1.AuthService.Register", "im.auth.v1.AuthService.Login",
       "im.auth.v1.AuthService.Refresh",
       "im.auth.v1.AuthService.ExchangeApiKey"});
  return kOpen->contains(method.full_name());
}

// The conversation a parsed request names, or 0.
uint64_t NamedConversation(const google::protobuf::Message& request) {
  const google::protobuf::FieldDescriptor* field =
      request.GetDescriptor()->FindFieldByName("conversation_id");
  if (field == nullptr ||
      field->type() != google::protobuf::FieldDescriptor::TYPE_UINT64) {
    return 0;
  }
  return request.GetReflection()->GetUInt64(request, field);
}

// No conversation has this id.
constexpr uint64_t kMissingConversation = uint64_t{1} << 60;

void SetNamedConversation(google::protobuf::Message& request, uint64_t id) {
  request.GetReflection()->SetUInt64(
      &request, request.GetDescriptor()->FindFieldByName("conversation_id"),
      id);
}

// Callers with a valid token who are not members of carol's conversation.
bool IsForeignCaller(Credential credential) {
  return CarriesValidToken(credential) && credential != Credential::kCarol &&
         credential != Credential::kInternal;
}

// The method's RpcMethod (registered on its channel once).
struct MethodHandle {
  std::string path;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::internal::RpcMethod> rpc;
};

const MethodHandle& HandleFor(const MethodDescriptor& method) {
  static auto* const mu = new absl::Mutex();
  static auto* const handles =
      new std::map<const MethodDescriptor*, std::unique_ptr<MethodHandle>>();
  absl::MutexLock lock(mu);
  std::unique_ptr<MethodHandle>& handle = (*handles)[&method];
  if (handle == nullptr) {
    handle = std::make_unique<MethodHandle>();
    handle->path =
        absl::StrCat("/", method.service()->full_name(), "/", method.name());
    handle->channel =
        FuzzBackend::Get().ChannelFor(method.service()->full_name());
    grpc::internal::RpcMethod::RpcType type =
        method.client_streaming()
            ? (method.server_streaming()
                   ? grpc::internal::RpcMethod::BIDI_STREAMING
                   : grpc::internal::RpcMethod::CLIENT_STREAMING)
            : (method.server_streaming()
                   ? grpc::internal::RpcMethod::SERVER_STREAMING
                   : grpc::internal::RpcMethod::NORMAL_RPC);
    handle->rpc = std::make_unique<grpc::internal::RpcMethod>(
        handle->path.c_str(), type, handle->channel);
  }
  return *handle;
}

std::vector<std::string> SplitFrames(absl::string_view payload) {
  constexpr size_t kMaxFrames = 64;
  std::vector<std::string> frames;
  while (!payload.empty() && frames.size() < kMaxFrames) {
    if (payload.size() < 2) {
      frames.emplace_back(payload);
      break;
    }
    size_t length = static_cast<uint8_t>(payload[0]) |
                    (static_cast<size_t>(static_cast<uint8_t>(payload[1])) << 8);
    payload.remove_prefix(2);
    length = std::min(length, payload.size());
    frames.emplace_back(payload.substr(0, length));
    payload.remove_prefix(length);
  }
  return frames;
}

// Checks the frames a Chat/Subscribe stream sent.
void CheckServerFrame(const MethodDescriptor& method, Credential credential,
                      const std::string& wire) {
  message::v1::ServerFrame frame;
  if (!frame.ParseFromString(wire)) {
    Violation(method, credential, "a server frame does not parse");
  }
  if (frame.has_error() &&
      (!AcceptableCode(static_cast<grpc::StatusCode>(frame.error().code())) ||
       frame.error().code() == 0)) {
    Violation(method, credential,
              absl::StrCat("Error frame with code ", frame.error().code(),
                           ": ", frame.error().message()));
  }
  if (frame.has_ack() && frame.ack().seq() == 0) {
    Violation(method, credential, "an ack without a seq");
  }
}

// The seeded conversations' logs, scanned incrementally after each input:
// seqs stay gap-free and only members (per the log's own member events)
// write entries.
class LogAuditor {
 public:
  void Audit(const MethodDescriptor& method, Credential credential) {
    FuzzBackend& backend = FuzzBackend::Get();
    const FuzzBackend::Seeded& seeded = backend.seeded();
    absl::MutexLock lock(&mu_);
    for (uint64_t conversation :
         {seeded.direct, seeded.group, seeded.carol_group}) {
      State& state = states_[conversation];
      absl::StatusOr<std::vector<storage::Entry>> log =
          backend.StoredLog(conversation);
      if (!log.ok()) Violation(method, credential, log.status().ToString());
      for (size_t i = state.checked; i < log->size(); ++i) {
        const storage::Entry& entry = (*log)[i];
        if (entry.seq() != i + 1) {
          Violation(method, credential,
                    absl::StrCat("conversation ", conversation, " has seq ",
                                 entry.seq(), " at position ", i + 1));
        }
        if (entry.has_member_event()) {
          Apply(entry, state);
        } else if (!state.members.contains(entry.sender_id())) {
          Violation(method, credential,
                    absl::StrCat("user ", entry.sender_id(),
                                 " wrote seq ", entry.seq(),
                                 " into conversation ", conversation,
                                 " without being a member"));
        }
      }
      state.checked = log->size();
    }
  }

 private:
  struct State {
    size_t checked = 0;
    absl::flat_hash_set<uint64_t> members;
  };

  static void Apply(const storage::Entry& entry, State& state) {
    const message::v1::MemberEvent& event = entry.member_event();
    switch (event.kind()) {
      case message::v1::MemberEvent::KIND_CREATED:
        // A direct conversation's creation event names both users; a
        // group's names the members besides its creator (the sender).
        state.members.insert(entry.sender_id());
        [[fallthrough]];
      case message::v1::MemberEvent::KIND_ADDED:
        state.members.insert(event.user_ids().begin(), event.user_ids().end());
        return;
      case message::v1::MemberEvent::KIND_REMOVED:
        for (uint64_t user : event.user_ids()) state.members.erase(user);
        return;
      case message::v1::MemberEvent::KIND_LEFT:
        state.members.erase(entry.sender_id());
        return;
      default:
        return;
    }
  }

  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, State> states_ ABSL_GUARDED_BY(mu_);
};

LogAuditor& Auditor() {
  static auto* const auditor = new LogAuditor();
  return *auditor;
}

void CheckFinalStatus(const MethodDescriptor& method, Credential credential,
                      bool parses, const grpc::Status& status,
                      bool cancelled_by_us) {
  const grpc::StatusCode code = status.error_code();
  if (!AcceptableCode(code) &&
      !(cancelled_by_us && code == grpc::StatusCode::CANCELLED)) {
    Violation(method, credential,
              absl::StrCat("unacceptable ", Describe(status)));
  }
  if (!parses) {
    if (code != grpc::StatusCode::INVALID_ARGUMENT) {
      Violation(method, credential,
                absl::StrCat("unparsable request answered with ",
                             Describe(status), " (want INVALID_ARGUMENT)"));
    }
    return;
  }
  if (!CarriesValidToken(credential) && !NeedsNoToken(method) &&
      code != grpc::StatusCode::UNAUTHENTICATED) {
    Violation(method, credential,
              absl::StrCat("call without a valid token answered with ",
                           Describe(status), " (want UNAUTHENTICATED)"));
  }
}

grpc::Status RunUnary(const MethodDescriptor& method, Credential credential,
                      const std::string& payload, bool parses) {
  const MethodHandle& handle = HandleFor(method);
  grpc::ClientContext context;
  FuzzBackend::Get().Prepare(&context, credential);
  grpc::ByteBuffer request = ToByteBuffer(payload);
  grpc::ByteBuffer response;
  grpc::Status status =
      grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
          handle.channel.get(), *handle.rpc, &context, request, &response);
  CheckFinalStatus(method, credential, parses, status, false);
  if (status.ok()) {
    std::unique_ptr<google::protobuf::Message> parsed(
        google::protobuf::MessageFactory::generated_factory()
            ->GetPrototype(method.output_type())
            ->New());
    if (!parsed->ParseFromString(ByteBufferToString(response))) {
      Violation(method, credential, "the OK response does not parse");
    }
  }
  return status;
}

// Server streams stay open: read the first message (or the end), then
// cancel. A server that sends nothing and never ends hits the deadline.
grpc::Status RunServerStream(const MethodDescriptor& method,
                             Credential credential, const std::string& payload,
                             bool parses) {
  const MethodHandle& handle = HandleFor(method);
  grpc::ClientContext context;
  FuzzBackend::Get().Prepare(&context, credential);
  grpc::ByteBuffer request = ToByteBuffer(payload);
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(
          handle.channel.get(), *handle.rpc, &context, request));
  grpc::ByteBuffer first;
  const bool got_one = reader->Read(&first);
  if (got_one) {
    if (method.service()->full_name() == "im.message.v1.MessageService") {
      CheckServerFrame(method, credential, ByteBufferToString(first));
    }
    context.TryCancel();
    grpc::ByteBuffer rest;
    while (reader->Read(&rest)) {
    }
  }
  grpc::Status status = reader->Finish();
  CheckFinalStatus(method, credential, parses, status, got_one);
  return status;
}

void RunBidiStream(const MethodDescriptor& method, Credential credential,
                   const std::string& payload) {
  const MethodHandle& handle = HandleFor(method);
  grpc::ClientContext context;
  FuzzBackend::Get().Prepare(&context, credential);
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>>
      stream(grpc::internal::ClientReaderWriterFactory<
             grpc::ByteBuffer, grpc::ByteBuffer>::Create(handle.channel.get(),
                                                         *handle.rpc,
                                                         &context));
  for (const std::string& frame : SplitFrames(payload)) {
    if (!stream->Write(ToByteBuffer(frame))) break;
  }
  stream->WritesDone();
  grpc::ByteBuffer received;
  int frames = 0;
  while (stream->Read(&received)) {
    ++frames;
    CheckServerFrame(method, credential, ByteBufferToString(received));
  }
  grpc::Status status = stream->Finish();
  // Each frame parses on its own; the stream as a whole always "parses".
  CheckFinalStatus(method, credential, true, status, false);
  if (!CarriesValidToken(credential) && frames > 0) {
    Violation(method, credential,
              "a stream without a valid token received frames");
  }
}

}  // namespace

std::string EncodeRpcInput(uint8_t method_index, uint8_t credential,
                           const std::string& payload) {
  std::string input;
  input.push_back(static_cast<char>(method_index));
  input.push_back(static_cast<char>(credential));
  input += payload;
  return input;
}

std::string EncodeFrame(const std::string& frame) {
  std::string out;
  out.push_back(static_cast<char>(frame.size() & 0xff));
  out.push_back(static_cast<char>((frame.size() >> 8) & 0xff));
  return out + frame;
}

namespace {

void RunInput(const MethodDescriptor& method, Credential credential,
              const std::string& payload) {
  if (method.client_streaming()) {
    RunBidiStream(method, credential, payload);
  } else {
    std::unique_ptr<google::protobuf::Message> request(
        google::protobuf::MessageFactory::generated_factory()
            ->GetPrototype(method.input_type())
            ->New());
    const bool parses = request->ParseFromString(payload);
    auto run = [&](const std::string& bytes) {
      return method.server_streaming()
                 ? RunServerStream(method, credential, bytes, parses)
                 : RunUnary(method, credential, bytes, parses);
    };
    const grpc::Status status = run(payload);
    if (parses && IsForeignCaller(credential) &&
        NamedConversation(*request) ==
            FuzzBackend::Get().seeded().carol_group) {
      // A conversation the caller is not in must read exactly like one
      // that does not exist: same code, same message.
      SetNamedConversation(*request, kMissingConversation);
      const grpc::Status missing = run(request->SerializePartialAsString());
      if (status.ok() || status.error_code() != missing.error_code() ||
          status.error_message() != missing.error_message()) {
        Violation(method, credential,
                  absl::StrCat("carol's conversation answered ",
                               Describe(status), " but a missing one ",
                               Describe(missing)));
      }
    }
  }
  Auditor().Audit(method, credential);
}

const google::protobuf::ServiceDescriptor& ServiceNamed(
    const std::string& service_full_name) {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          service_full_name);
  if (service == nullptr || service->method_count() == 0) {
    std::fprintf(stderr, "unknown service %s\n", service_full_name.c_str());
    std::abort();
  }
  return *service;
}

Credential CredentialFrom(uint8_t byte) {
  return static_cast<Credential>(byte %
                                 static_cast<uint8_t>(Credential::kCount));
}

}  // namespace

void FuzzRpcInput(const std::string& service_full_name, const uint8_t* data,
                  size_t size) {
  FuzzBackend::Get();
  const google::protobuf::ServiceDescriptor& service =
      ServiceNamed(service_full_name);
  if (size < 2) return;
  RunInput(*service.method(data[0] % service.method_count()),
           CredentialFrom(data[1]),
           std::string(reinterpret_cast<const char*>(data + 2), size - 2));
}

void FuzzMethodInput(const std::string& service_full_name,
                     const std::string& method_name, const uint8_t* data,
                     size_t size) {
  FuzzBackend::Get();
  const google::protobuf::MethodDescriptor* method =
      ServiceNamed(service_full_name).FindMethodByName(method_name);
  if (method == nullptr) {
    std::fprintf(stderr, "unknown method %s\n", method_name.c_str());
    std::abort();
  }
  if (size < 1) return;
  RunInput(*method, CredentialFrom(data[0]),
           std::string(reinterpret_cast<const char*>(data + 1), size - 1));
}

int MethodIndex(const std::string& service_full_name,
                const std::string& method_name) {
  const google::protobuf::MethodDescriptor* method =
      ServiceNamed(service_full_name).FindMethodByName(method_name);
  return method == nullptr ? -1 : method->index();
}

}  // namespace im::fuzz
