#include "tools/imctl/imctl.h"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cpp/chat_event_queue.h"
#include "clients/cpp/client_msg_id.h"
#include "clients/cpp/im_client.h"
#include "google/protobuf/util/json_util.h"
#include "services/common/proto_time.h"
#include "tools/imctl/command_line.h"
#include "tools/imctl/session_file.h"

namespace im::imctl {
namespace {

namespace auth_v1 = ::im::auth::v1;
namespace message_v1 = ::im::message::v1;
namespace history_v1 = ::im::history::v1;
namespace presence_v1 = ::im::presence::v1;
using client::ChatEvent;
using client::ChatSession;
using client::ImClient;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// ------------------------------------------------------------ context ----

struct Context {
  const Environment& env;
  ParsedArgs global;
  ParsedArgs args;
  std::ostream& out;
  std::ostream& err;
  std::unique_ptr<StateFiles> files;
  client::Endpoints endpoints;
  absl::Duration timeout = absl::Seconds(10);
  // Fed by the client's chat session: declared before the client so it
  // outlives it (the session stops with the client).
  client::ChatEventQueue events;
  std::unique_ptr<ImClient> client;
};

using Handler = absl::Status (*)(Context&);

struct Command {
  std::string name;
  std::string usage;
  std::string summary;
  std::vector<OptionSpec> options;
  size_t min_args = 0;
  size_t max_args = 0;  // SIZE_MAX: any number
  Handler run = nullptr;
};

const std::vector<OptionSpec>& GlobalOptions() {
  static const auto* options = new std::vector<OptionSpec>{
      {"auth-addr", "HOST:PORT", "auth service (env IM_AUTH_ADDR; 127.0.0.1:50051)"},
      {"message-addr", "HOST:PORT",
       "message service (env IM_MESSAGE_ADDR; 127.0.0.1:50053)"},
      {"history-addr", "HOST:PORT",
       "history service (env IM_HISTORY_ADDR; 127.0.0.1:50054)"},
      {"presence-addr", "HOST:PORT",
       "presence service (env IM_PRESENCE_ADDR; 127.0.0.1:50052)"},
      {"tls-ca", "FILE", "CA of the servers: use TLS (env IM_TLS_CA)"},
      {"tls-cert", "FILE", "client certificate for mTLS (env IM_TLS_CERT)"},
      {"tls-key", "FILE", "its private key (env IM_TLS_KEY)"},
      {"tls-server-name", "NAME", "expected server name, if not the host"},
      {"state-dir", "DIR",
       "session and cursors (env IMCTL_STATE_DIR; "
       "$XDG_CONFIG_HOME/imctl or ~/.config/imctl)"},
      {"timeout", "DURATION", "deadline of each call, e.g. 10s (default)"},
  };
  return *options;
}

std::string Setting(const Context& ctx, const std::string& option,
                    const std::string& env_var, const std::string& fallback) {
  if (ctx.global.has(option)) return ctx.global.get(option);
  std::string value = ctx.env.getenv(env_var);
  return value.empty() ? fallback : value;
}

absl::Status Configure(Context& ctx) {
  ctx.endpoints.auth = Setting(ctx, "auth-addr", "IM_AUTH_ADDR", "127.0.0.1:50051");
  ctx.endpoints.message =
      Setting(ctx, "message-addr", "IM_MESSAGE_ADDR", "127.0.0.1:50053");
  ctx.endpoints.history =
      Setting(ctx, "history-addr", "IM_HISTORY_ADDR", "127.0.0.1:50054");
  ctx.endpoints.presence =
      Setting(ctx, "presence-addr", "IM_PRESENCE_ADDR", "127.0.0.1:50052");
  ctx.endpoints.tls.ca_file = Setting(ctx, "tls-ca", "IM_TLS_CA", "");
  ctx.endpoints.tls.cert_file = Setting(ctx, "tls-cert", "IM_TLS_CERT", "");
  ctx.endpoints.tls.key_file = Setting(ctx, "tls-key", "IM_TLS_KEY", "");
  ctx.endpoints.tls.server_name_override = ctx.global.get("tls-server-name");
  if (ctx.global.has("timeout") &&
      !absl::ParseDuration(ctx.global.get("timeout"), &ctx.timeout)) {
    return absl::InvalidArgumentError("--timeout: not a duration (e.g. 10s)");
  }
  std::string dir = Setting(ctx, "state-dir", "IMCTL_STATE_DIR", "");
  if (dir.empty()) {
    dir = DefaultStateDirectory(ctx.env.getenv("XDG_CONFIG_HOME"),
                                ctx.env.getenv("HOME"));
  }
  ctx.files = std::make_unique<StateFiles>(dir);
  return absl::OkStatus();
}

std::string DeviceName() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return absl::StrCat("imctl@", host);
}

absl::StatusOr<ImClient*> Client(Context& ctx) {
  if (ctx.client != nullptr) return ctx.client.get();
  ImClient::Options options;
  options.endpoints = ctx.endpoints;
  options.device_name = DeviceName();
  options.device_kind = auth_v1::DEVICE_KIND_CLI;
  options.rpc_timeout = ctx.timeout;
  absl::StatusOr<std::unique_ptr<ImClient>> client = ImClient::Create(options);
  if (!client.ok()) return client.status();
  ctx.client = *std::move(client);
  return ctx.client.get();
}

// The client with the stored session, renewed (and saved) when needed.
absl::StatusOr<ImClient*> SignedIn(Context& ctx) {
  absl::StatusOr<ImClient*> client = Client(ctx);
  if (!client.ok()) return client.status();
  // Held while the stored tokens may be renewed: another imctl must not
  // present the same refresh token meanwhile.
  absl::StatusOr<StateFiles::Lock> lock = ctx.files->Acquire();
  if (!lock.ok()) return lock.status();
  absl::StatusOr<auth_v1::TokenPair> stored = ctx.files->LoadSession();
  if (!stored.ok()) return stored.status();
  const StateFiles* files = ctx.files.get();
  std::ostream* err = &ctx.err;
  (*client)->tokens().AddTokensListener(
      [files, err](const auth_v1::TokenPair& tokens) {
        if (absl::Status saved = files->SaveSession(tokens); !saved.ok()) {
          *err << "imctl: cannot save the renewed session: " << saved << "\n";
        }
      });
  absl::Status resumed = (*client)->ResumeSession(*stored);
  if (!resumed.ok()) {
    if (resumed.code() == absl::StatusCode::kUnauthenticated) {
      return absl::UnauthenticatedError(absl::StrCat(
          "the stored session is no longer valid (", resumed.message(),
          "); log in again"));
    }
    return resumed;
  }
  return *client;
}

// ------------------------------------------------------------ helpers ----

absl::StatusOr<std::string> ReadPassword(Context& ctx, const std::string& prompt) {
  std::string password = ctx.env.getenv("IMCTL_PASSWORD");
  if (!password.empty()) return password;
  if (ctx.args.has("password-stdin")) {
    if (ctx.env.in == nullptr || !std::getline(*ctx.env.in, password)) {
      return absl::InvalidArgumentError("no password on stdin");
    }
    return password;
  }
  if (!isatty(STDIN_FILENO)) {
    return absl::InvalidArgumentError(
        "no terminal for the password: set IMCTL_PASSWORD or use "
        "--password-stdin");
  }
  ctx.err << prompt << std::flush;
  termios saved{};
  tcgetattr(STDIN_FILENO, &saved);
  termios quiet = saved;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::getline(std::cin, password);
  tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  ctx.err << "\n";
  return password;
}

bool AllDigits(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// "@name" or "name": a username; digits: a user id.
absl::StatusOr<uint64_t> ResolveUser(ImClient& client, const std::string& arg) {
  if (arg.empty() || arg == "@") {
    return absl::InvalidArgumentError("empty user");
  }
  if (arg[0] != '@' && AllDigits(arg)) {
    uint64_t id = 0;
    if (!absl::SimpleAtoi(arg, &id) || id == 0) {
      return absl::InvalidArgumentError("bad user id " + arg);
    }
    return id;
  }
  return client.ResolveUsername(arg[0] == '@' ? arg.substr(1) : arg);
}

absl::StatusOr<std::vector<uint64_t>> ResolveUsers(
    ImClient& client, const std::vector<std::string>& args) {
  std::vector<uint64_t> ids;
  for (const std::string& arg : args) {
    absl::StatusOr<uint64_t> id = ResolveUser(client, arg);
    if (!id.ok()) return id.status();
    ids.push_back(*id);
  }
  return ids;
}

// A conversation id, or "@user" for the direct conversation with them.
absl::StatusOr<uint64_t> ResolveConversation(ImClient& client,
                                             const std::string& arg) {
  if (!arg.empty() && arg[0] == '@') {
    absl::StatusOr<uint64_t> user = ResolveUser(client, arg);
    if (!user.ok()) return user.status();
    absl::StatusOr<message_v1::Conversation> direct =
        client.GetOrCreateDirect(*user);
    if (!direct.ok()) return direct.status();
    return direct->conversation_id();
  }
  uint64_t id = 0;
  if (!absl::SimpleAtoi(arg, &id) || id == 0) {
    return absl::InvalidArgumentError(
        "conversation must be an id or @user, got \"" + arg + "\"");
  }
  return id;
}

absl::StatusOr<uint64_t> PositiveNumber(const std::string& text,
                                        const std::string& what) {
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) {
    return absl::InvalidArgumentError(what + " must be a number, got \"" +
                                      text + "\"");
  }
  return value;
}

std::string Json(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    return "{}";
  }
  return json;
}

