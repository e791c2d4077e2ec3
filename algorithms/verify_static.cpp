// Verifier phase 1: rules that hold for each step on its own, and channel disjointness.
#include <string>
#include <vector>

#include "algorithms/verify_internal.h"

namespace loom::algo::verify_detail {
namespace {

std::string rankName(int r) {
  return "r" + std::to_string(r);
}

bool knownKind(StepKind k) {
  return static_cast<int>(k) <= static_cast<int>(StepKind::kReduce);
}
bool knownBuffer(BufferId b) {
  return static_cast<int>(b) < kNumBuffers;
}

bool partiallyOverlap(const Region& a, const Region& b) {
  if (a.buffer != b.buffer || a == b || a.count == 0 || b.count == 0) return false;
  return a.offset < b.end() && b.offset < a.end();
}

class StepChecker {
 public:
  StepChecker(const Model& model, const RankModel& rank, int channel, int index)
      : model_(model),
        rank_(rank),
        channel_(channel),
        index_(index),
        raw_(rank.raw->channels[channel].steps[index]),
        canon_(rank.canon.channels[channel].steps[index]) {}

  Status check() const {
    if (!knownKind(raw_.kind)) {
      return fail("unknown step kind " + std::to_string(static_cast<int>(raw_.kind)));
    }
    LOOM_RETURN_IF_ERROR(checkPeer());
    LOOM_RETURN_IF_ERROR(checkReductionRules());
    RegionUse raw[3], canon[3];
    const int n = regionsOf(raw_, raw);
    regionsOf(canon_, canon);
    for (int u = 0; u < n; ++u) {
      LOOM_RETURN_IF_ERROR(checkRegion(raw[u]));
      if (raw[u].region->count != raw[0].region->count) {
        return fail(std::string(raw[0].role) + " has " + std::to_string(raw[0].region->count) +
                    " elements but " + raw[u].role + " has " +
                    std::to_string(raw[u].region->count));
      }
    }
    return checkOverlap(canon, n);
  }

 private:
  Status fail(const std::string& what) const {
    return invalidArgument(whereIs(model_, rank_.rank, channel_, index_) + ": " + what);
  }

  Status checkPeer() const {
    if (!isMessage(raw_.kind)) return Status::ok();
    if (raw_.peer < 0 || raw_.peer >= model_.nranks) {
      return fail("peer " + std::to_string(raw_.peer) + " outside [0, " +
                  std::to_string(model_.nranks) + ")");
    }
    if (raw_.peer == rank_.rank) return fail("talks to its own rank; a local move is a copy");
    return Status::ok();
  }

  Status checkReductionRules() const {
    const bool reduction = isReduction(rank_.args.collective);
    const bool combines = raw_.kind == StepKind::kRecvReduce || raw_.kind == StepKind::kReduce;
    const std::string collective = collectiveName(rank_.args.collective);
    if (combines && !reduction) {
      return fail("combines values, but " + collective + " is not a reduction");
    }
    if (!raw_.finalize) return Status::ok();
    if (!combines && raw_.kind != StepKind::kCopy) {
      return fail(std::string("a ") + stepKindName(raw_.kind) + " cannot finalize");
    }
    if (!reduction) return fail("finalizes, but " + collective + " is not a reduction");
    return Status::ok();
  }

  Status checkRegion(const RegionUse& use) const {
    const Region& region = *use.region;
    const std::string role = std::string(use.role) + " " + describeRegion(region);
    if (!knownBuffer(region.buffer)) {
      return fail(std::string(use.role) + " names unknown buffer " +
                  std::to_string(static_cast<int>(region.buffer)));
    }
    if (use.writes && region.buffer == BufferId::kInput) {
      return fail(role +
                  " writes into the input buffer, which is read-only (in place, write "
                  "the output: it aliases the input)");
    }
    const uint64_t size = rank_.logical[bufferIndex(region.buffer)];
    if (region.offset <= size && region.count <= size - region.offset) return Status::ok();
    if (!hasBuffer(rank_, region.buffer)) {
      return fail(role + ": " + rankName(rank_.rank) + " has no " + bufferName(region.buffer) +
                  " buffer in " + collectiveName(rank_.args.collective) +
                  (rank_.args.root != rank_.rank ? " (it is not the root)" : ""));
    }
    return fail(role + " ends at element " + std::to_string(region.offset + region.count) +
                ", past the " + std::to_string(size) + " elements of " + rankName(rank_.rank) +
                "'s " + bufferName(region.buffer));
  }

