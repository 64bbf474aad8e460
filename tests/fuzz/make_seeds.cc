// Writes the seed corpus of every fuzz target under the directory given as
// the only argument (tests/fuzz/corpus in the repository):
//   bazel run //tests/fuzz:make_seeds -- "$PWD/tests/fuzz/corpus"
// For each RPC: a plausible request from a caller allowed to make it (ids
// of the backend's seeded users and conversations), the same with invalid
// UTF-8 in each string field, naming a foreign conversation, and from each
// kind of bad credential; Chat frame sequences; and samples for the
// validation layers. Deterministic: the in-memory backend hands out the
// same ids on every start.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "im/message/v1/message.pb.h"
#include "services/history/page_token.h"
#include "tests/fuzz/fuzz_backend.h"
#include "tests/fuzz/rpc_fuzzing.h"

namespace im::fuzz {
namespace {

using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;

constexpr char kInvalidUtf8[] = "bad\xff\xfe\xc0\xafutf8";

class SeedWriter {
 public:
  explicit SeedWriter(std::filesystem::path root) : root_(std::move(root)) {}

  void Write(const std::string& target, const std::string& name,
             const std::string& bytes) {
    const std::filesystem::path dir = root_ / target;
    std::filesystem::create_directories(dir);
    std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
    out << bytes;
    ++written_;
  }
  int written() const { return written_; }

 private:
  std::filesystem::path root_;
  int written_ = 0;
};

// Fills `message` with plausible values chosen by field name.
void Fill(Message& message, const FuzzBackend::Seeded& seeded, int depth = 0) {
  const Reflection& reflection = *message.GetReflection();
  const google::protobuf::Descriptor& descriptor = *message.GetDescriptor();
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const FieldDescriptor& field = *descriptor.field(i);
    const std::string& name = field.name();
    if (field.real_containing_oneof() != nullptr &&
        field.index_in_oneof() != 0) {
      continue;  // the first member of each oneof only
    }
    if (field.is_map()) continue;
    switch (field.cpp_type()) {
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t value = 1;
        if (name.find("conversation") != std::string::npos) {
          value = seeded.group;
        } else if (name.find("user") != std::string::npos) {
          value = seeded.bob;
        } else if (name == "seq" || name == "anchor_seq") {
          value = 1;
        }
        if (field.is_repeated()) {
          reflection.AddUInt64(&message, &field, value);
        } else {
          reflection.SetUInt64(&message, &field, value);
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT32:
        if (!field.is_repeated()) reflection.SetUInt32(&message, &field, 10);
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        if (!field.is_repeated() && field.enum_type()->value_count() > 1) {
          reflection.SetEnum(&message, &field, field.enum_type()->value(1));
        }
        break;
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string value = absl::StrCat("seed-", name);
        if (name == "password") value = "fuzz-password-1";
        if (name == "username") value = "alice";
        if (name == "refresh_token") value = seeded.alice_refresh;
        if (name == "content_type") value = "text/plain";
        if (field.is_repeated()) {
          reflection.AddString(&message, &field, value);
        } else {
          reflection.SetString(&message, &field, value);
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (depth < 3 && !field.is_repeated() &&
            field.message_type()->full_name() !=
                "google.protobuf.Timestamp") {
          Fill(*reflection.MutableMessage(&message, &field), seeded, depth + 1);
        }
        break;
      default:
        break;
    }
  }
}

// Serializations of `message` with invalid UTF-8 in one string field each
// (recursing into set sub-messages), keyed by the field's path.
void InvalidUtf8Variants(const Message& message, const std::string& prefix,
                         std::vector<std::pair<std::string, std::string>>& out,
                         const Message& root, std::vector<const FieldDescriptor*>
                                                  path) {
  const Reflection& reflection = *message.GetReflection();
  const google::protobuf::Descriptor& descriptor = *message.GetDescriptor();
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const FieldDescriptor* field = descriptor.field(i);
    std::vector<const FieldDescriptor*> field_path = path;
    field_path.push_back(field);
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
        !field->is_repeated() &&
        field->type() == FieldDescriptor::TYPE_STRING) {
      std::unique_ptr<Message> copy(root.New());
      copy->CopyFrom(root);
      Message* at = copy.get();
      for (size_t k = 0; k + 1 < field_path.size(); ++k) {
        at = at->GetReflection()->MutableMessage(at, field_path[k]);
      }
      at->GetReflection()->SetString(at, field, kInvalidUtf8);
      std::string bytes;
      copy->SerializePartialToString(&bytes);
      out.emplace_back(absl::StrCat(prefix, field->name()), bytes);
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
               !field->is_repeated() && !field->is_map() &&
               reflection.HasField(message, field)) {
      InvalidUtf8Variants(reflection.GetMessage(message, field),
                          absl::StrCat(prefix, field->name(), "."), out, root,
                          field_path);
    }
  }
}

Credential DefaultCredential(const std::string& method) {
  for (const char* internal :
       {"Validate", "WatchRevocations", "OpenLease", "CloseLease",
        "Heartbeat"}) {
    if (method == internal) return Credential::kInternal;
  }
  for (const char* admin : {"CreateServiceAccount", "ListServiceAccounts",
                            "RevokeServiceAccount"}) {
    if (method == admin) return Credential::kAdmin;
  }
  if (method == "Publish") return Credential::kService;
  return Credential::kAlice;
}

void WriteServiceSeeds(SeedWriter& writer, const std::string& target,
                       const std::string& service_name,
                       const FuzzBackend::Seeded& seeded) {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          service_name);
  for (int m = 0; m < service->method_count(); ++m) {
    const google::protobuf::MethodDescriptor& method = *service->method(m);
    if (method.client_streaming()) continue;  // Chat: chat_fuzzer's seeds
    std::unique_ptr<Message> request(
        google::protobuf::MessageFactory::generated_factory()
            ->GetPrototype(method.input_type())
            ->New());
    Fill(*request, seeded);
    std::string bytes;
    request->SerializeToString(&bytes);
    const auto index = static_cast<uint8_t>(m);
    const auto good = static_cast<uint8_t>(DefaultCredential(method.name()));
    writer.Write(target, absl::StrCat(method.name(), "-plausible"),
                 EncodeRpcInput(index, good, bytes));
    writer.Write(target, absl::StrCat(method.name(), "-empty"),
                 EncodeRpcInput(index, good, ""));
    writer.Write(target, absl::StrCat(method.name(), "-garbage"),
                 EncodeRpcInput(index, good, "\x0a\xff\xff\xff\xff\x0f"));
    for (Credential bad : {Credential::kNone, Credential::kExpired,
                           Credential::kForged, Credential::kNotBearer}) {
      writer.Write(target,
                   absl::StrCat(method.name(), "-credential-",
                                static_cast<int>(bad)),
                   EncodeRpcInput(index, static_cast<uint8_t>(bad), bytes));
    }
    std::vector<std::pair<std::string, std::string>> variants;
    InvalidUtf8Variants(*request, "", variants, *request, {});
    for (const auto& [field, variant] : variants) {
      writer.Write(target, absl::StrCat(method.name(), "-utf8-", field),
                   EncodeRpcInput(index, good, variant));
    }
    const google::protobuf::FieldDescriptor* conversation =
        method.input_type()->FindFieldByName("conversation_id");
    if (conversation != nullptr &&
        conversation->cpp_type() == FieldDescriptor::CPPTYPE_UINT64) {
      request->GetReflection()->SetUInt64(request.get(), conversation,
                                          seeded.carol_group);
      request->SerializeToString(&bytes);
      writer.Write(target, absl::StrCat(method.name(), "-foreign"),
                   EncodeRpcInput(index, static_cast<uint8_t>(Credential::kBob),
                                  bytes));
    }
  }
}

