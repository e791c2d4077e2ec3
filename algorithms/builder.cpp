#include "algorithms/builder.h"

#include <limits>
#include <string>

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

}  // namespace loom::algo