std::string FormatTime(const google::protobuf::Timestamp& time) {
  if (time.seconds() == 0 && time.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", FromProtoTime(time),
                          absl::LocalTimeZone());
}

// User names for display, looked up in batches and remembered.
class Names {
 public:
  explicit Names(ImClient& client) : client_(client) {}

  void Prefetch(const std::vector<uint64_t>& ids) {
    std::vector<uint64_t> missing;
    for (uint64_t id : ids) {
      if (id != 0 && !names_.contains(id)) missing.push_back(id);
    }
    if (missing.empty()) return;
    absl::StatusOr<std::vector<auth_v1::User>> users =
        client_.LookupUsers(missing, {});
    if (users.ok()) {
      for (const auth_v1::User& user : *users) {
        names_[user.user_id()] = user.username();
      }
    }
    // Unknown (or the lookup failed): show the id, do not ask again.
    for (uint64_t id : missing) names_.try_emplace(id, absl::StrCat("#", id));
  }

  std::string Of(uint64_t id) {
    Prefetch({id});
    return names_[id];
  }

 private:
  ImClient& client_;
  absl::flat_hash_map<uint64_t, std::string> names_;
};

std::string NameList(Names& names, const google::protobuf::RepeatedField<uint64_t>& ids) {
  std::vector<std::string> parts;
  for (uint64_t id : ids) parts.push_back(names.Of(id));
  return absl::StrJoin(parts, ", ");
}

