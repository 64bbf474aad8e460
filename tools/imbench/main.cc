// imbench: the project's load generator (README.md "Benchmarks").
//
//   imbench direct   --users 100 --rate 1000 --duration 10s
//   imbench group    --members 1000 --senders 10 --rate 100 --duration 10s
//   imbench connect  --streams 10000 [--server_pid PID]
//   imbench history  --rate 500 --duration 10s
//   imbench presence --churners 50 --duration 20s
//
// Exit status: 0 all verified, 1 a verification failed (loss, duplicate,
// order, unresolved sends, streams not live, bad pages, missed presence),
// 2 bad usage or set-up failure.

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tools/imbench/fleet.h"
#include "tools/imbench/message_load.h"
#include "tools/imbench/other_loads.h"
#include "tools/imbench/proc_stats.h"
#include "tools/imbench/report.h"

ABSL_FLAG(std::string, auth_addr, "", "auth service (env IM_AUTH_ADDR; 127.0.0.1:50051)");
ABSL_FLAG(std::string, message_addr, "",
          "message service (env IM_MESSAGE_ADDR; 127.0.0.1:50053)");
ABSL_FLAG(std::string, history_addr, "",
          "history service (env IM_HISTORY_ADDR; 127.0.0.1:50054)");
ABSL_FLAG(std::string, presence_addr, "",
          "presence service (env IM_PRESENCE_ADDR; 127.0.0.1:50052)");
ABSL_FLAG(std::string, tls_ca, "", "CA of the servers (TLS); empty: plaintext");
ABSL_FLAG(std::string, tls_cert, "", "client certificate (mTLS)");
ABSL_FLAG(std::string, tls_key, "", "client key (mTLS)");
ABSL_FLAG(std::string, user_prefix, "",
          "users are <prefix>-<n>; empty: imbench-<start time>, new users "
          "each run. A given prefix reuses its users (re-registering them "
          "counts against auth's --register_peer_burst)");
ABSL_FLAG(std::string, password, "imbench-password-1", "password of those users");
ABSL_FLAG(int, users, 100, "direct: users (even; pairs share a conversation)");
ABSL_FLAG(int, members, 1000, "group: members, all holding a stream");
ABSL_FLAG(int, senders, 10, "group: members that send");
ABSL_FLAG(double, rate, 1000,
          "direct/group: total messages per second; history: pages per second");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "length of the measured window");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(30),
          "direct/group: wait after the window for acks and deliveries");
ABSL_FLAG(int, payload_bytes, 100, "direct/group: message size");
ABSL_FLAG(int, streams, 1000, "connect: idle streams to open and hold");
ABSL_FLAG(int, streams_per_user, 16, "connect: streams per user (server limit)");
ABSL_FLAG(double, open_rate, 500, "connect: stream opens per second");
ABSL_FLAG(int, server_pid, 0,
          "connect: message server pid for RSS (0: the process listening on "
          "the message port, if visible)");
ABSL_FLAG(int, history_messages, 2000, "history: entries in the paged conversation");
ABSL_FLAG(int, page, 50, "history: page size");
ABSL_FLAG(int, concurrency, 32, "history: calls in flight at most");
ABSL_FLAG(int, churners, 50, "presence: users going on and offline");
ABSL_FLAG(absl::Duration, online_for, absl::Seconds(2), "presence: time online per cycle");
ABSL_FLAG(absl::Duration, offline_for, absl::Seconds(4), "presence: time offline per cycle");
ABSL_FLAG(int, channels, 0,
          "connections to the message service (0: one per 100 streams)");
ABSL_FLAG(int, source_addresses, 0,
          "bind message connections to 127.0.0.1..N (plaintext; for more "
          "connections than one source address has ports)");
ABSL_FLAG(bool, pin_users_to_nodes, false,
          "with several nodes in --message_addr (a,b): user i's streams on "
          "node i % nodes, not round robin (direct: every delivery crosses "
          "nodes)");
ABSL_FLAG(int, setup_threads, 8, "parallel registrations and logins");
ABSL_FLAG(bool, json, false, "print the report as one JSON object");
ABSL_FLAG(bool, progress, true, "print a progress line per second to stderr");

