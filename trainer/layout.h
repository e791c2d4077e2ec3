// layout.h - rank coordinates and the process groups of TRAINER.md:
//   rank = tp + TP * (dp + DP * pp)      (tensor-parallel ranks are contiguous: one node)
//   TP group: same (dp, pp); DP group: same (tp, pp); PP group: same (tp, dp);
//   EP group: EP consecutive dp indices (same tp, pp); expert-DP group: same (tp, pp, dp mod EP).
// Every group is a loom sub-communicator made with loomCommSplit of the world.
#ifndef LOOM_TRAINER_LAYOUT_H_
#define LOOM_TRAINER_LAYOUT_H_

#include <string>
#include <vector>

#include "config.h"
#include "loom/loom.hpp"

namespace loom::trainer {

struct Coords {
  int rank = 0;
  int tp = 0, dp = 0, pp = 0;
  int ep = 0;   // index within the EP group: dp mod EP
  int edp = 0;  // index within the expert-DP group: dp / EP
};

Coords coordsOf(int rank, const TrainConfig& cfg);
int rankOf(int tp, int dp, int pp, const TrainConfig& cfg);

enum GroupKind { kWorld = 0, kTpGroup, kDpGroup, kPpGroup, kEpGroup, kEdpGroup, kNumGroups };
const char* groupName(GroupKind g);

// Member ranks (world numbering) of the group of kind g that `rank` belongs to, in group order.
std::vector<int> groupMembers(GroupKind g, int rank, const TrainConfig& cfg);

// A rank's communicators. Owns them; the world is destroyed last. One thread uses it.
struct Groups {
  loom::Communicator world;
  loom::Communicator tp, dp, pp, ep, edp;
  Coords coords;

  loom::Communicator& get(GroupKind g);
  ~Groups();  // sub-communicators first
};

// Splits `world` (moved into *out) into the groups; collective over the world.
Status makeGroups(loom::Communicator world, const TrainConfig& cfg, Groups* out);

// The table printed at start-up: one line per group with its member ranks and, when
// cfg.nodeSize > 0, the node of each member.
std::string groupTable(const TrainConfig& cfg);

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_LAYOUT_H_