std::string EntryLine(const message_v1::Entry& entry, Names& names) {
  const std::string head =
      absl::StrCat("[", entry.conversation_id(), ":", entry.seq(), "] ",
                   FormatTime(entry.sent_at()), " ", names.Of(entry.sender_id()));
  if (entry.has_message()) {
    return absl::StrCat(head, ": ", entry.message().text());
  }
  const message_v1::MemberEvent& event = entry.member_event();
  switch (event.kind()) {
    case message_v1::MemberEvent::KIND_CREATED:
      return absl::StrCat(head, " created \"", event.title(), "\" with ",
                          NameList(names, event.user_ids()));
    case message_v1::MemberEvent::KIND_ADDED:
      return absl::StrCat(head, " added ", NameList(names, event.user_ids()));
    case message_v1::MemberEvent::KIND_REMOVED:
      return absl::StrCat(head, " removed ", NameList(names, event.user_ids()));
    case message_v1::MemberEvent::KIND_LEFT:
      return absl::StrCat(head, " left");
    case message_v1::MemberEvent::KIND_ROLE_CHANGED:
      return absl::StrCat(head, " changed the role of ",
                          NameList(names, event.user_ids()), " to ",
                          message_v1::MemberRole_Name(event.role()));
    default:
      return absl::StrCat(head, " (membership change)");
  }
}

// --------------------------------------------------------- auth commands --

