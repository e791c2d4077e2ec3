// The cost formulas of docs/ALGORITHMS.md, checked against the schedules: per rank, the
// elements sent, the messages sent and the scratch, for the recursive, tree and Bruck
// algorithms on every nranks up to 33 (the planner's cost model uses these formulas, so they
// must be exact). Plus the structure of NCCL's double binary tree.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <string>
#include <vector>

#include "algorithms/algorithm.h"
#include "algorithms/builder.h"

namespace loom::algo {
namespace {

constexpr int kMaxRanks = 33;

struct Cost {
  uint64_t sent = 0;      // elements
  uint64_t messages = 0;  // sends
  uint64_t scratch = 0;   // elements
  bool operator==(const Cost&) const = default;
};

std::string text(const Cost& c) {
  return "sent " + std::to_string(c.sent) + " in " + std::to_string(c.messages) +
         " messages, scratch " + std::to_string(c.scratch);
}

Cost costOf(const char* name, Collective collective, uint64_t count, int n, int rank) {
  const Algorithm* algorithm = findAlgorithm(collective, name);
  EXPECT_NE(algorithm, nullptr) << name;
  Cost cost;
  if (algorithm == nullptr) return cost;
  RankSchedule s;
  const Status status = algorithm->build({collective, count, n, 0, -1, false, 1}, rank, &s);
  EXPECT_TRUE(status.isOk()) << status.toString();
  for (const Channel& channel : s.channels) {
    for (const Step& step : channel.steps) {
      if (step.kind != StepKind::kSend) continue;
      cost.sent += step.count();
      ++cost.messages;
    }
  }
  cost.scratch = s.scratchCount;
  return cost;
}

uint64_t log2Floor(int n) {
  return static_cast<uint64_t>(std::bit_width(static_cast<unsigned>(n)) - 1);
}
uint64_t log2Ceil(int n) {
  return static_cast<uint64_t>(std::bit_width(static_cast<unsigned>(n - 1)));
}

// Checks expected(n, rank, count) for every rank, n in 2..kMaxRanks.
template <typename Formula>
void expectCosts(const char* name, Collective collective, uint64_t count, Formula expected) {
  for (int n = 2; n <= kMaxRanks; ++n) {
    const Fold fold(n);
    for (int r = 0; r < n; ++r) {
      const Cost want = expected(fold, r, count);
      const Cost seen = costOf(name, collective, count, n, r);
      EXPECT_EQ(seen, want) << collectiveName(collective) << ":" << name << " nranks " << n
                            << " rank " << r << ": schedule " << text(seen) << ", formula "
                            << text(want);
    }
  }
}

TEST(AlgorithmCostTest, AllReduceRecursiveDoubling) {
  expectCosts("recursive_doubling", Collective::kAllReduce, 1001,
              [](const Fold& f, int r, uint64_t c) {
                const uint64_t rounds = log2Floor(f.n);
                if (f.isExtra(r)) return Cost{c, 1, 0};
                if (f.isProxy(r)) return Cost{(rounds + 1) * c, rounds + 1, c};
                return Cost{rounds * c, rounds, c};
              });
}

TEST(AlgorithmCostTest, AllReduceOneShotAndTwoShot) {
  // One shot: the whole vector to each of the n-1 peers; scratch for every rank's copy.
  expectCosts("one_shot", Collective::kAllReduce, 1001, [](const Fold& f, int, uint64_t c) {
    const uint64_t peers = static_cast<uint64_t>(f.n - 1);
    return Cost{peers * c, peers, static_cast<uint64_t>(f.n) * c};
  });
  // Two shot, count = lcm(1..33), divisible by every n (so every chunk is c / n): each peer gets
  // its chunk of the input and then this rank's finished chunk, 2 (n-1)/n c in 2 (n-1) messages.
  expectCosts("two_shot", Collective::kAllReduce, 144403552893600ULL,
              [](const Fold& f, int, uint64_t c) {
                const uint64_t peers = static_cast<uint64_t>(f.n - 1);
                return Cost{2 * peers * (c / static_cast<uint64_t>(f.n)), 2 * peers,
                            static_cast<uint64_t>(f.n) * c};
              });
}

TEST(AlgorithmCostTest, AllReduceRabenseifner) {
  // count divisible by every p <= 32, so every chunk is c / p.
  expectCosts("rabenseifner", Collective::kAllReduce, 32 * 7, [](const Fold& f, int r, uint64_t c) {
    const uint64_t rounds = log2Floor(f.n);
    const uint64_t both = 2 * (c - c / f.p);
    if (f.isExtra(r)) return Cost{c, 1, 0};
    if (f.isProxy(r)) return Cost{both + c, 2 * rounds + 1, 0};
    return Cost{both, 2 * rounds, 0};
  });
}

TEST(AlgorithmCostTest, ReduceScatterRecursiveHalving) {
  expectCosts(
      "recursive_halving", Collective::kReduceScatter, 13, [](const Fold& f, int r, uint64_t c) {
        const uint64_t rounds = log2Floor(f.n);
        const uint64_t n = static_cast<uint64_t>(f.n);
        if (f.isExtra(r)) return Cost{n * c, 1, 0};
        const int v = f.newRank(r);
        // The last round sends one message per block of the partner's new rank.
        const int partner = v ^ 1;
        const uint64_t last = static_cast<uint64_t>(f.firstOf(partner + 1) - f.firstOf(partner));
        const uint64_t messages = rounds - 1 + last + (f.isProxy(r) ? 1 : 0);
        const int half = f.p / 2;
        const uint64_t kept =
            static_cast<uint64_t>(v < half ? f.firstOf(half) : f.n - f.firstOf(half));
        const uint64_t scratch = f.isProxy(r) ? n * c : (f.p > 2 ? kept * c : 0);
        return Cost{(n - 1) * c, messages, scratch};
      });
}

TEST(AlgorithmCostTest, AllGatherBruck) {
  expectCosts("bruck", Collective::kAllGather, 9, [](const Fold& f, int r, uint64_t c) {
    const int n = f.n;
    uint64_t messages = 0;
    for (int d = 1; d < n; d *= 2) {
      const int blocks = std::min(d, n - d);
      messages += d > 1 && r + blocks > n ? 2 : 1;  // a run past block n-1 is cut there
    }
    return Cost{static_cast<uint64_t>(n - 1) * c, messages, 0};
  });
}

TEST(AlgorithmCostTest, AllGatherRecursiveDoubling) {
  expectCosts("recursive_doubling", Collective::kAllGather, 9,
              [](const Fold& f, int r, uint64_t c) {
                const uint64_t n = static_cast<uint64_t>(f.n);
                if (f.isExtra(r)) return Cost{c, 1, 0};
                const int v = f.newRank(r);
                uint64_t blocks = 0;  // blocks of the windows v sends: 1, 2, .. p/2 new ranks
                for (int mask = 1; mask < f.p; mask *= 2) {
                  const int mine = v & ~(mask - 1);
                  blocks += static_cast<uint64_t>(f.firstOf(mine + mask) - f.firstOf(mine));
                }
                const uint64_t rounds = log2Floor(f.n);
                if (!f.isProxy(r)) return Cost{blocks * c, rounds, 0};
                const uint64_t out = r == 1 ? 1 : 2;  // every block but r-1: cut at block n-1
                return Cost{blocks * c + (n - 1) * c, rounds + out, 0};
              });
}

TEST(AlgorithmCostTest, AllToAllBruck) {
  expectCosts("bruck", Collective::kAllToAll, 5, [](const Fold& f, int, uint64_t c) {
    uint64_t moved = 0;  // B: the slots moved, sum of popcount(i) for i < n
    for (unsigned i = 1; i < static_cast<unsigned>(f.n); ++i) {
      moved += static_cast<uint64_t>(std::popcount(i));
    }
    return Cost{moved * c, log2Ceil(f.n), 2 * moved * c};
  });
}

TEST(AlgorithmCostTest, BroadcastScatterAllGather) {
  // count divisible by every n <= 33 (their least common multiple): n chunks of c / n.
  const uint64_t count = 144403552893600;
  expectCosts(
      "scatter_allgather", Collective::kBroadcast, count, [](const Fold& f, int v, uint64_t c) {
        const int n = f.n;
        auto end = [&](int w) { return w == 0 ? n : std::min(w + (w & -w), n); };
        const uint64_t chunk = c / static_cast<uint64_t>(n);
        uint64_t children = 0;  // scatter: v's children, one message each
        for (int w = v + 1; w < end(v); ++w) {
          if (w - (w & -w) == v) ++children;
        }
        const uint64_t scatter = static_cast<uint64_t>(end(v) - v - 1);
        const uint64_t ring = v == n - 1 ? 0 : static_cast<uint64_t>(n - (end(v + 1) - v - 1));
        return Cost{(scatter + ring) * chunk, children + ring, 0};
      });
}

// NCCL's double binary tree: links agree, each tree spans every rank from its root with depth
// ceil(log2 n) (the D of the cost formulas), and a rank is an inner node of both trees only
// once, for odd n.
TEST(DoubleTreeTest, TreesAreConsistentBalancedAndComplementary) {
  for (int n = 1; n <= 200; ++n) {
    int innerInBoth = 0;
    int deepest[2] = {0, 0};
    for (int r = 0; r < n; ++r) {
      int inner = 0;
      for (int t = 0; t < 2; ++t) {
        const TreeLinks links = doubleTreeLinks(n, r, t);
        for (const int child : {links.child0, links.child1}) {
          if (child < 0) continue;
          ASSERT_LT(child, n);
          EXPECT_EQ(doubleTreeLinks(n, child, t).parent, r) << "n " << n << " tree " << t;
        }
        if (links.child0 >= 0) ++inner;
        EXPECT_EQ(links.parent < 0, r == doubleTreeRoot(n, t)) << "n " << n << " rank " << r;
        int depth = 0;
        for (int up = r; up != doubleTreeRoot(n, t) && depth <= n; ++depth) {
          up = doubleTreeLinks(n, up, t).parent;
          ASSERT_GE(up, 0) << "n " << n << " rank " << r << " tree " << t;
        }
        deepest[t] = std::max(deepest[t], depth);
      }
      if (inner == 2) ++innerInBoth;
    }
    EXPECT_LE(innerInBoth, n % 2 == 1 ? 1 : 0) << "n " << n;
    EXPECT_EQ(deepest[0], static_cast<int>(log2Ceil(n))) << "n " << n;
    EXPECT_EQ(deepest[1], static_cast<int>(log2Ceil(n))) << "n " << n;
  }
}

TEST(AlgorithmCostTest, DoubleBinaryTreeAllReduceSendsAtMostTwiceTheData) {
  for (int n = 2; n <= kMaxRanks; ++n) {
    for (int r = 0; r < n; ++r) {
      const Cost cost = costOf("double_binary_tree", Collective::kAllReduce, 1000, n, r);
      EXPECT_LE(cost.sent, 2000u) << "nranks " << n << " rank " << r;
      EXPECT_EQ(cost.scratch, 0u);
    }
  }
}

}  // namespace
}  // namespace loom::algo