  Status checkOverlap(const RegionUse* canon, int n) const {
    if (n < 2) return Status::ok();
    const Region& dst = *canon[n - 1].region;
    for (int u = 0; u + 1 < n; ++u) {
      if (partiallyOverlap(*canon[u].region, dst)) {
        return fail(std::string(canon[u].role) + " " + describeRegion(*canon[u].region) +
                    " partially overlaps dst " + describeRegion(dst) +
                    (rank_.aliased ? " (after in-place aliasing)" : "") +
                    "; operands must be identical or disjoint");
      }
    }
    if (raw_.kind == StepKind::kCopy && *canon[0].region == dst && !raw_.finalize &&
        dst.count > 0) {
      return fail("copies " + describeRegion(dst) + " onto itself" +
                  (rank_.aliased ? " (after in-place aliasing)" : "") +
                  " without finalize: it moves nothing");
    }
    return Status::ok();
  }

  const Model& model_;
  const RankModel& rank_;
  int channel_;
  int index_;
  const Step& raw_;
  const Step& canon_;
};

// Channel disjointness: per element, the step that wrote it and up to two readers on distinct
// channels (enough to name a reader on a channel other than any given one).
struct Touch {
  int32_t channel = -1;
  int32_t step = -1;
};
struct ElementUse {
  Touch writer;
  Touch reader1;
  Touch reader2;
};

class DisjointChecker {
 public:
  DisjointChecker(const Model& model, const RankModel& rank) : model_(model), rank_(rank) {
    for (int b = 0; b < kNumBuffers; ++b) {
      uses_[b].resize(rank.storage[b]);
    }
  }

  Status check() {
    const auto& channels = rank_.canon.channels;
    for (int c = 0; c < static_cast<int>(channels.size()); ++c) {
      for (int i = 0; i < static_cast<int>(channels[c].steps.size()); ++i) {
        RegionUse regions[3];
        const int n = regionsOf(channels[c].steps[i], regions);
        for (int u = 0; u < n; ++u) {
          LOOM_RETURN_IF_ERROR(touch({c, i}, regions[u]));
        }
      }
    }
    return Status::ok();
  }

 private:
  Status touch(Touch at, const RegionUse& use) {
    const Region& region = *use.region;
    std::vector<ElementUse>& uses = uses_[bufferIndex(region.buffer)];
    for (uint64_t e = region.offset; e < region.end(); ++e) {
      ElementUse& u = uses[e];
      const Touch* other = nullptr;
      if (u.writer.channel >= 0 && u.writer.channel != at.channel) {
        other = &u.writer;
      } else if (use.writes && u.reader1.channel >= 0 && u.reader1.channel != at.channel) {
        other = &u.reader1;
      } else if (use.writes && u.reader2.channel >= 0 && u.reader2.channel != at.channel) {
        other = &u.reader2;
      }
      if (other != nullptr) return conflict(at, use.writes, *other, region.buffer, e);
      if (use.writes) {
        u.writer = at;
      } else if (u.reader1.channel < 0) {
        u.reader1 = at;
      } else if (u.reader1.channel != at.channel && u.reader2.channel < 0) {
        u.reader2 = at;
      }
    }
    return Status::ok();
  }

  Status conflict(Touch at, bool writes, Touch other, BufferId buffer, uint64_t e) const {
    return invalidArgument(
        whereIs(model_, rank_.rank, at.channel, at.step) + (writes ? " writes " : " reads ") +
        elementName(buffer, e) + ", which " +
        whereIs(model_, rank_.rank, other.channel, other.step) + " on another channel also " +
        (writes ? "touches" : "writes") +
        "; channels run concurrently, so an element one channel writes must not be touched by "
        "another");
  }

  const Model& model_;
  const RankModel& rank_;
  std::vector<ElementUse> uses_[kNumBuffers];
};

}  // namespace

Status checkSteps(const Model& model) {
  for (const RankModel& rank : model.ranks) {
    const auto& channels = rank.raw->channels;
    for (int c = 0; c < static_cast<int>(channels.size()); ++c) {
      for (int i = 0; i < static_cast<int>(channels[c].steps.size()); ++i) {
        LOOM_RETURN_IF_ERROR(StepChecker(model, rank, c, i).check());
      }
    }
  }
  return Status::ok();
}

Status checkChannelsDisjoint(const Model& model) {
  for (const RankModel& rank : model.ranks) {
    if (rank.canon.channels.size() < 2) continue;
    LOOM_RETURN_IF_ERROR(DisjointChecker(model, rank).check());
  }
  return Status::ok();
}

}  // namespace loom::algo::verify_detail