absl::Status Register(Context& ctx) {
  absl::StatusOr<ImClient*> client = Client(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<std::string> password = ReadPassword(ctx, "new password: ");
  if (!password.ok()) return password.status();
  absl::StatusOr<auth_v1::User> user = (*client)->Register(
      ctx.args.positional[0], *password, ctx.args.get("display-name"));
  if (!user.ok()) return user.status();
  ctx.out << "registered " << user->username() << " (user " << user->user_id()
          << ")\n";
  return absl::OkStatus();
}

absl::Status Login(Context& ctx) {
  absl::StatusOr<ImClient*> client = Client(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<std::string> password = ReadPassword(ctx, "password: ");
  if (!password.ok()) return password.status();
  absl::StatusOr<StateFiles::Lock> lock = ctx.files->Acquire();
  if (!lock.ok()) return lock.status();
  if (absl::Status status = (*client)->Login(ctx.args.positional[0], *password);
      !status.ok()) {
    return status;
  }
  const auth_v1::TokenPair tokens = (*client)->tokens().tokens();
  if (absl::Status saved = ctx.files->SaveSession(tokens); !saved.ok()) {
    return saved;
  }
  ctx.out << "logged in as " << ctx.args.positional[0] << " (user "
          << tokens.user_id() << ", session " << tokens.session_id()
          << "); session saved in " << ctx.files->session_path() << "\n";
  return absl::OkStatus();
}

absl::Status Logout(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::Status status = (*client)->Logout();
  if (!status.ok() && status.code() != absl::StatusCode::kUnauthenticated) {
    return status;
  }
  if (absl::Status removed = ctx.files->RemoveSession(); !removed.ok()) {
    return removed;
  }
  ctx.out << "logged out\n";
  return absl::OkStatus();
}

absl::Status WhoAmI(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<auth_v1::WhoAmIResponse> me = (*client)->WhoAmI();
  if (!me.ok()) return me.status();
  if (ctx.args.has("json")) {
    ctx.out << Json(*me) << "\n";
    return absl::OkStatus();
  }
  std::string role = auth_v1::Role_Name(me->user().role());
  role = absl::AsciiStrToLower(absl::StripPrefix(role, "ROLE_"));
  ctx.out << me->user().username() << " (user " << me->user().user_id()
          << ", " << role << ", session " << me->session_id() << ")\n";
  return absl::OkStatus();
}

// ------------------------------------------------------ message commands --

// Waits for the outcome of send `id` among the session's events.
absl::StatusOr<client::SendOutcome> AwaitOutcome(client::ChatEventQueue& events,
                                                 const std::string& id,
                                                 absl::Duration wait) {
  const absl::Time deadline = absl::Now() + wait;
  while (absl::Now() < deadline) {
    std::optional<ChatEvent> event = events.Next(deadline - absl::Now());
    if (!event.has_value()) break;
    if (auto* outcome = std::get_if<client::SendOutcome>(&*event)) {
      if (outcome->client_msg_id == id) return *outcome;
    } else if (auto* change = std::get_if<client::ConnectionChange>(&*event)) {
      if (change->state == client::ChatState::kSessionLost) {
        return change->status;
      }
    }
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "no acknowledgement within ", absl::FormatDuration(wait),
      "; the message may or may not be stored (client_msg_id ", id,
      "; send it again with --client-msg-id to be sure it is stored once)"));
}

absl::Status Send(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<uint64_t> conversation =
      ResolveConversation(**client, ctx.args.positional[0]);
  if (!conversation.ok()) return conversation.status();
  std::vector<std::string> words(ctx.args.positional.begin() + 1,
                                 ctx.args.positional.end());
  message_v1::Message message;
  message.set_text(absl::StrJoin(words, " "));
  absl::Duration wait = absl::Seconds(30);
  if (ctx.args.has("wait") && !absl::ParseDuration(ctx.args.get("wait"), &wait)) {
    return absl::InvalidArgumentError("--wait: not a duration");
  }
  client::ChatEventQueue& events = ctx.events;
  ChatSession::Options options;
  // Only this send's ack matters: no replay.
  options.replay_unlisted = false;
  absl::StatusOr<ChatSession*> chat =
      (*client)->StartChat(options, events.Callback());
  if (!chat.ok()) return chat.status();
  absl::StatusOr<std::string> id = (*chat)->Send(
      *conversation, message, ctx.args.get("client-msg-id"));
  if (!id.ok()) return id.status();
  absl::StatusOr<client::SendOutcome> outcome = AwaitOutcome(events, *id, wait);
  (*client)->StopChat();
  if (!outcome.ok()) return outcome.status();
  if (outcome->state == client::SendOutcome::State::kFailed) {
    return outcome->status;
  }
  if (ctx.args.has("json")) {
    message_v1::SendAck ack;
    ack.set_conversation_id(outcome->conversation_id);
    ack.set_seq(outcome->seq);
    ack.set_client_msg_id(outcome->client_msg_id);
    ack.set_duplicate(outcome->duplicate);
    SetProtoTime(outcome->sent_at, ack.mutable_sent_at());
    ctx.out << Json(ack) << "\n";
  } else {
    ctx.out << "sent to conversation " << outcome->conversation_id << " as seq "
            << outcome->seq << "\n";
  }
  return absl::OkStatus();
}

absl::Status Tail(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  const bool json = ctx.args.has("json");
  uint64_t max_entries = 0;
  if (ctx.args.has("count")) {
    absl::StatusOr<uint64_t> count = PositiveNumber(ctx.args.get("count"), "--count");
    if (!count.ok()) return count.status();
    max_entries = *count;
  }
  absl::Duration run_for = absl::InfiniteDuration();
  if (ctx.args.has("for") && !absl::ParseDuration(ctx.args.get("for"), &run_for)) {
    return absl::InvalidArgumentError("--for: not a duration");
  }

  // Where to start: the cursors of the last tail; without any, from now
  // (every conversation at its current last seq) unless --all.
  absl::flat_hash_map<uint64_t, uint64_t> cursors;
  if (!ctx.args.has("all")) {
    absl::StatusOr<absl::flat_hash_map<uint64_t, uint64_t>> saved =
        ctx.files->LoadCursors();
    if (!saved.ok()) return saved.status();
    cursors = *std::move(saved);
    if (cursors.empty()) {
      absl::StatusOr<std::vector<history_v1::ConversationSummary>> all =
          (*client)->ListAllConversations();
      if (!all.ok()) return all.status();
      for (const history_v1::ConversationSummary& summary : *all) {
        cursors[summary.conversation().conversation_id()] =
            summary.conversation().last_seq();
      }
    }
  }
  client::ChatEventQueue& events = ctx.events;
  ChatSession::Options options;
  options.initial_cursors = cursors;
  options.replay_unlisted = true;
  absl::StatusOr<ChatSession*> chat =
      (*client)->StartChat(options, events.Callback());
  if (!chat.ok()) return chat.status();

  Names names(**client);
  absl::flat_hash_map<uint64_t, uint64_t> printed = cursors;
  bool dirty = false;
  absl::Time last_save = absl::Now();
  auto save = [&] {
    if (!dirty) return;
    if (absl::Status saved = ctx.files->SaveCursors(printed); !saved.ok()) {
      ctx.err << "imctl tail: cannot save cursors: " << saved << "\n";
    }
    dirty = false;
    last_save = absl::Now();
  };
  const absl::Time end = absl::Now() + run_for;
  uint64_t entries = 0;
  absl::Status result;
  while (absl::Now() < end &&
         (ctx.env.interrupted == nullptr || !ctx.env.interrupted->load())) {
    std::optional<ChatEvent> event =
        events.Next(std::min(absl::Milliseconds(200), end - absl::Now()));
    if (dirty && absl::Now() - last_save > absl::Milliseconds(500)) save();
    if (!event.has_value()) continue;
    if (auto* entry = std::get_if<message_v1::Entry>(&*event)) {
      if (json) {
        message_v1::ServerFrame frame;
        *frame.mutable_entry() = *entry;
        ctx.out << Json(frame) << std::endl;
      } else {
        ctx.out << EntryLine(*entry, names) << std::endl;
      }
      printed[entry->conversation_id()] = entry->seq();
      dirty = true;
      if (max_entries > 0 && ++entries >= max_entries) break;
    } else if (auto* receipt = std::get_if<message_v1::Receipt>(&*event)) {
      if (json) {
        message_v1::ServerFrame frame;
        *frame.mutable_receipt() = *receipt;
        ctx.out << Json(frame) << std::endl;
      } else {
        ctx.out << "[" << receipt->conversation_id() << "] "
                << names.Of(receipt->user_id()) << " read up to "
                << receipt->read_seq() << std::endl;
      }
    } else if (auto* typing = std::get_if<message_v1::Typing>(&*event)) {
      if (json) {
        message_v1::ServerFrame frame;
        *frame.mutable_typing() = *typing;
        ctx.out << Json(frame) << std::endl;
      } else {
        ctx.out << "[" << typing->conversation_id() << "] "
                << names.Of(typing->user_id()) << " is typing" << std::endl;
      }
    } else if (auto* change = std::get_if<client::ConnectionChange>(&*event)) {
      if (change->state == client::ChatState::kLive) {
        ctx.err << "imctl tail: live" << std::endl;
      } else if (change->state == client::ChatState::kDisconnected &&
                 !change->status.ok()) {
        ctx.err << "imctl tail: stream ended ("
                << absl::StatusCodeToString(change->status.code()) << ": "
                << change->status.message() << "); reconnecting in "
                << absl::FormatDuration(absl::Trunc(change->retry_in,
                                                    absl::Milliseconds(1)))
                << std::endl;
      } else if (change->state == client::ChatState::kSessionLost) {
        result = change->status;
        break;
      }
    }
  }
  (*client)->StopChat();
  save();
  return result;
}

absl::Status History(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<uint64_t> conversation =
      ResolveConversation(**client, ctx.args.positional[0]);
  if (!conversation.ok()) return conversation.status();
  uint64_t before = 0, limit = 20;
  if (ctx.args.has("before")) {
    absl::StatusOr<uint64_t> n = PositiveNumber(ctx.args.get("before"), "--before");
    if (!n.ok()) return n.status();
    before = *n;
  }
  if (ctx.args.has("limit")) {
    absl::StatusOr<uint64_t> n = PositiveNumber(ctx.args.get("limit"), "--limit");
    if (!n.ok()) return n.status();
    limit = *n;
  }
  absl::StatusOr<history_v1::GetHistoryResponse> page = (*client)->GetHistory(
      *conversation, before, history_v1::DIRECTION_BEFORE,
      static_cast<uint32_t>(std::min<uint64_t>(limit, UINT32_MAX)));
  if (!page.ok()) return page.status();
  if (ctx.args.has("json")) {
    ctx.out << Json(*page) << "\n";
    return absl::OkStatus();
  }
  Names names(**client);
  std::vector<uint64_t> senders;
  for (const message_v1::Entry& entry : page->entries()) {
    senders.push_back(entry.sender_id());
  }
  names.Prefetch(senders);
  for (const message_v1::Entry& entry : page->entries()) {
    ctx.out << EntryLine(entry, names) << "\n";
  }
  if (page->has_more() && page->entries_size() > 0) {
    ctx.err << "(older: imctl history " << *conversation << " --before "
            << page->entries(0).seq() << ")\n";
  }
  return absl::OkStatus();
}

absl::Status Conversations(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<std::vector<history_v1::ConversationSummary>> all =
      (*client)->ListAllConversations();
  if (!all.ok()) return all.status();
  if (ctx.args.has("json")) {
    history_v1::ListConversationsResponse response;
    for (const auto& summary : *all) *response.add_conversations() = summary;
    ctx.out << Json(response) << "\n";
    return absl::OkStatus();
  }
  Names names(**client);
  std::vector<uint64_t> ids;
  for (const auto& summary : *all) {
    ids.push_back(summary.conversation().peer_user_id());
    ids.push_back(summary.last_entry().sender_id());
  }
  names.Prefetch(ids);
  for (const auto& summary : *all) {
    const message_v1::Conversation& c = summary.conversation();
    std::string what = c.kind() == message_v1::CONVERSATION_KIND_DIRECT
                           ? absl::StrCat("direct with @", names.Of(c.peer_user_id()))
                           : absl::StrCat("group \"", c.title(), "\" (",
                                          c.member_count(), " members)");
    ctx.out << c.conversation_id() << "  " << what << "  last seq "
            << c.last_seq() << "  unread " << summary.unread_count();
    if (summary.has_last_entry() && summary.last_entry().has_message()) {
      ctx.out << "  " << names.Of(summary.last_entry().sender_id()) << ": "
              << summary.last_entry().message().text();
    }
    ctx.out << "\n";
  }
  return absl::OkStatus();
}

absl::Status GroupCreate(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<std::vector<uint64_t>> members = ResolveUsers(
      **client, std::vector<std::string>(ctx.args.positional.begin() + 1,
                                         ctx.args.positional.end()));
  if (!members.ok()) return members.status();
  absl::StatusOr<message_v1::Conversation> group =
      (*client)->CreateGroup(ctx.args.positional[0], *members);
  if (!group.ok()) return group.status();
  if (ctx.args.has("json")) {
    ctx.out << Json(*group) << "\n";
  } else {
    ctx.out << "created group " << group->conversation_id() << " \""
            << group->title() << "\" with " << group->member_count()
            << " members\n";
  }
  return absl::OkStatus();
}

absl::Status GroupAdd(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<uint64_t> conversation =
      ResolveConversation(**client, ctx.args.positional[0]);
  if (!conversation.ok()) return conversation.status();
  absl::StatusOr<std::vector<uint64_t>> users = ResolveUsers(
      **client, std::vector<std::string>(ctx.args.positional.begin() + 1,
                                         ctx.args.positional.end()));
  if (!users.ok()) return users.status();
  absl::StatusOr<message_v1::AddMembersResponse> added =
      (*client)->AddMembers(*conversation, *users);
  if (!added.ok()) return added.status();
  ctx.out << "added " << added->added_user_ids_size() << " to conversation "
          << *conversation;
  if (added->seq() != 0) ctx.out << " (seq " << added->seq() << ")";
  ctx.out << "\n";
  return absl::OkStatus();
}

absl::Status GroupRemove(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<uint64_t> conversation =
      ResolveConversation(**client, ctx.args.positional[0]);
  if (!conversation.ok()) return conversation.status();
  absl::StatusOr<uint64_t> user = ResolveUser(**client, ctx.args.positional[1]);
  if (!user.ok()) return user.status();
  absl::StatusOr<uint64_t> seq = (*client)->RemoveMember(*conversation, *user);
  if (!seq.ok()) return seq.status();
  ctx.out << "removed " << ctx.args.positional[1] << " from conversation "
          << *conversation << " (seq " << *seq << ")\n";
  return absl::OkStatus();
}

absl::Status GroupLeave(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<uint64_t> conversation =
      ResolveConversation(**client, ctx.args.positional[0]);
  if (!conversation.ok()) return conversation.status();
  absl::StatusOr<uint64_t> seq = (*client)->Leave(*conversation);
  if (!seq.ok()) return seq.status();
  ctx.out << "left conversation " << *conversation << " (seq " << *seq << ")\n";
  return absl::OkStatus();
}

absl::Status GroupMembers(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<uint64_t> conversation =
      ResolveConversation(**client, ctx.args.positional[0]);
  if (!conversation.ok()) return conversation.status();
  Names names(**client);
  uint64_t after = 0;
  for (;;) {
    absl::StatusOr<message_v1::ListMembersResponse> page =
        (*client)->ListMembers(*conversation, after, 1000);
    if (!page.ok()) return page.status();
    std::vector<uint64_t> ids;
    for (const auto& member : page->members()) ids.push_back(member.user_id());
    names.Prefetch(ids);
    for (const auto& member : page->members()) {
      std::string role = message_v1::MemberRole_Name(member.role());
      role = absl::AsciiStrToLower(absl::StripPrefix(role, "MEMBER_ROLE_"));
      ctx.out << names.Of(member.user_id()) << "  (user " << member.user_id()
              << ", " << role << ", read up to " << member.read_seq() << ")\n";
      after = member.user_id();
    }
    if (!page->has_more()) break;
  }
  return absl::OkStatus();
}

absl::Status Read(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<uint64_t> conversation =
      ResolveConversation(**client, ctx.args.positional[0]);
  if (!conversation.ok()) return conversation.status();
  absl::StatusOr<uint64_t> seq = PositiveNumber(ctx.args.positional[1], "seq");
  if (!seq.ok()) return seq.status();
  absl::StatusOr<uint64_t> marker = (*client)->MarkRead(*conversation, *seq);
  if (!marker.ok()) return marker.status();
  ctx.out << "conversation " << *conversation << " read up to " << *marker
          << "\n";
  return absl::OkStatus();
}

absl::Status Presence(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<std::vector<uint64_t>> users =
      ResolveUsers(**client, ctx.args.positional);
  if (!users.ok()) return users.status();
  absl::StatusOr<std::vector<presence_v1::Presence>> presences =
      (*client)->QueryPresence(*users);
  if (!presences.ok()) return presences.status();
  if (ctx.args.has("json")) {
    presence_v1::QueryResponse response;
    for (const auto& p : *presences) *response.add_presences() = p;
    ctx.out << Json(response) << "\n";
    return absl::OkStatus();
  }
  Names names(**client);
  names.Prefetch(*users);
  for (const presence_v1::Presence& p : *presences) {
    ctx.out << names.Of(p.user_id()) << "  ";
    switch (p.state()) {
      case presence_v1::PRESENCE_STATE_ONLINE: {
        std::vector<std::string> devices;
        for (const presence_v1::Device& d : p.devices()) {
          std::string kind = auth_v1::DeviceKind_Name(d.kind());
          kind = absl::AsciiStrToLower(absl::StripPrefix(kind, "DEVICE_KIND_"));
          devices.push_back(absl::StrCat(kind, " ", d.name(), " since ",
                                         FormatTime(d.online_since())));
        }
        ctx.out << "online (" << absl::StrJoin(devices, "; ") << ")";
        break;
      }
      case presence_v1::PRESENCE_STATE_OFFLINE:
        ctx.out << "offline, last seen " << FormatTime(p.last_seen());
        break;
      default:
        ctx.out << "unknown";
    }
    if (!p.status_text().empty()) ctx.out << "  \"" << p.status_text() << "\"";
    ctx.out << "\n";
  }
  return absl::OkStatus();
}

// ------------------------------------------------------ service accounts --

absl::Status ServiceAccountCreate(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<auth_v1::CreateServiceAccountResponse> created =
      (*client)->CreateServiceAccount(ctx.args.positional[0],
                                      ctx.args.get("description"));
  if (!created.ok()) return created.status();
  if (ctx.args.has("json")) {
    ctx.out << Json(*created) << "\n";
    return absl::OkStatus();
  }
  ctx.out << "created service account " << created->account().name()
          << " (user " << created->account().user_id() << ")\n"
          << "api key (shown only now): " << created->api_key() << "\n";
  return absl::OkStatus();
}

absl::Status ServiceAccountList(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<std::vector<auth_v1::ServiceAccount>> accounts =
      (*client)->ListServiceAccounts();
  if (!accounts.ok()) return accounts.status();
  if (ctx.args.has("json")) {
    auth_v1::ListServiceAccountsResponse response;
    for (const auto& account : *accounts) *response.add_accounts() = account;
    ctx.out << Json(response) << "\n";
    return absl::OkStatus();
  }
  for (const auth_v1::ServiceAccount& account : *accounts) {
    ctx.out << account.user_id() << "  " << account.name() << "  key "
            << account.key_prefix() << "...  "
            << (account.has_revoked_at()
                    ? "revoked " + FormatTime(account.revoked_at())
                    : std::string("active"))
            << "  " << account.description() << "\n";
  }
  return absl::OkStatus();
}

absl::Status ServiceAccountRevoke(Context& ctx) {
  absl::StatusOr<ImClient*> client = SignedIn(ctx);
  if (!client.ok()) return client.status();
  absl::StatusOr<uint64_t> id = PositiveNumber(ctx.args.positional[0], "user id");
  if (!id.ok()) return id.status();
  absl::StatusOr<auth_v1::ServiceAccount> account =
      (*client)->RevokeServiceAccount(*id);
  if (!account.ok()) return account.status();
  ctx.out << "revoked service account " << account->name() << " (user "
          << account->user_id() << ")\n";
  return absl::OkStatus();
}

absl::StatusOr<std::string> ApiKey(Context& ctx) {
  std::string key;
  if (ctx.args.has("api-key-file")) {
    FILE* file = fopen(ctx.args.get("api-key-file").c_str(), "r");
    if (file == nullptr) {
      return absl::NotFoundError("cannot read " + ctx.args.get("api-key-file"));
    }
    char buffer[512] = {};
    const size_t n = fread(buffer, 1, sizeof(buffer) - 1, file);
    fclose(file);
    key = std::string(absl::StripAsciiWhitespace(absl::string_view(buffer, n)));
  } else {
    key = ctx.env.getenv("IM_API_KEY");
  }
  if (key.empty()) {
    return absl::InvalidArgumentError(
        "no API key: use --api-key-file FILE or set IM_API_KEY");
  }
  return key;
}

absl::Status Publish(Context& ctx) {
  absl::StatusOr<ImClient*> client = Client(ctx);
  if (!client.ok()) return client.status();
  if (ctx.args.has("to") == ctx.args.has("conversation")) {
    return absl::InvalidArgumentError(
        "give exactly one of --to USER and --conversation ID");
  }
  absl::StatusOr<std::string> key = ApiKey(ctx);
  if (!key.ok()) return key.status();
  if (absl::Status status = (*client)->LoginWithApiKey(*key); !status.ok()) {
    return status;
  }
  uint64_t conversation = 0, user = 0;
  if (ctx.args.has("to")) {
    absl::StatusOr<uint64_t> id = ResolveUser(**client, ctx.args.get("to"));
    if (!id.ok()) return id.status();
    user = *id;
  } else {
    absl::StatusOr<uint64_t> id =
        PositiveNumber(ctx.args.get("conversation"), "--conversation");
    if (!id.ok()) return id.status();
    conversation = *id;
  }
  message_v1::Message message;
  message.set_text(absl::StrJoin(ctx.args.positional, " "));
  if (ctx.args.has("content-type")) {
    message.set_content_type(ctx.args.get("content-type"));
  }
  std::string id = ctx.args.get("client-msg-id");
  if (id.empty()) id = client::NewClientMsgId();
  // Transient failures are retried with the same id: stored once.
  client::ExponentialBackoff backoff(
      {absl::Milliseconds(200), absl::Seconds(5), 2.0});
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  absl::StatusOr<message_v1::SendAck> ack;
  for (;;) {
    ack = (*client)->Publish(conversation, user, message, id);
    if (ack.ok() || !client::IsTransient(ack.status()) ||
        absl::Now() > deadline) {
      break;
    }
    absl::SleepFor(backoff.Next());
  }
  if (!ack.ok()) return ack.status();
  if (ctx.args.has("json")) {
    ctx.out << Json(*ack) << "\n";
  } else {
    ctx.out << "published to conversation " << ack->conversation_id()
            << " as seq " << ack->seq() << (ack->duplicate() ? " (again)" : "")
            << "\n";
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------ commands ----

const OptionSpec kJson = {"json", "", "print JSON (proto3 JSON mapping)"};

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      {"register", "<username>", "create an account",
       {{"display-name", "NAME", "name shown to others (default: username)"},
        {"password-stdin", "", "read the password from stdin"}},
       1, 1, Register},
      {"login", "<username>", "sign in and save the session",
       {{"password-stdin", "", "read the password from stdin"}}, 1, 1, Login},
      {"logout", "", "end the saved session", {}, 0, 0, Logout},
      {"whoami", "", "show the signed-in account", {kJson}, 0, 0, WhoAmI},
      {"send", "<conversation|@user> <text...>",
       "send a message and wait for its acknowledgement",
       {kJson,
        {"wait", "DURATION", "how long to wait for the ack (default 30s)"},
        {"client-msg-id", "ID",
         "idempotency key (default: a new UUID); the same id is stored once"}},
       2, SIZE_MAX, Send},
      {"tail", "", "print messages as they arrive (Ctrl-C stops)",
       {kJson,
        {"all", "", "replay every conversation from the start"},
        {"count", "N", "stop after N messages"},
        {"for", "DURATION", "stop after this long"}},
       0, 0, Tail},
      {"history", "<conversation|@user>", "show a page of a conversation",
       {kJson,
        {"before", "N", "entries before seq N (default: the newest)"},
        {"limit", "N", "page size, 1-200 (default 20)"}},
       1, 1, History},
      {"conversations", "", "list conversations with unread counts", {kJson}, 0,
       0, Conversations},
      {"group create", "<title> [user...]", "create a group", {kJson}, 1,
       SIZE_MAX, GroupCreate},
      {"group add", "<conversation> <user...>", "add members", {}, 2, SIZE_MAX,
       GroupAdd},
      {"group remove", "<conversation> <user>", "remove a member", {}, 2, 2,
       GroupRemove},
      {"group leave", "<conversation>", "leave a group", {}, 1, 1, GroupLeave},
      {"group members", "<conversation>", "list members", {}, 1, 1,
       GroupMembers},
      {"read", "<conversation> <seq>", "mark read up to seq", {}, 2, 2, Read},
      {"presence", "<user...>", "who is online", {kJson}, 1, SIZE_MAX, Presence},
      {"service-account create", "<name>",
       "create a service account and its API key (admin)",
       {kJson, {"description", "TEXT", "what it is for"}}, 1, 1,
       ServiceAccountCreate},
      {"service-account list", "", "list service accounts (admin)", {kJson}, 0,
       0, ServiceAccountList},
      {"service-account revoke", "<user_id>",
       "revoke a service account's key and sessions (admin)", {}, 1, 1,
       ServiceAccountRevoke},
      {"publish", "<text...>",
       "publish as a service account (API key from --api-key-file or "
       "IM_API_KEY)",
       {kJson,
        {"to", "USER", "the direct conversation with this user"},
        {"conversation", "ID", "a conversation the account is a member of"},
        {"api-key-file", "FILE", "file holding the API key"},
        {"content-type", "TYPE", "e.g. application/json"},
        {"client-msg-id", "ID", "idempotency key (default: a new UUID)"}},
       1, SIZE_MAX, Publish},
  };
  return *commands;
}

void PrintUsage(std::ostream& out) {
  out << "usage: imctl [global options] <command> [args] [options]\n\n"
         "commands:\n";
  for (const Command& command : Commands()) {
    std::string head = command.name;
    if (!command.usage.empty()) absl::StrAppend(&head, " ", command.usage);
    out << "  " << head << std::string(head.size() < 42 ? 42 - head.size() : 1, ' ')
        << command.summary << "\n";
  }
  out << "\nglobal options:\n" << FormatOptions(GlobalOptions())
      << "\n`imctl <command> --help` describes one command. Users are @name, "
         "name or a numeric id.\nExit status: 0 ok, 1 the operation failed, 2 "
         "bad usage.\n";
}

void PrintCommandHelp(const Command& command, std::ostream& out) {
  out << "usage: imctl " << command.name;
  if (!command.usage.empty()) out << " " << command.usage;
  if (!command.options.empty()) out << " [options]";
  out << "\n\n" << command.summary << "\n";
  if (!command.options.empty()) {
    out << "\noptions:\n" << FormatOptions(command.options);
  }
  out << "\nglobal options (before the command): see `imctl --help`.\n";
}

std::string Describe(const absl::Status& status) {
  return absl::StrCat(status.message(), " (",
                      absl::StatusCodeToString(status.code()), ")");
}

}  // namespace