std::string Frame(const message::v1::ClientFrame& frame) {
  return EncodeFrame(frame.SerializePartialAsString());
}

void WriteChatSeeds(SeedWriter& writer, const FuzzBackend::Seeded& seeded) {
  const std::string kTarget = "chat_fuzzer";
  message::v1::ClientFrame hello;
  (*hello.mutable_hello()->mutable_resume()->mutable_cursors())[seeded.direct] =
      0;
  hello.mutable_hello()->mutable_resume()->set_replay_unlisted(true);
  hello.mutable_hello()->mutable_device()->set_name("fuzz phone");
  message::v1::ClientFrame send;
  send.mutable_send()->set_request_id(1);
  send.mutable_send()->set_conversation_id(seeded.direct);
  send.mutable_send()->set_client_msg_id("chat-seed-1");
  send.mutable_send()->mutable_message()->set_text("hi on the stream");
  message::v1::ClientFrame read;
  read.mutable_read()->set_request_id(2);
  read.mutable_read()->set_conversation_id(seeded.direct);
  read.mutable_read()->set_seq(1);
  message::v1::ClientFrame typing;
  typing.mutable_typing()->set_request_id(3);
  typing.mutable_typing()->set_conversation_id(seeded.group);
  message::v1::ClientFrame bad_text = send;
  bad_text.mutable_send()->set_request_id(4);
  bad_text.mutable_send()->set_client_msg_id("chat-seed-bad");
  bad_text.mutable_send()->mutable_message()->set_text(kInvalidUtf8);
  message::v1::ClientFrame foreign = send;
  foreign.mutable_send()->set_request_id(5);
  foreign.mutable_send()->set_conversation_id(seeded.carol_group);
  message::v1::ClientFrame metadata = send;
  metadata.mutable_send()->set_request_id(6);
  metadata.mutable_send()->set_client_msg_id("chat-seed-meta");
  for (int i = 0; i < 20; ++i) {
    (*metadata.mutable_send()->mutable_message()->mutable_metadata())
        [absl::StrCat("k", i)] = "v";
  }

  const auto alice = static_cast<char>(Credential::kAlice);
  writer.Write(kTarget, "hello-send-read-typing",
               std::string(1, alice) + Frame(hello) + Frame(send) +
                   Frame(read) + Frame(typing));
  writer.Write(kTarget, "send-without-hello",
               std::string(1, alice) + Frame(send));
  writer.Write(kTarget, "hello-twice",
               std::string(1, alice) + Frame(hello) + Frame(hello));
  writer.Write(kTarget, "invalid-utf8-text",
               std::string(1, alice) + Frame(hello) + Frame(bad_text) +
                   Frame(send));
  writer.Write(kTarget, "foreign-conversation",
               std::string(1, static_cast<char>(Credential::kBob)) +
                   Frame(foreign));
  writer.Write(kTarget, "too-much-metadata",
               std::string(1, alice) + Frame(metadata));
  writer.Write(kTarget, "empty-and-garbage-frames",
               std::string(1, alice) + EncodeFrame("") +
                   EncodeFrame("\x12\xff\xff\xff\xff\x0f") + Frame(send));
  writer.Write(kTarget, "retry-same-client-msg-id",
               std::string(1, alice) + Frame(send) + Frame(send));
  for (Credential bad : {Credential::kNone, Credential::kExpired,
                         Credential::kForged, Credential::kGarbage}) {
    writer.Write(kTarget, absl::StrCat("credential-", static_cast<int>(bad)),
                 std::string(1, static_cast<char>(bad)) + Frame(hello) +
                     Frame(send));
  }
}

