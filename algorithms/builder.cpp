#include "algorithms/builder.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "base/assert.h"

namespace loom::algo {

namespace {

bool isRooted(Collective c) {
  return c == Collective::kBroadcast || c == Collective::kReduce || c == Collective::kGather ||
         c == Collective::kScatter;
}

bool isPointToPoint(Collective c) {
  return c == Collective::kSend || c == Collective::kRecv;
}

}  // namespace

std::string argsProblem(const CollectiveArgs& args) {
  if (args.nranks < 1) return "nranks " + std::to_string(args.nranks) + " < 1";
  if (args.nchannels < 1) return "nchannels " + std::to_string(args.nchannels) + " < 1";
  if (isRooted(args.collective) && (args.root < 0 || args.root >= args.nranks)) {
    return "root " + std::to_string(args.root) + " outside [0, " + std::to_string(args.nranks) +
           ")";
  }
  if (isPointToPoint(args.collective) && (args.peer < 0 || args.peer >= args.nranks)) {
    return "peer " + std::to_string(args.peer) + " outside [0, " + std::to_string(args.nranks) +
           ")";
  }
  if (args.collective == Collective::kBarrier && args.count != 0) {
    return "barrier count " + std::to_string(args.count) + " is not 0";
  }
  if (args.count > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(args.nranks)) {
    return "count " + std::to_string(args.count) + " times nranks overflows";
  }
  return "";
}

bool argsValid(const CollectiveArgs& args) {
  return argsProblem(args).empty();
}

Status checkBuild(const Algorithm& algorithm, const CollectiveArgs& args, int rank) {
  const std::string who =
      std::string(collectiveName(algorithm.collective())) + ":" + std::string(algorithm.name());
  if (args.collective != algorithm.collective()) {
    return invalidArgument(who + " cannot build " + collectiveName(args.collective));
  }
  const std::string problem = argsProblem(args);
  if (!problem.empty()) return invalidArgument(who + ": " + problem);
  if (rank < 0 || rank >= args.nranks) {
    return invalidArgument(who + ": rank " + std::to_string(rank) + " outside [0, " +
                           std::to_string(args.nranks) + ")");
  }
  if (!algorithm.supports(args)) {
    return invalidArgument(who + " does not support nranks " + std::to_string(args.nranks));
  }
  return Status::ok();
}

int channelsFor(const CollectiveArgs& args, uint64_t total) {
  if (total == 0) return 1;
  const uint64_t wanted = static_cast<uint64_t>(args.nchannels < 1 ? 1 : args.nchannels);
  return static_cast<int>(wanted < total ? wanted : total);
}

Part channelPart(uint64_t total, int nchannels, int channel) {
  return {chunkOffset(total, nchannels, channel), chunkCount(total, nchannels, channel)};
}

Part chunkOf(const Part& part, int parts, int index) {
  return {part.offset + chunkOffset(part.count, parts, index),
          chunkCount(part.count, parts, index)};
}

void resetSchedule(RankSchedule* out, int nchannels) {
  out->channels.assign(static_cast<size_t>(nchannels), Channel{});
  out->scratchCount = 0;
}

void buildSingleRankReduction(uint64_t count, RankSchedule* out) {
  resetSchedule(out, 1);
  out->channels[0].steps.push_back(
      Step::copy(inputRegion(0, count), outputRegion(0, count), /*finalize=*/true));
}

Part chunkRange(const Part& part, int parts, int first, int last) {
  const uint64_t begin = chunkOffset(part.count, parts, first);
  return {part.offset + begin, chunkOffset(part.count, parts, last) - begin};
}

std::vector<Part> blockRuns(uint64_t blockCount, const Part& part, int first, int blocks) {
  std::vector<Part> runs;
  if (part.count == 0 || blocks <= 0) return runs;
  const uint64_t start = static_cast<uint64_t>(first) * blockCount + part.offset;
  if (part.count == blockCount) {
    runs.push_back({start, static_cast<uint64_t>(blocks) * blockCount});
    return runs;
  }
  for (int b = 0; b < blocks; ++b) {
    runs.push_back({start + static_cast<uint64_t>(b) * blockCount, part.count});
  }
  return runs;
}

std::vector<Part> blockRunsMod(uint64_t blockCount, const Part& part, int n, int first,
                               int blocks) {
  LOOM_CHECK(blocks >= 0 && blocks <= n, "block range longer than the buffer");
  first = modRank(first, n);
  const int head = std::min(blocks, n - first);
  std::vector<Part> runs = blockRuns(blockCount, part, first, head);
  for (const Part& run : blockRuns(blockCount, part, 0, blocks - head)) {
    runs.push_back(run);
  }
  return runs;
}

Fold::Fold(int nranks) : n(nranks) {
  LOOM_CHECK_GT(nranks, 0);
  while (p * 2 <= n) {
    p *= 2;
  }
  rem = n - p;
}

int Fold::newRank(int rank) const {
  if (rank >= 2 * rem) return rank - rem;
  return rank % 2 == 1 ? rank / 2 : -1;
}

namespace {

// Puts the children in ascending order, a single child in child0.
TreeLinks ordered(TreeLinks links) {
  if (links.child0 < 0 || (links.child1 >= 0 && links.child1 < links.child0)) {
    std::swap(links.child0, links.child1);
  }
  return links;
}

// Tree 0 of doubleTreeLinks. The root 0 has the one child top/2, where top is the smallest power
// of two >= n. Another rank r with lowest set bit b hangs below (r ^ b) | 2b, or r ^ b when that
// is out of range; its children are r - b/2 and the first of r + b/2, r + b/4, .. that exists.
TreeLinks binaryTreeLinks(int n, int r) {
  TreeLinks links;
  int bit = 1;
  while (bit < n && (bit & r) == 0) {
    bit *= 2;
  }
  if (r == 0) {
    if (n > 1) links.child0 = bit / 2;
    return links;
  }
  links.parent = (r ^ bit) | (bit * 2);
  if (links.parent >= n) links.parent = r ^ bit;
  for (int low = bit / 2; low > 0; low /= 2) {
    if (links.child0 < 0) links.child0 = r - low;
    if (r + low < n) {
      links.child1 = r + low;
      break;
    }
  }
  return ordered(links);
}

int mapRank(int r, int n, bool mirror, int shift) {
  if (r < 0) return -1;
  return mirror ? n - 1 - r : modRank(r + shift, n);
}

}  // namespace

TreeLinks doubleTreeLinks(int n, int rank, int tree) {
  LOOM_CHECK(tree == 0 || tree == 1, "a double binary tree has trees 0 and 1");
  if (tree == 0) return binaryTreeLinks(n, rank);
  const bool mirror = n % 2 == 0;
  const TreeLinks base = binaryTreeLinks(n, mirror ? n - 1 - rank : modRank(rank - 1, n));
  return ordered({mapRank(base.parent, n, mirror, 1), mapRank(base.child0, n, mirror, 1),
                  mapRank(base.child1, n, mirror, 1)});
}

int doubleTreeRoot(int n, int tree) {
  if (tree == 0) return 0;
  return n % 2 == 1 && n > 1 ? 1 : n - 1;
}

}  // namespace loom::algo
