// AllToAll, pairwise exchange.
//
// Vocabulary. Both buffers hold nranks blocks of count elements; block d of rank s's input goes
// to block s of rank d's output. The count elements are split into one part per channel, and
// each channel exchanges its part of every block.
//
// Step k = 1 .. n-1: rank r sends its block for d = r+k to d and receives block s = r-k from s;
// every step is a permutation, so every link carries one block per step. Its own block is a
// local copy.
//
// In place (one buffer), block s may be overwritten only after it has been sent to s, at step
// n-k. The steps therefore run in pairs (k, n-k): send block r+k; receive block r-k into scratch;
// send block r-k (step n-k); receive block r+k in place (already sent); copy the scratch into
// block r-k. No receive waits for a send (which would deadlock a transport that cannot buffer a
// whole block), and one scratch block (count elements) suffices.
#include "algorithms/builder.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

struct Blocks {
  uint64_t count;  // elements per block
  Part part;       // this channel's part of every block
  uint64_t offset(int b) const { return static_cast<uint64_t>(b) * count + part.offset; }
  Region in(int b) const { return inputRegion(offset(b), part.count); }
  Region out(int b) const { return outputRegion(offset(b), part.count); }
};

void buildOutOfPlace(const Blocks& blocks, int n, int r, Channel* channel) {
  auto& steps = channel->steps;
  for (int k = 1; k < n; ++k) {
    const int d = modRank(r + k, n);
    const int s = modRank(r - k, n);
    steps.push_back(Step::send(d, blocks.in(d)));
    steps.push_back(Step::recv(s, blocks.out(s)));
  }
  steps.push_back(Step::copy(blocks.in(r), blocks.out(r)));
}

void buildInPlace(const Blocks& blocks, int n, int r, Channel* channel) {
  auto& steps = channel->steps;
  const Region scratch = scratchRegion(blocks.part.offset, blocks.part.count);
  for (int k = 1; 2 * k <= n; ++k) {
    const int d = modRank(r + k, n);
    const int s = modRank(r - k, n);
    steps.push_back(Step::send(d, blocks.in(d)));
    steps.push_back(Step::recv(s, scratch));
    if (2 * k < n) {
      steps.push_back(Step::send(s, blocks.in(s)));
      steps.push_back(Step::recv(d, blocks.out(d)));
    }
    steps.push_back(Step::copy(scratch, blocks.out(s)));
  }
}

class AllToAllPairwise final : public Algorithm {
 public:
  Collective collective() const override { return Collective::kAllToAll; }
  std::string_view name() const override { return "pairwise"; }
  bool supports(const CollectiveArgs& args) const override {
    return args.collective == Collective::kAllToAll && argsValid(args);
  }

  Status build(const CollectiveArgs& args, int rank, RankSchedule* out) const override {
    LOOM_RETURN_IF_ERROR(checkBuild(*this, args, rank));
    resetSchedule(out, 0);
    if (args.count == 0 || (args.nranks == 1 && args.inPlace)) return Status::ok();
    const int nch = channelsFor(args, args.count);
    resetSchedule(out, nch);
    for (int c = 0; c < nch; ++c) {
      const Blocks blocks{args.count, channelPart(args.count, nch, c)};
      if (args.inPlace) {
        buildInPlace(blocks, args.nranks, rank, &out->channels[c]);
      } else {
        buildOutOfPlace(blocks, args.nranks, rank, &out->channels[c]);
      }
    }
    out->scratchCount = args.inPlace ? args.count : 0;
    return Status::ok();
  }
};

}  // namespace

const Algorithm& builtin::allToAllPairwise() {
  static const AllToAllPairwise algorithm;
  return algorithm;
}

}  // namespace loom::algo
