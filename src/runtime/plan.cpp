#include "runtime/plan.h"

#include <algorithm>

namespace loom::runtime {

using algo::Region;
using algo::Step;
using algo::StepKind;

int regionsOf(const Step& s, RegionUse out[3]) {
  switch (s.kind) {
    case StepKind::kSend:
      out[0] = {s.src, false};
      return 1;
    case StepKind::kRecv:
      out[0] = {s.dst, true};
      return 1;
    case StepKind::kRecvReduce:
    case StepKind::kCopy:
      out[0] = {s.src, false};
      out[1] = {s.dst, true};
      return 2;
    case StepKind::kReduce:
      out[0] = {s.src, false};
      out[1] = {s.src2, false};
      out[2] = {s.dst, true};
      return 3;
  }
  return 0;
}

namespace {

bool overlaps(const Region& a, const Region& b) {
  return a.buffer == b.buffer && a.count > 0 && b.count > 0 && a.offset < b.end() &&
         b.offset < a.end();
}

// Data hazards between overlapping regions, plus fences: a zero-count step waits for every
// earlier step since the previous fence (and that fence), and every later step waits for it.
void computeDependencies(ChannelPlan* channel) {
  int64_t lastFence = -1;
  for (size_t i = 0; i < channel->steps.size(); ++i) {
    StepPlan& sp = channel->steps[i];
    const bool fence = sp.step.count() == 0;
    const size_t from = lastFence < 0 ? 0 : static_cast<size_t>(lastFence);
    if (lastFence >= 0) sp.deps.push_back({static_cast<uint32_t>(lastFence), 0, 0, true});
    if (fence) {
      for (size_t j = lastFence < 0 ? 0 : from + 1; j < i; ++j)
        sp.deps.push_back({static_cast<uint32_t>(j), 0, 0, true});
      lastFence = static_cast<int64_t>(i);
      continue;
    }
    RegionUse mine[3];
    int nm = regionsOf(sp.step, mine);
    for (size_t j = from; j < i; ++j) {
      RegionUse theirs[3];
      int nt = regionsOf(channel->steps[j].step, theirs);
      for (int a = 0; a < nm; ++a)
        for (int b = 0; b < nt; ++b)
          if ((mine[a].writes || theirs[b].writes) && overlaps(mine[a].region, theirs[b].region))
            sp.deps.push_back(
                {static_cast<uint32_t>(j), static_cast<uint8_t>(a), static_cast<uint8_t>(b)});
    }
  }
}

}  // namespace

Result<std::shared_ptr<const Plan>> buildPlan(const algo::Algorithm& algorithm,
                                              const algo::CollectiveArgs& args, int rank,
                                              size_t elemBytes, size_t sliceBytes) {
  algo::RankSchedule schedule;
  LOOM_RETURN_IF_ERROR(algorithm.build(args, rank, &schedule));
  algo::canonicalizeInPlace(args, rank, &schedule);
  auto plan = std::make_shared<Plan>();
  plan->algorithm = std::string(algorithm.name());
  plan->args = args;
  plan->rank = rank;
  plan->elemBytes = elemBytes;
  plan->scratchCount = schedule.scratchCount;
  const uint64_t sliceElems = std::max<uint64_t>(1, sliceBytes / elemBytes);
  for (algo::Channel& c : schedule.channels) {
    ChannelPlan cp;
    for (Step& s : c.steps) {
      StepPlan sp;
      sp.step = s;
      sp.sliceElems = sliceElems;
      uint64_t n = (s.count() + sliceElems - 1) / sliceElems;
      if (n > UINT32_MAX)
        return invalidArgument("step of " + std::to_string(s.count()) +
                               " elements needs too many slices");
      sp.nslices = static_cast<uint32_t>(std::max<uint64_t>(1, n));
      cp.hasRecvReduce = cp.hasRecvReduce || s.kind == StepKind::kRecvReduce;
      cp.steps.push_back(std::move(sp));
    }
    computeDependencies(&cp);
    plan->channels.push_back(std::move(cp));
  }
  return std::shared_ptr<const Plan>(std::move(plan));
}

Result<std::shared_ptr<const Plan>> PlanCache::get(const algo::Algorithm& algorithm,
                                                   const algo::CollectiveArgs& args, int rank,
                                                   size_t elemBytes, size_t sliceBytes) {
  Key key{&algorithm,   static_cast<int>(args.collective),
          args.count,   args.nranks,
          args.root,    args.peer,
          args.inPlace, args.nchannels,
          elemBytes,    sliceBytes,
          args.hosts};
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.second);
      return it->second.first;
    }
  }
  LOOM_ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan,
                        buildPlan(algorithm, args, rank, elemBytes, sliceBytes));
  std::lock_guard<std::mutex> lock(mu_);
  if (map_.count(key)) return plan;
  lru_.push_front(key);
  map_.emplace(key, std::make_pair(plan, lru_.begin()));
  while (map_.size() > capacity_) {
    map_.erase(lru_.back());
    lru_.pop_back();
  }
  return plan;
}

size_t PlanCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size();
}

}  // namespace loom::runtime
