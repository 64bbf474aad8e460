#ifndef IM_CLIENTS_CPP_ENTRY_SEQUENCER_H_
#define IM_CLIENTS_CPP_ENTRY_SEQUENCER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "im/message/v1/types.pb.h"

namespace im::client {

// The client's delivery gate: passes each conversation's entries on exactly
// once and in seq order, whatever the streams bring. It keeps per
// conversation the highest seq passed on (the cursor a resumed stream
// starts from):
// - an entry at or below the cursor is a duplicate (a replay after a
//   reconnect, the echo of an own send) and dropped;
// - the next seq is passed on;
// - a later seq opens a gap: the entry is held, and the owner reads the
//   missing range from history (GetHistory after the cursor) and hands the
//   pages to OnHistoryPage; held entries follow once the gap is closed.
// A conversation with no cursor (or cursor 0) starts at whatever seq comes
// first: a stream replays it from where the user joined.
// Not thread-safe: the owner's lock guards it.
class EntrySequencer {
 public:
  struct Options {
    // Live entries held per conversation while a gap is read. Beyond, the
    // newest are dropped and read from history with the gap instead.
    size_t max_held_per_conversation = 4096;
  };

  // A range to read from history: the visible entries with seq in
  // (after_seq, up_to_seq].
  struct Gap {
    uint64_t conversation_id = 0;
    uint64_t after_seq = 0;
    uint64_t up_to_seq = 0;
  };

  struct Stats {
    uint64_t delivered = 0;
    uint64_t duplicates = 0;
    uint64_t gaps = 0;
    uint64_t from_history = 0;
    uint64_t held_dropped = 0;
  };

  explicit EntrySequencer(const Options& options) : options_(options) {}

  // Cursors a previous run saved; call before the first entry.
  void Restore(const absl::flat_hash_map<uint64_t, uint64_t>& cursors);
  // conversation -> highest seq passed on.
  absl::flat_hash_map<uint64_t, uint64_t> Cursors() const;

  // An entry from a stream. Appends what may be passed on now to `out`, in
  // order. Returns a gap when this entry opened one (the owner reads it and
  // calls OnHistoryPage until that returns nullopt).
  std::optional<Gap> OnEntry(::im::message::v1::Entry entry,
                             std::vector<::im::message::v1::Entry>* out);

  // The stream will not replay (cursor, from_seq): a gap to read, unless
  // one is being read already (it is then extended).
  std::optional<Gap> OnReplayTruncated(uint64_t conversation_id,
                                       uint64_t from_seq);

  // One history page for the open gap of `conversation_id`: entries in
  // ascending seq order after the gap's after_seq; `exhausted` when no
  // visible entry follows the page (has_more false). Seqs the caller may not
  // see are absent from history, so the gap may close with a jump. Returns
  // the next range to read (the same gap further on, or a new gap among the
  // held entries), or nullopt once the conversation is in order again.
  std::optional<Gap> OnHistoryPage(
      uint64_t conversation_id,
      const std::vector<::im::message::v1::Entry>& page, bool exhausted,
      std::vector<::im::message::v1::Entry>* out);

  // The gap cannot be read (the caller is no longer a member): skip it and
  // pass the held entries on. Same return as OnHistoryPage.
  std::optional<Gap> AbandonGap(uint64_t conversation_id,
                                std::vector<::im::message::v1::Entry>* out);

  bool filling(uint64_t conversation_id) const;
  const Stats& stats() const { return stats_; }

 private:
  struct Conversation {
    // Highest seq passed on; 0 = none yet (the first entry sets it).
    uint64_t cursor = 0;
    // A gap (cursor, fill_to] is being read from history.
    bool filling = false;
    uint64_t fill_to = 0;
    // Entries beyond the gap, by seq.
    std::map<uint64_t, ::im::message::v1::Entry> held;
  };

  void Deliver(Conversation& c, ::im::message::v1::Entry entry,
               std::vector<::im::message::v1::Entry>* out);
  void Hold(Conversation& c, ::im::message::v1::Entry entry);
  // Moves the cursor to the gap's end and passes held entries on while they
  // are contiguous; a new gap if they are not.
  std::optional<Gap> CloseGap(uint64_t conversation_id, Conversation& c,
                              std::vector<::im::message::v1::Entry>* out);

  const Options options_;
  absl::flat_hash_map<uint64_t, Conversation> conversations_;
  Stats stats_;
};

}  // namespace im::client

#endif  // IM_CLIENTS_CPP_ENTRY_SEQUENCER_H_
