#ifndef IM_TOOLS_IMBENCH_OTHER_LOADS_H_
#define IM_TOOLS_IMBENCH_OTHER_LOADS_H_

#include <sys/types.h>

#include <iosfwd>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tools/imbench/fleet.h"
#include "tools/imbench/report.h"

namespace im::imbench {

struct ConnectOptions {
  int streams = 1000;
  // Streams per user (the message service allows 16 by default).
  int streams_per_user = 16;
  // Stream opens per second while ramping up.
  double open_rate = 500;
  // How long to hold the streams once all are live.
  absl::Duration hold = absl::Seconds(10);
  // The message server whose RSS is measured (0: none).
  pid_t server_pid = 0;
  std::ostream* progress = nullptr;
};

// `connect`: opens many idle Chat streams, holds them, and reports the
// message server's resident memory per stream (VmRSS before and after).
absl::Status RunConnect(Fleet& fleet, const ConnectOptions& options,
                        Report& report);

struct HistoryLoadOptions {
  // Reads per second (open-loop), for `duration`.
  double rate = 200;
  absl::Duration duration = absl::Seconds(10);
  // Entries in the conversation being paged (filled first if short).
  int messages = 2000;
  uint32_t page = 50;
  // Calls in flight at most.
  int concurrency = 32;
  std::ostream* progress = nullptr;
};

// `history`: GetHistory pages at random anchors of a filled conversation;
// checks each page is exactly the entries asked for.
absl::Status RunHistory(Fleet& fleet, const HistoryLoadOptions& options,
                        Report& report);

struct PresenceLoadOptions {
  // Users going on- and offline; one more user watches them all.
  int churners = 50;
  absl::Duration online_for = absl::Seconds(2);
  absl::Duration offline_for = absl::Seconds(4);
  absl::Duration duration = absl::Seconds(20);
  std::ostream* progress = nullptr;
};

// `presence`: churners connect and disconnect; a watcher's Subscribe
// stream must see each of them come online (latency from the stream's
// Ready) and go offline.
absl::Status RunPresence(Fleet& fleet, const PresenceLoadOptions& options,
                         Report& report);

}  // namespace im::imbench

#endif  // IM_TOOLS_IMBENCH_OTHER_LOADS_H_
