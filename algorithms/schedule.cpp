// The schedule IR's helpers: names, buffer sizes, the in-place layout and the listing.
#include "algorithms/schedule.h"

#include <cstdio>

#include "base/assert.h"

namespace loom::algo {

const char* collectiveName(Collective c) {
  switch (c) {
    case Collective::kAllReduce:
      return "allreduce";
    case Collective::kBroadcast:
      return "broadcast";
    case Collective::kReduce:
      return "reduce";
    case Collective::kAllGather:
      return "allgather";
    case Collective::kReduceScatter:
      return "reducescatter";
    case Collective::kAllToAll:
      return "alltoall";
    case Collective::kGather:
      return "gather";
    case Collective::kScatter:
      return "scatter";
    case Collective::kSend:
      return "send";
    case Collective::kRecv:
      return "recv";
    case Collective::kBarrier:
      return "barrier";
  }
  return "unknown";
}

bool isReduction(Collective c) {
  return c == Collective::kAllReduce || c == Collective::kReduce || c == Collective::kReduceScatter;
}

const char* bufferName(BufferId b) {
  switch (b) {
    case BufferId::kInput:
      return "input";
    case BufferId::kOutput:
      return "output";
    case BufferId::kScratch:
      return "scratch";
  }
  return "unknown";
}

const char* stepKindName(StepKind k) {
  switch (k) {
    case StepKind::kSend:
      return "send";
    case StepKind::kRecv:
      return "recv";
    case StepKind::kRecvReduce:
      return "recvreduce";
    case StepKind::kCopy:
      return "copy";
    case StepKind::kReduce:
      return "reduce";
  }
  return "unknown";
}

uint64_t Step::count() const {
  return kind == StepKind::kSend ? src.count : dst.count;
}

Step Step::send(int peer, Region src) {
  Step s;
  s.kind = StepKind::kSend;
  s.peer = peer;
  s.src = src;
  return s;
}

Step Step::recv(int peer, Region dst) {
  Step s;
  s.kind = StepKind::kRecv;
  s.peer = peer;
  s.dst = dst;
  return s;
}

Step Step::recvReduce(int peer, Region src, Region dst, bool finalize) {
  Step s;
  s.kind = StepKind::kRecvReduce;
  s.peer = peer;
  s.src = src;
  s.dst = dst;
  s.finalize = finalize;
  return s;
}

Step Step::copy(Region src, Region dst, bool finalize) {
  Step s;
  s.kind = StepKind::kCopy;
  s.src = src;
  s.dst = dst;
  s.finalize = finalize;
  return s;
}

Step Step::reduce(Region src, Region src2, Region dst, bool finalize) {
  Step s;
  s.kind = StepKind::kReduce;
  s.src = src;
  s.src2 = src2;
  s.dst = dst;
  s.finalize = finalize;
  return s;
}

namespace {

bool isRoot(const CollectiveArgs& args, int rank) {
  return rank == args.root;
}

}  // namespace

uint64_t inputCount(const CollectiveArgs& args, int rank) {
  const uint64_t n = static_cast<uint64_t>(args.nranks);
  switch (args.collective) {
    case Collective::kAllReduce:
    case Collective::kReduce:
    case Collective::kAllGather:
    case Collective::kGather:
    case Collective::kSend:
      return args.count;
    case Collective::kBroadcast:
      return isRoot(args, rank) ? args.count : 0;
    case Collective::kReduceScatter:
    case Collective::kAllToAll:
      return n * args.count;
    case Collective::kScatter:
      return isRoot(args, rank) ? n * args.count : 0;
    case Collective::kRecv:
    case Collective::kBarrier:
      return 0;
  }
  return 0;
}

uint64_t outputCount(const CollectiveArgs& args, int rank) {
  const uint64_t n = static_cast<uint64_t>(args.nranks);
  switch (args.collective) {
    case Collective::kAllReduce:
    case Collective::kBroadcast:
    case Collective::kReduceScatter:
    case Collective::kScatter:
    case Collective::kRecv:
      return args.count;
    case Collective::kReduce:
      return isRoot(args, rank) ? args.count : 0;
    case Collective::kAllGather:
    case Collective::kAllToAll:
      return n * args.count;
    case Collective::kGather:
      return isRoot(args, rank) ? n * args.count : 0;
    case Collective::kSend:
    case Collective::kBarrier:
      return 0;
  }
  return 0;
}

bool aliasOf(const CollectiveArgs& args, int rank, Alias* alias) {
  if (!args.inPlace) return false;
  const uint64_t c = args.count;
  const bool root = isRoot(args, rank);
  switch (args.collective) {
    case Collective::kAllReduce:
    case Collective::kAllToAll:
      *alias = {BufferId::kInput, BufferId::kOutput, 0};
      return true;
    case Collective::kBroadcast:
    case Collective::kReduce:
      if (!root) return false;
      *alias = {BufferId::kInput, BufferId::kOutput, 0};
      return true;
    case Collective::kAllGather:
      *alias = {BufferId::kInput, BufferId::kOutput, static_cast<uint64_t>(rank) * c};
      return true;
    case Collective::kReduceScatter:
      *alias = {BufferId::kOutput, BufferId::kInput, static_cast<uint64_t>(rank) * c};
      return true;
    case Collective::kGather:
      if (!root) return false;
      *alias = {BufferId::kInput, BufferId::kOutput, static_cast<uint64_t>(rank) * c};
      return true;
    case Collective::kScatter:
      if (!root) return false;
      *alias = {BufferId::kOutput, BufferId::kInput, static_cast<uint64_t>(rank) * c};
      return true;
    case Collective::kSend:
    case Collective::kRecv:
    case Collective::kBarrier:
      return false;
  }
  return false;
}

namespace {

void rewrite(const Alias& alias, Region* region) {
  if (region->buffer != alias.aliased) return;
  region->buffer = alias.base;
  region->offset += alias.offset;
}

}  // namespace

void canonicalizeInPlace(const CollectiveArgs& args, int rank, RankSchedule* schedule) {
  Alias alias;
  if (!aliasOf(args, rank, &alias)) return;
  for (Channel& channel : schedule->channels) {
    for (Step& step : channel.steps) {
      rewrite(alias, &step.src);
      rewrite(alias, &step.src2);
      rewrite(alias, &step.dst);
    }
  }
}

uint64_t chunkOffset(uint64_t total, int parts, int index) {
  LOOM_CHECK_GT(parts, 0);
  LOOM_CHECK(index >= 0 && index <= parts, "chunk index out of range");
  const uint64_t p = static_cast<uint64_t>(parts);
  const uint64_t i = static_cast<uint64_t>(index);
  const uint64_t base = total / p;
  const uint64_t extra = total % p;
  return i * base + (i < extra ? i : extra);
}

uint64_t chunkCount(uint64_t total, int parts, int index) {
  LOOM_CHECK_GT(parts, 0);
  LOOM_CHECK(index >= 0 && index < parts, "chunk index out of range");
  const uint64_t p = static_cast<uint64_t>(parts);
  return total / p + (static_cast<uint64_t>(index) < total % p ? 1 : 0);
}

namespace {

const char* shortBufferName(BufferId b) {
  switch (b) {
    case BufferId::kInput:
      return "in";
    case BufferId::kOutput:
      return "out";
    case BufferId::kScratch:
      return "scratch";
  }
  return "?";
}

}  // namespace

std::string describeRegion(const Region& region) {
  return std::string(shortBufferName(region.buffer)) + "[" + std::to_string(region.offset) + "+" +
         std::to_string(region.count) + "]";
}

std::string describeStep(const Step& step) {
  char head[32];
  std::snprintf(head, sizeof(head), "%-10s ", stepKindName(step.kind));
  std::string s = head;
  const std::string peer = "r" + std::to_string(step.peer);
  switch (step.kind) {
    case StepKind::kSend:
      s += "-> " + peer + "  " + describeRegion(step.src);
      break;
    case StepKind::kRecv:
      s += "<- " + peer + "  " + describeRegion(step.dst);
      break;
    case StepKind::kRecvReduce:
      s += "<- " + peer + "  " + describeRegion(step.src) + " -> " + describeRegion(step.dst);
      break;
    case StepKind::kCopy:
      s += describeRegion(step.src) + " -> " + describeRegion(step.dst);
      break;
    case StepKind::kReduce:
      s += describeRegion(step.src) + ", " + describeRegion(step.src2) + " -> " +
           describeRegion(step.dst);
      break;
  }
  if (step.finalize) s += "  finalize";
  return s;
}

std::string describe(const RankSchedule& schedule, int rank) {
  std::string out;
  if (schedule.scratchCount > 0) {
    out += "r" + std::to_string(rank) + " scratch " + std::to_string(schedule.scratchCount) +
           " elements\n";
  }
  for (size_t c = 0; c < schedule.channels.size(); ++c) {
    const auto& steps = schedule.channels[c].steps;
    for (size_t i = 0; i < steps.size(); ++i) {
      char head[48];
      std::snprintf(head, sizeof(head), "r%d c%zu %3zu: ", rank, c, i);
      out += head + describeStep(steps[i]) + "\n";
    }
  }
  return out;
}

}  // namespace loom::algo
