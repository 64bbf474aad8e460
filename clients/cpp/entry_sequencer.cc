#include "clients/cpp/entry_sequencer.h"

#include <algorithm>
#include <utility>

namespace im::client {

namespace v1 = ::im::message::v1;

void EntrySequencer::Restore(
    const absl::flat_hash_map<uint64_t, uint64_t>& cursors) {
  for (const auto& [conversation_id, seq] : cursors) {
    Conversation& c = conversations_[conversation_id];
    c.cursor = std::max(c.cursor, seq);
  }
}

absl::flat_hash_map<uint64_t, uint64_t> EntrySequencer::Cursors() const {
  absl::flat_hash_map<uint64_t, uint64_t> cursors;
  cursors.reserve(conversations_.size());
  for (const auto& [conversation_id, c] : conversations_) {
    if (c.cursor > 0) cursors[conversation_id] = c.cursor;
  }
  return cursors;
}

bool EntrySequencer::filling(uint64_t conversation_id) const {
  auto it = conversations_.find(conversation_id);
  return it != conversations_.end() && it->second.filling;
}

void EntrySequencer::Deliver(Conversation& c, v1::Entry entry,
                             std::vector<v1::Entry>* out) {
  c.cursor = entry.seq();
  ++stats_.delivered;
  out->push_back(std::move(entry));
}

void EntrySequencer::Hold(Conversation& c, v1::Entry entry) {
  const uint64_t seq = entry.seq();
  if (seq <= c.cursor || c.held.count(seq) > 0) {
    ++stats_.duplicates;
    return;
  }
  if (c.held.size() >= options_.max_held_per_conversation) {
    // Live entries arrive in order, so this is the newest: read it (and
    // everything before it) from history with the gap instead.
    ++stats_.held_dropped;
    c.fill_to = std::max(c.fill_to, seq);
    return;
  }
  c.held.emplace(seq, std::move(entry));
}

std::optional<EntrySequencer::Gap> EntrySequencer::OnEntry(
    v1::Entry entry, std::vector<v1::Entry>* out) {
  const uint64_t conversation_id = entry.conversation_id();
  const uint64_t seq = entry.seq();
  Conversation& c = conversations_[conversation_id];
  if (c.filling) {
    Hold(c, std::move(entry));
    return std::nullopt;
  }
  if (seq <= c.cursor) {
    ++stats_.duplicates;
    return std::nullopt;
  }
  if (c.cursor == 0 || seq == c.cursor + 1) {
    Deliver(c, std::move(entry), out);
    return std::nullopt;
  }
  ++stats_.gaps;
  c.filling = true;
  c.fill_to = seq - 1;
  Hold(c, std::move(entry));
  return Gap{conversation_id, c.cursor, c.fill_to};
}

std::optional<EntrySequencer::Gap> EntrySequencer::OnReplayTruncated(
    uint64_t conversation_id, uint64_t from_seq) {
  Conversation& c = conversations_[conversation_id];
  if (from_seq <= c.cursor + 1) return std::nullopt;
  if (c.filling) {
    c.fill_to = std::max(c.fill_to, from_seq - 1);
    return std::nullopt;
  }
  ++stats_.gaps;
  c.filling = true;
  c.fill_to = from_seq - 1;
  return Gap{conversation_id, c.cursor, c.fill_to};
}

std::optional<EntrySequencer::Gap> EntrySequencer::OnHistoryPage(
    uint64_t conversation_id, const std::vector<v1::Entry>& page,
    bool exhausted, std::vector<v1::Entry>* out) {
  auto it = conversations_.find(conversation_id);
  if (it == conversations_.end() || !it->second.filling) return std::nullopt;
  Conversation& c = it->second;
  bool passed_end = false;
  for (const v1::Entry& entry : page) {
    if (entry.seq() <= c.cursor) continue;
    if (entry.seq() > c.fill_to) {
      passed_end = true;
      break;
    }
    ++stats_.from_history;
    Deliver(c, entry, out);
  }
  // An empty page that claims more would loop forever; treat it as the end.
  if (c.cursor >= c.fill_to || exhausted || passed_end || page.empty()) {
    return CloseGap(conversation_id, c, out);
  }
  return Gap{conversation_id, c.cursor, c.fill_to};
}

std::optional<EntrySequencer::Gap> EntrySequencer::AbandonGap(
    uint64_t conversation_id, std::vector<v1::Entry>* out) {
  auto it = conversations_.find(conversation_id);
  if (it == conversations_.end() || !it->second.filling) return std::nullopt;
  return CloseGap(conversation_id, it->second, out);
}

std::optional<EntrySequencer::Gap> EntrySequencer::CloseGap(
    uint64_t conversation_id, Conversation& c, std::vector<v1::Entry>* out) {
  c.cursor = std::max(c.cursor, c.fill_to);
  c.filling = false;
  while (!c.held.empty()) {
    auto first = c.held.begin();
    if (first->first <= c.cursor) {
      ++stats_.duplicates;
      c.held.erase(first);
    } else if (first->first == c.cursor + 1) {
      Deliver(c, std::move(first->second), out);
      c.held.erase(first);
    } else {
      ++stats_.gaps;
      c.filling = true;
      c.fill_to = first->first - 1;
      return Gap{conversation_id, c.cursor, c.fill_to};
    }
  }
  return std::nullopt;
}

}  // namespace im::client