void WriteValidationSeeds(SeedWriter& writer) {
  const std::string kTarget = "validation_fuzzer";
  history::ConversationListPosition position;
  position.last_activity_at = absl::FromUnixMicros(1700000000123456);
  position.conversation_id = 42;
  writer.Write(kTarget, "list-token",
               std::string(1, '\0') +
                   history::EncodeConversationListToken(position));
  writer.Write(kTarget, "sync-token",
               std::string(1, '\0') + history::EncodeSyncToken(7));
  writer.Write(kTarget, "token-not-base64", std::string(1, '\0') + "!!!***");
  writer.Write(kTarget, "utf8-mixed",
               std::string(1, '\1') + "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
  writer.Write(kTarget, "utf8-overlong", std::string(1, '\1') + "\xc0\xaf");
  writer.Write(kTarget, "utf8-surrogate",
               std::string(1, '\1') + "\xed\xa0\x80");
  writer.Write(kTarget, "utf8-above-max",
               std::string(1, '\1') + "\xf4\x90\x80\x80");
  writer.Write(kTarget, "message-full",
               std::string(1, '\2') + "text\xfftext/plain\xffkey\xffvalue");
  writer.Write(kTarget, "message-bad-type",
               std::string(1, '\2') + "text\xff\x01\x02");
  writer.Write(kTarget, "client-msg-id-ok",
               std::string(1, '\3') + "a1B2.c3_d4:e5-f6");
  writer.Write(kTarget, "client-msg-id-space", std::string(1, '\3') + "a b");
}

}  // namespace
}  // namespace im::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
    return 2;
  }
  im::fuzz::SeedWriter writer{std::filesystem::path(argv[1])};
  const im::fuzz::FuzzBackend::Seeded& seeded =
      im::fuzz::FuzzBackend::Get().seeded();
  im::fuzz::WriteServiceSeeds(writer, "auth_fuzzer", "im.auth.v1.AuthService",
                              seeded);
  im::fuzz::WriteServiceSeeds(writer, "message_fuzzer",
                              "im.message.v1.MessageService", seeded);
  im::fuzz::WriteServiceSeeds(writer, "history_fuzzer",
                              "im.history.v1.HistoryService", seeded);
  im::fuzz::WriteServiceSeeds(writer, "presence_fuzzer",
                              "im.presence.v1.PresenceService", seeded);
  im::fuzz::WriteChatSeeds(writer, seeded);
  im::fuzz::WriteValidationSeeds(writer);
  std::printf("wrote %d seeds under %s\n", writer.written(), argv[1]);
  return 0;
}