namespace im::imbench {
namespace {

std::string Address(const absl::Flag<std::string>& flag, const char* env,
                    const char* fallback) {
  std::string value = absl::GetFlag(flag);
  if (!value.empty()) return value;
  const char* from_env = std::getenv(env);
  return from_env != nullptr && *from_env != '\0' ? from_env : fallback;
}

int Run(const std::string& scenario) {
  FleetOptions fleet_options;
  fleet_options.endpoints.auth = Address(FLAGS_auth_addr, "IM_AUTH_ADDR", "127.0.0.1:50051");
  fleet_options.endpoints.message =
      Address(FLAGS_message_addr, "IM_MESSAGE_ADDR", "127.0.0.1:50053");
  fleet_options.endpoints.history =
      Address(FLAGS_history_addr, "IM_HISTORY_ADDR", "127.0.0.1:50054");
  fleet_options.endpoints.presence =
      Address(FLAGS_presence_addr, "IM_PRESENCE_ADDR", "127.0.0.1:50052");
  fleet_options.endpoints.tls.ca_file = absl::GetFlag(FLAGS_tls_ca);
  fleet_options.endpoints.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  fleet_options.endpoints.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  fleet_options.user_prefix = absl::GetFlag(FLAGS_user_prefix);
  if (fleet_options.user_prefix.empty()) {
    // Fresh names: registering taken ones is throttled per address.
    fleet_options.user_prefix =
        absl::StrCat("imbench-", absl::ToUnixSeconds(absl::Now()));
  }
  fleet_options.password = absl::GetFlag(FLAGS_password);
  fleet_options.message_channels = absl::GetFlag(FLAGS_channels);
  fleet_options.source_addresses = absl::GetFlag(FLAGS_source_addresses);
  fleet_options.pin_users_to_nodes = absl::GetFlag(FLAGS_pin_users_to_nodes);
  fleet_options.setup_threads = absl::GetFlag(FLAGS_setup_threads);
  std::ostream* progress = absl::GetFlag(FLAGS_progress) ? &std::cerr : nullptr;

  int expected_streams = 0;
  if (scenario == "direct") expected_streams = absl::GetFlag(FLAGS_users);
  if (scenario == "group") expected_streams = absl::GetFlag(FLAGS_members);
  if (scenario == "connect") expected_streams = absl::GetFlag(FLAGS_streams);
  if (scenario == "presence") expected_streams = absl::GetFlag(FLAGS_churners);
  absl::StatusOr<std::unique_ptr<Fleet>> fleet =
      Fleet::Create(fleet_options, expected_streams);
  if (!fleet.ok()) {
    std::cerr << "imbench: " << fleet.status() << "\n";
    return 2;
  }
  Report report;
  report.scenario = scenario;
  const std::array<double, 3> load_before = LoadAverage();
  MessageLoadOptions load;
  load.rate = absl::GetFlag(FLAGS_rate);
  load.duration = absl::GetFlag(FLAGS_duration);
  load.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  load.payload_bytes = absl::GetFlag(FLAGS_payload_bytes);
  load.progress = progress;
  absl::Status status;
  if (scenario == "direct") {
    report.Set("rate", absl::StrCat(load.rate));
    report.Set("duration", absl::FormatDuration(load.duration));
    status = RunDirect(**fleet, absl::GetFlag(FLAGS_users), load, report);
  } else if (scenario == "group") {
    report.Set("rate", absl::StrCat(load.rate));
    report.Set("duration", absl::FormatDuration(load.duration));
    status = RunGroup(**fleet, absl::GetFlag(FLAGS_members),
                      absl::GetFlag(FLAGS_senders), load, report);
  } else if (scenario == "connect") {
    ConnectOptions options;
    options.streams = absl::GetFlag(FLAGS_streams);
    options.streams_per_user = absl::GetFlag(FLAGS_streams_per_user);
    options.open_rate = absl::GetFlag(FLAGS_open_rate);
    options.hold = absl::GetFlag(FLAGS_duration);
    options.server_pid = absl::GetFlag(FLAGS_server_pid);
    if (options.server_pid == 0) {
      absl::StatusOr<pid_t> pid =
          FindListeningPid(PortOf(fleet_options.endpoints.message));
      if (pid.ok()) {
        options.server_pid = *pid;
      } else {
        std::cerr << "imbench: no server RSS: " << pid.status().message() << "\n";
      }
    }
    options.progress = progress;
    status = RunConnect(**fleet, options, report);
  } else if (scenario == "history") {
    HistoryLoadOptions options;
    options.rate = absl::GetFlag(FLAGS_rate);
    options.duration = absl::GetFlag(FLAGS_duration);
    options.messages = absl::GetFlag(FLAGS_history_messages);
    options.page = static_cast<uint32_t>(absl::GetFlag(FLAGS_page));
    options.concurrency = absl::GetFlag(FLAGS_concurrency);
    options.progress = progress;
    status = RunHistory(**fleet, options, report);
  } else if (scenario == "presence") {
    PresenceLoadOptions options;
    options.churners = absl::GetFlag(FLAGS_churners);
    options.online_for = absl::GetFlag(FLAGS_online_for);
    options.offline_for = absl::GetFlag(FLAGS_offline_for);
    options.duration = absl::GetFlag(FLAGS_duration);
    options.progress = progress;
    status = RunPresence(**fleet, options, report);
  } else {
    std::cerr << "imbench: unknown scenario \"" << scenario
              << "\" (direct, group, connect, history, presence)\n";
    return 2;
  }
  if (!status.ok()) {
    std::cerr << "imbench " << scenario << ": " << status.message() << " ("
              << absl::StatusCodeToString(status.code()) << ")\n";
    return 2;
  }
  const std::array<double, 3> load_after = LoadAverage();
  report.Set("loadavg_before",
             absl::StrFormat("%.2f/%.2f/%.2f", load_before[0], load_before[1],
                             load_before[2]));
  report.Set("loadavg_after",
             absl::StrFormat("%.2f/%.2f/%.2f", load_after[0], load_after[1],
                             load_after[2]));
  if (absl::GetFlag(FLAGS_json)) {
    report.PrintJson(std::cout);
  } else {
    report.PrintTable(std::cout);
  }
  std::cout.flush();
  return report.passed() ? 0 : 1;
}

}  // namespace
}  // namespace im::imbench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "imbench <direct|group|connect|history|presence> [--flags]");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() != 2) {
    std::cerr << "usage: imbench <direct|group|connect|history|presence> "
                 "[--flags]  (imbench --help lists the flags)\n";
    return 2;
  }
  return im::imbench::Run(positional[1]);
}
