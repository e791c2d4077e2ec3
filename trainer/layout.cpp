#include "layout.h"

#include <algorithm>
#include <set>

namespace loom::trainer {

Coords coordsOf(int rank, const TrainConfig& cfg) {
  Coords c;
  c.rank = rank;
  c.tp = rank % cfg.tp;
  c.dp = (rank / cfg.tp) % cfg.dp;
  c.pp = rank / (cfg.tp * cfg.dp);
  c.ep = c.dp % cfg.ep;
  c.edp = c.dp / cfg.ep;
  return c;
}

int rankOf(int tp, int dp, int pp, const TrainConfig& cfg) {
  return tp + cfg.tp * (dp + cfg.dp * pp);
}

const char* groupName(GroupKind g) {
  switch (g) {
    case kWorld:
      return "world";
    case kTpGroup:
      return "tp";
    case kDpGroup:
      return "dp";
    case kPpGroup:
      return "pp";
    case kEpGroup:
      return "ep";
    case kEdpGroup:
      return "expert-dp";
    case kNumGroups:
      break;
  }
  return "?";
}

namespace {

// (color, key) of `rank` in the split that makes group g.
void colorKey(GroupKind g, const Coords& c, const TrainConfig& cfg, int* color, int* key) {
  switch (g) {
    case kTpGroup:
      *color = c.dp + cfg.dp * c.pp;
      *key = c.tp;
      return;
    case kDpGroup:
      *color = c.tp + cfg.tp * c.pp;
      *key = c.dp;
      return;
    case kPpGroup:
      *color = c.tp + cfg.tp * c.dp;
      *key = c.pp;
      return;
    case kEpGroup:
      *color = c.tp + cfg.tp * (c.pp + cfg.pp * c.edp);
      *key = c.ep;
      return;
    case kEdpGroup:
      *color = c.tp + cfg.tp * (c.pp + cfg.pp * c.ep);
      *key = c.edp;
      return;
    default:
      *color = 0;
      *key = c.rank;
  }
}

}  // namespace

std::vector<int> groupMembers(GroupKind g, int rank, const TrainConfig& cfg) {
  const Coords me = coordsOf(rank, cfg);
  int myColor = 0, myKey = 0;
  colorKey(g, me, cfg, &myColor, &myKey);
  std::vector<std::pair<int, int>> keyed;
  for (int r = 0; r < cfg.world(); ++r) {
    int color = 0, key = 0;
    colorKey(g, coordsOf(r, cfg), cfg, &color, &key);
    if (color == myColor) keyed.emplace_back(key, r);
  }
  std::sort(keyed.begin(), keyed.end());
  std::vector<int> out;
  for (auto& [k, r] : keyed)
    out.push_back(r);
  return out;
}

loom::Communicator& Groups::get(GroupKind g) {
  switch (g) {
    case kTpGroup:
      return tp;
    case kDpGroup:
      return dp;
    case kPpGroup:
      return pp;
    case kEpGroup:
      return ep;
    case kEdpGroup:
      return edp;
    default:
      return world;
  }
}

Groups::~Groups() {
  edp.destroy();
  ep.destroy();
  pp.destroy();
  dp.destroy();
  tp.destroy();
  world.destroy();
}

Status makeGroups(loom::Communicator world, const TrainConfig& cfg, Groups* out) {
  out->world = std::move(world);
  if (out->world.size() != cfg.world())
    return Status(loomInvalidArgument, "loom-train: the job has " +
                                           std::to_string(out->world.size()) +
                                           " ranks but dp*tp*pp = " + std::to_string(cfg.world()));
  out->coords = coordsOf(out->world.rank(), cfg);
  for (int g = kTpGroup; g < kNumGroups; ++g) {
    int color = 0, key = 0;
    colorKey(static_cast<GroupKind>(g), out->coords, cfg, &color, &key);
    Status s = out->world.split(color, key, &out->get(static_cast<GroupKind>(g)));
    if (!s.ok()) return s;
  }
  return Status();
}

std::string groupTable(const TrainConfig& cfg) {
  std::string s = "loom-train: " + describe(cfg) + ", world " + std::to_string(cfg.world()) +
                  "; rank = tp + TP*(dp + DP*pp)\n";
  for (int g = kTpGroup; g < kNumGroups; ++g) {
    const auto kind = static_cast<GroupKind>(g);
    if ((kind == kEpGroup || kind == kEdpGroup) && !cfg.moe) continue;
    std::set<std::vector<int>> seen;
    s += "  " + std::string(groupName(kind)) + " groups:";
    for (int r = 0; r < cfg.world(); ++r) {
      std::vector<int> m = groupMembers(kind, r, cfg);
      if (!seen.insert(m).second) continue;
      s += " [";
      for (size_t i = 0; i < m.size(); ++i) {
        if (i) s += ' ';
        s += std::to_string(m[i]);
        if (cfg.nodeSize > 0) s += "@n" + std::to_string(m[i] / cfg.nodeSize);
      }
      s += "]";
    }
    s += "\n";
  }
  return s;
}

}  // namespace loom::trainer