int RunImctl(const std::vector<std::string>& args, const Environment& env) {
  std::ostream& out = env.out != nullptr ? *env.out : std::cout;
  std::ostream& err = env.err != nullptr ? *env.err : std::cerr;
  absl::StatusOr<ParsedArgs> global = ParseArgs(args, GlobalOptions(), true);
  if (!global.ok()) {
    err << "imctl: " << global.status().message() << "\n";
    return kExitUsage;
  }
  if (global->positional.empty()) {
    PrintUsage(global->help ? out : err);
    return global->help ? kExitOk : kExitUsage;
  }
  // One word, or two for the command groups.
  const Command* command = nullptr;
  size_t words = 0;
  for (const Command& candidate : Commands()) {
    const size_t space = candidate.name.find(' ');
    if (space == std::string::npos) {
      if (candidate.name == global->positional[0]) {
        command = &candidate;
        words = 1;
      }
    } else if (candidate.name.substr(0, space) == global->positional[0] &&
               global->positional.size() > 1 &&
               candidate.name.substr(space + 1) == global->positional[1]) {
      command = &candidate;
      words = 2;
    }
  }
  if (command == nullptr) {
    const std::string& word = global->positional[0];
    bool is_group = false;
    for (const Command& candidate : Commands()) {
      if (candidate.name.rfind(word + " ", 0) == 0) {
        if (!is_group) err << "usage:\n";
        is_group = true;
        err << "  imctl " << candidate.name << " " << candidate.usage << "\n";
      }
    }
    if (!is_group) {
      err << "imctl: unknown command \"" << word << "\" (see imctl --help)\n";
    }
    return kExitUsage;
  }
  Context ctx{env, *global, {}, out, err, nullptr, {}, absl::Seconds(10), {},
              nullptr};
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(
      std::vector<std::string>(global->positional.begin() + words,
                               global->positional.end()),
      command->options);
  if (!parsed.ok()) {
    err << "imctl " << command->name << ": " << parsed.status().message()
        << "\n";
    PrintCommandHelp(*command, err);
    return kExitUsage;
  }
  if (parsed->help || global->help) {
    PrintCommandHelp(*command, out);
    return kExitOk;
  }
  if (parsed->positional.size() < command->min_args ||
      parsed->positional.size() > command->max_args) {
    err << "imctl " << command->name << ": wrong number of arguments\n";
    PrintCommandHelp(*command, err);
    return kExitUsage;
  }
  ctx.args = *std::move(parsed);
  if (absl::Status configured = Configure(ctx); !configured.ok()) {
    err << "imctl: " << configured.message() << "\n";
    return kExitUsage;
  }
  const absl::Status status = command->run(ctx);
  ctx.client.reset();
  if (!status.ok()) {
    err << "imctl " << command->name << ": " << Describe(status) << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace im::imctl
