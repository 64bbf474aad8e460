#include "clients/cpp/entry_sequencer.h"

#include <vector>

#include "gtest/gtest.h"

namespace im::client {
namespace {

namespace v1 = ::im::message::v1;

v1::Entry E(uint64_t conversation_id, uint64_t seq) {
  v1::Entry entry;
  entry.set_conversation_id(conversation_id);
  entry.set_seq(seq);
  entry.mutable_message()->set_text("m" + std::to_string(seq));
  return entry;
}

std::vector<uint64_t> Seqs(const std::vector<v1::Entry>& entries) {
  std::vector<uint64_t> seqs;
  for (const v1::Entry& entry : entries) seqs.push_back(entry.seq());
  return seqs;
}

std::vector<v1::Entry> Range(uint64_t conversation_id, uint64_t from,
                             uint64_t to) {
  std::vector<v1::Entry> entries;
  for (uint64_t seq = from; seq <= to; ++seq) {
    entries.push_back(E(conversation_id, seq));
  }
  return entries;
}

TEST(EntrySequencerTest, PassesInOrderAndDropsDuplicates) {
  EntrySequencer sequencer({});
  std::vector<v1::Entry> out;
  for (uint64_t seq : {1, 2, 2, 1, 3}) {
    EXPECT_FALSE(sequencer.OnEntry(E(7, seq), &out).has_value());
  }
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(sequencer.stats().duplicates, 2u);
  EXPECT_EQ(sequencer.Cursors().at(7), 3u);
}

TEST(EntrySequencerTest, UnknownConversationStartsAtItsFirstEntry) {
  EntrySequencer sequencer({});
  std::vector<v1::Entry> out;
  // Replayed from where the user joined (seq 40).
  EXPECT_FALSE(sequencer.OnEntry(E(9, 40), &out).has_value());
  EXPECT_FALSE(sequencer.OnEntry(E(9, 41), &out).has_value());
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{40, 41}));
}

TEST(EntrySequencerTest, RestoredCursorDropsWhatWasHeld) {
  EntrySequencer sequencer({});
  sequencer.Restore({{5, 10}});
  std::vector<v1::Entry> out;
  EXPECT_FALSE(sequencer.OnEntry(E(5, 9), &out).has_value());
  EXPECT_FALSE(sequencer.OnEntry(E(5, 10), &out).has_value());
  EXPECT_FALSE(sequencer.OnEntry(E(5, 11), &out).has_value());
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{11}));
}

TEST(EntrySequencerTest, GapIsFilledFromHistoryThenHeldEntriesFollow) {
  EntrySequencer sequencer({});
  sequencer.Restore({{1, 3}});
  std::vector<v1::Entry> out;
  std::optional<EntrySequencer::Gap> gap = sequencer.OnEntry(E(1, 8), &out);
  ASSERT_TRUE(gap.has_value());
  EXPECT_EQ(gap->conversation_id, 1u);
  EXPECT_EQ(gap->after_seq, 3u);
  EXPECT_EQ(gap->up_to_seq, 7u);
  EXPECT_TRUE(out.empty());
  // Live entries keep arriving while the gap is read (one twice).
  EXPECT_FALSE(sequencer.OnEntry(E(1, 9), &out).has_value());
  EXPECT_FALSE(sequencer.OnEntry(E(1, 9), &out).has_value());
  EXPECT_TRUE(out.empty());
  // First page: 4-5 of 4-7.
  gap = sequencer.OnHistoryPage(1, Range(1, 4, 5), false, &out);
  ASSERT_TRUE(gap.has_value());
  EXPECT_EQ(gap->after_seq, 5u);
  EXPECT_EQ(gap->up_to_seq, 7u);
  // Second page reaches past the gap (history may already hold 8 and 9).
  gap = sequencer.OnHistoryPage(1, Range(1, 6, 9), true, &out);
  EXPECT_FALSE(gap.has_value());
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(sequencer.stats().from_history, 4u);
  EXPECT_FALSE(sequencer.filling(1));
  // Back to live order.
  EXPECT_FALSE(sequencer.OnEntry(E(1, 10), &out).has_value());
  EXPECT_EQ(out.back().seq(), 10u);
}

