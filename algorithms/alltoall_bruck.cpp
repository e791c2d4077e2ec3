// AllToAll, Bruck: ceil(log2 n) messages per rank instead of n-1, for small blocks.
//
// Vocabulary. Both buffers hold n blocks of count elements; block d of rank s's input goes to
// block s of rank d's output. The count elements are split into one part per channel, and each
// channel runs an independent instance over its part of every block. Rank r works on n slots,
// slot i initially holding its input block r+i (mod n), the one for rank r+i.
//
// Steps, rounds k = 0 .. ceil(log2 n)-1: rank r packs the slots whose index has bit k set, in
// index order, into a contiguous send area (local copies), sends it to r + 2^k, and receives the
// same slots of r - 2^k into a receive area, which from then on holds those slots (nothing is
// unpacked). A slot i moves by 2^k for each bit k of i, i in all, so at the end slot i of rank r
// holds the block of rank r-i for r: it is copied to output block r-i. The own block (slot 0)
// is copied straight from the input (nothing in place). In place the final copies overwrite
// input blocks only after every pack that reads them.
//
// Scratch: a send and a receive area per round, 2 B count elements where B = the sum over
// i < n of popcount(i) (the slots moved); each channel uses its own share of every area.
//
// Cost per rank (c = count elements, B as above): ceil(log2 n) rounds of one message each way
// (one channel); B c sent and received (about (n/2) log2 n c, against (n-1) c for pairwise); B c
// packed and (n-1) c (n c out of place) copied to the output.
#include <bit>

#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

// Slots moved in round k: 1 <= i < n with bit k set, ascending.
std::vector<int> slotsOf(int n, int k) {
  std::vector<int> slots;
  for (int i = 1; i < n; ++i) {
    if ((i >> k) & 1) slots.push_back(i);
  }
  return slots;
}

// B: slots moved over all rounds.
uint64_t movedSlots(int n) {
  uint64_t total = 0;
  for (unsigned i = 1; i < static_cast<unsigned>(n); ++i) {
    total += static_cast<uint64_t>(std::popcount(i));
  }
  return total;
}

void buildPart(const CollectiveArgs& args, const Part& part, int r, Channel* channel) {
  const int n = args.nranks;
  const uint64_t c = args.count;
  auto& steps = channel->steps;
  auto block = [&](BufferId buffer, int b) {
    return Region{buffer, static_cast<uint64_t>(b) * c + part.offset, part.count};
  };
  // This channel's share of scratch: 2 B slots of part.count elements, after 2 B * part.offset.
  const uint64_t areaBase = 2 * movedSlots(n) * part.offset;
  uint64_t nextSlot = 0;
  auto area = [&](uint64_t slots) {
    const Region region = scratchRegion(areaBase + nextSlot * part.count, slots * part.count);
    nextSlot += slots;
    return region;
  };
  std::vector<Region> slot(n);
  for (int i = 0; i < n; ++i) {
    slot[i] = block(BufferId::kInput, modRank(r + i, n));
  }
  for (int k = 0; (1 << k) < n; ++k) {
    const std::vector<int> moved = slotsOf(n, k);
    const Region pack = area(moved.size());
    const Region land = area(moved.size());
    for (size_t j = 0; j < moved.size(); ++j) {
      const Region to{BufferId::kScratch, pack.offset + j * part.count, part.count};
      steps.push_back(Step::copy(slot[moved[j]], to));
    }
    steps.push_back(Step::send(modRank(r + (1 << k), n), pack));
    steps.push_back(Step::recv(modRank(r - (1 << k), n), land));
    for (size_t j = 0; j < moved.size(); ++j) {
      slot[moved[j]] = {BufferId::kScratch, land.offset + j * part.count, part.count};
    }
  }
  if (!args.inPlace) steps.push_back(Step::copy(slot[0], block(BufferId::kOutput, r)));
  for (int i = 1; i < n; ++i) {
    steps.push_back(Step::copy(slot[i], block(BufferId::kOutput, modRank(r - i, n))));
  }
}

class AllToAllBruck final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllToAll; }
  std::string_view name() const override { return "bruck"; }
  bool supports(const CollectiveArgs& args) const override {
    if (args.collective != Collective::kAllToAll || !argsValid(args)) return false;
    // Scratch is 2 B count elements (B < n ceil(log2 n) < 2^37): it must fit in 64 bits.
    return args.count <= UINT64_MAX / (2 * movedSlots(args.nranks) + 1);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    LOOM_RETURN_IF_ERROR(checkBuild(*this, args, rank));
    resetSchedule(out, 0);
    if (args.count == 0 || (args.nranks == 1 && args.inPlace)) return Status::ok();
    const int nch = channelsFor(args, args.count);
    resetSchedule(out, nch);
    for (int c = 0; c < nch; ++c) {
      buildPart(args, channelPart(args.count, nch, c), rank, &out->channels[c]);
    }
    out->scratchCount = 2 * movedSlots(args.nranks) * args.count;
    return Status::ok();
  }
};

}  // namespace

const Algorithm& builtin::allToAllBruck() {
  static const AllToAllBruck algorithm;
  return algorithm;
}

}  // namespace loom::algo
