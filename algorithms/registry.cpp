// The registry: a static list of the built-in algorithms (builtin.h), in registration order.
#include <algorithm>
#include <span>
#include <string>

#include "algorithms/algorithm.h"
#include "algorithms/builtin.h"

namespace loom::algo {
namespace {

std::span<const Algorithm* const> allAlgorithms() {
  static const Algorithm* const kAll[] = {
      &builtin::allReduceRing(),
      &builtin::allGatherRing(),
      &builtin::reduceScatterRing(),
      &builtin::broadcastChain(),
      &builtin::broadcastBinomial(),
      &builtin::reduceBinomial(),
      &builtin::allToAllPairwise(),
      &builtin::gatherLinear(),
      &builtin::scatterLinear(),
      &builtin::sendDirect(),
      &builtin::recvDirect(),
      &builtin::barrierDissemination(),
      // After the first of each collective, which the default rule picks (planner.h).
      &builtin::allReduceRecursiveDoubling(),
      &builtin::allReduceRabenseifner(),
      &builtin::allReduceDoubleBinaryTree(),
      &builtin::broadcastDoubleBinaryTree(),
      &builtin::broadcastScatterAllGather(),
      &builtin::allGatherBruck(),
      &builtin::allGatherRecursiveDoubling(),
      &builtin::reduceScatterRecursiveHalving(),
      &builtin::allToAllBruck(),
      &builtin::allReduceHierarchical(),
      &builtin::allGatherHierarchical(),
      &builtin::reduceScatterHierarchical(),
      &builtin::broadcastHierarchical(),
      &builtin::reduceHierarchical(),
      &builtin::allReduceOneShot(),
      &builtin::allReduceTwoShot(),
      &builtin::allGatherOneShot(),
      &builtin::reduceScatterOneShot(),
      &builtin::broadcastOneShot(),
      &builtin::reduceOneShot(),
      &builtin::allToAllOneShot(),
  };
  return kAll;
}

}  // namespace

const std::vector<const Algorithm*>& algorithmsFor(Collective c) {
  static const auto* byCollective = [] {
    auto* table = new std::vector<const Algorithm*>[kNumCollectives];
    for (const Algorithm* algorithm : allAlgorithms())
      table[static_cast<int>(algorithm->collective())].push_back(algorithm);
    return table;
  }();
  return byCollective[static_cast<int>(c)];
}

const Algorithm* findAlgorithm(Collective c, std::string_view name) {
  for (const Algorithm* algorithm : allAlgorithms()) {
    if (algorithm->collective() == c && algorithm->name() == name) return algorithm;
  }
  return nullptr;
}

bool runsInWindow(const Algorithm& algorithm, const CollectiveArgs& args) {
  if (args.windowBytes == 0) return false;
  switch (algorithm.collective()) {
    case Collective::kAllReduce:
      return algorithm.name() == "one_shot" || algorithm.name() == "two_shot";
    case Collective::kAllGather:
    case Collective::kBroadcast:
    case Collective::kReduce:
      return algorithm.name() == "one_shot";
    case Collective::kReduceScatter:
    case Collective::kAllToAll:
      // A round stages a piece of every block: at least one element of the widest type each.
      return algorithm.name() == "one_shot" &&
             args.windowBytes / static_cast<uint64_t>(std::max(1, args.nranks)) >= 8;
    default:
      return false;
  }
}

Status buildAll(const Algorithm& algorithm, const CollectiveArgs& args, Schedule* out) {
  out->args = args;
  out->algorithm = std::string(algorithm.name());
  out->ranks.clear();
  if (args.nranks < 1) {
    return invalidArgument("buildAll: nranks " + std::to_string(args.nranks) + " < 1");
  }
  out->ranks.resize(static_cast<size_t>(args.nranks));
  for (int r = 0; r < args.nranks; ++r) {
    Status status = algorithm.build(args, r, &out->ranks[static_cast<size_t>(r)]);
    if (!status.isOk()) return status.withContext("rank " + std::to_string(r));
  }
  return Status::ok();
}

}  // namespace loom::algo