TEST(EntrySequencerTest, ReplayTruncatedOpensGapBeforeTheReplay) {
  EntrySequencer sequencer({});
  sequencer.Restore({{2, 5}});
  std::optional<EntrySequencer::Gap> gap = sequencer.OnReplayTruncated(2, 2001);
  ASSERT_TRUE(gap.has_value());
  EXPECT_EQ(gap->after_seq, 5u);
  EXPECT_EQ(gap->up_to_seq, 2000u);
  std::vector<v1::Entry> out;
  // The replay from 2001 on is held until history caught up.
  EXPECT_FALSE(sequencer.OnEntry(E(2, 2001), &out).has_value());
  EXPECT_FALSE(sequencer.OnEntry(E(2, 2002), &out).has_value());
  EXPECT_TRUE(out.empty());
  uint64_t after = 5;
  while (gap.has_value()) {
    ASSERT_EQ(gap->after_seq, after);
    const uint64_t to = std::min<uint64_t>(after + 200, gap->up_to_seq);
    gap = sequencer.OnHistoryPage(2, Range(2, after + 1, to), false, &out);
    after = to;
  }
  ASSERT_EQ(out.size(), 1997u);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i].seq(), 6 + i);
  EXPECT_EQ(sequencer.Cursors().at(2), 2002u);
}

TEST(EntrySequencerTest, InvisibleRangeClosesWithAJump) {
  // Removed at 10 and re-added at 20: 11-19 are not visible to the user.
  EntrySequencer sequencer({});
  sequencer.Restore({{3, 10}});
  std::vector<v1::Entry> out;
  std::optional<EntrySequencer::Gap> gap = sequencer.OnEntry(E(3, 20), &out);
  ASSERT_TRUE(gap.has_value());
  // History has nothing visible between; it returns 20 itself.
  gap = sequencer.OnHistoryPage(3, Range(3, 20, 20), false, &out);
  EXPECT_FALSE(gap.has_value());
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{20}));
}

TEST(EntrySequencerTest, AbandonedGapPassesHeldEntriesOn) {
  EntrySequencer sequencer({});
  sequencer.Restore({{4, 1}});
  std::vector<v1::Entry> out;
  ASSERT_TRUE(sequencer.OnEntry(E(4, 5), &out).has_value());
  EXPECT_FALSE(sequencer.AbandonGap(4, &out).has_value());
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{5}));
}

TEST(EntrySequencerTest, HeldEntriesBeyondTheBoundAreReadFromHistory) {
  EntrySequencer sequencer(EntrySequencer::Options{2});
  sequencer.Restore({{6, 1}});
  std::vector<v1::Entry> out;
  ASSERT_TRUE(sequencer.OnEntry(E(6, 4), &out).has_value());  // gap 2-3
  sequencer.OnEntry(E(6, 5), &out);  // held (2 held now)
  sequencer.OnEntry(E(6, 6), &out);  // dropped: the gap now ends at 6
  EXPECT_EQ(sequencer.stats().held_dropped, 1u);
  std::optional<EntrySequencer::Gap> gap =
      sequencer.OnHistoryPage(6, Range(6, 2, 3), false, &out);
  ASSERT_TRUE(gap.has_value());
  EXPECT_EQ(gap->after_seq, 3u);
  EXPECT_EQ(gap->up_to_seq, 6u);
  gap = sequencer.OnHistoryPage(6, Range(6, 4, 6), true, &out);
  EXPECT_FALSE(gap.has_value());
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{2, 3, 4, 5, 6}));
  EXPECT_EQ(sequencer.OnEntry(E(6, 7), &out), std::nullopt);
  EXPECT_EQ(out.back().seq(), 7u);
}

TEST(EntrySequencerTest, HeldEntriesWithAGapOpenTheNextGap) {
  EntrySequencer sequencer({});
  sequencer.Restore({{8, 1}});
  std::vector<v1::Entry> out;
  ASSERT_TRUE(sequencer.OnEntry(E(8, 3), &out).has_value());  // gap 2
  sequencer.OnEntry(E(8, 6), &out);                             // held
  // History shows only 2 (the page ended there: 3 and later not yet read).
  std::optional<EntrySequencer::Gap> gap =
      sequencer.OnHistoryPage(8, Range(8, 2, 2), false, &out);
  ASSERT_TRUE(gap.has_value());
  EXPECT_EQ(gap->after_seq, 3u);
  EXPECT_EQ(gap->up_to_seq, 5u);
  gap = sequencer.OnHistoryPage(8, Range(8, 4, 5), true, &out);
  EXPECT_FALSE(gap.has_value());
  EXPECT_EQ(Seqs(out), (std::vector<uint64_t>{2, 3, 4, 5, 6}));
}

}  // namespace
}  // namespace im::client
