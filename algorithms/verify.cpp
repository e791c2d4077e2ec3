// The verifier's entry points: build the Model, then run the phases (verify_internal.h).
#include "algorithms/verify.h"

#include <string>

#include "algorithms/builder.h"
#include "algorithms/verify_internal.h"
#include "base/assert.h"

namespace loom::algo {
namespace verify_detail {

bool hasBuffer(const RankModel& rank, BufferId b) {
  if (!rank.active) return false;
  if (b == BufferId::kScratch) return true;
  const CollectiveArgs& a = rank.args;
  const bool root = rank.rank == a.root;
  switch (a.collective) {
    case Collective::kBroadcast:
    case Collective::kScatter:
      return b == BufferId::kOutput || root;
    case Collective::kReduce:
    case Collective::kGather:
      return b == BufferId::kInput || root;
    case Collective::kSend:
      return b == BufferId::kInput;
    case Collective::kRecv:
      return b == BufferId::kOutput;
    case Collective::kBarrier:
      return false;
    default:
      return true;
  }
}

std::string elementName(BufferId buffer, uint64_t index) {
  const std::string region = describeRegion({buffer, index, 1});  // "out[5+1]"
  return region.substr(0, region.find('+')) + "]";
}

const Step& rawStep(const Model& model, const Node& node) {
  return model.ranks[node.rank].raw->channels[node.channel].steps[node.index];
}

const Step& canonStep(const Model& model, const Node& node) {
  return model.ranks[node.rank].canon.channels[node.channel].steps[node.index];
}

std::string whereIs(const Model& model, int rank, int channel, int index) {
  const Step& step = model.ranks[rank].raw->channels[channel].steps[index];
  return "r" + std::to_string(rank) + " c" + std::to_string(channel) + " step " +
         std::to_string(index) + " (" + describeStep(step) + ")";
}

std::string whereIs(const Model& model, const Node& node) {
  return whereIs(model, node.rank, node.channel, node.index);
}

namespace {

const RankSchedule kNoSchedule;

void initRank(int rank, const CollectiveArgs& args, const RankSchedule* schedule, RankModel* m) {
  m->rank = rank;
  m->active = true;
  m->args = args;
  m->raw = schedule;
  m->canon = *schedule;
  canonicalizeInPlace(args, rank, &m->canon);
  m->logical[bufferIndex(BufferId::kInput)] = inputCount(args, rank);
  m->logical[bufferIndex(BufferId::kOutput)] = outputCount(args, rank);
  m->logical[bufferIndex(BufferId::kScratch)] = schedule->scratchCount;
  for (int b = 0; b < kNumBuffers; ++b) {
    m->storage[b] = m->logical[b];
  }
  m->aliased = aliasOf(args, rank, &m->alias);
  if (m->aliased) {
    const uint64_t size = m->logical[bufferIndex(m->alias.aliased)];
    LOOM_CHECK_LE(m->alias.offset + size, m->logical[bufferIndex(m->alias.base)]);
    m->storage[bufferIndex(m->alias.aliased)] = 0;
  }
}

void initIdleRank(int rank, RankModel* m) {
  m->rank = rank;
  m->active = false;
  m->raw = &kNoSchedule;
  m->canon = kNoSchedule;
}

std::string collectiveLabel(const Schedule& s) {
  const CollectiveArgs& a = s.args;
  std::string label = std::string(collectiveName(a.collective)) + ":" + s.algorithm + " nranks " +
                      std::to_string(a.nranks) + " count " + std::to_string(a.count);
  if (a.collective == Collective::kBroadcast || a.collective == Collective::kReduce ||
      a.collective == Collective::kGather || a.collective == Collective::kScatter) {
    label += " root " + std::to_string(a.root);
  }
  if (a.inPlace) label += " in place";
  if (a.nchannels != 1) label += " nchannels " + std::to_string(a.nchannels);
  return label;
}

Status buildCollectiveModel(const Schedule& s, Model* model) {
  const CollectiveArgs& args = s.args;
  const std::string problem = argsProblem(args);
  if (!problem.empty()) return invalidArgument("invalid arguments: " + problem);
  if (args.collective == Collective::kSend || args.collective == Collective::kRecv) {
    return invalidArgument("send/recv schedules differ per rank: use verifyPointToPoint");
  }
  if (s.ranks.size() != static_cast<size_t>(args.nranks)) {
    return invalidArgument("the schedule has " + std::to_string(s.ranks.size()) +
                           " ranks, nranks is " + std::to_string(args.nranks));
  }
  model->nranks = args.nranks;
  model->ranks.resize(s.ranks.size());
  for (int r = 0; r < args.nranks; ++r) {
    initRank(r, args, &s.ranks[r], &model->ranks[r]);
  }
  return Status::ok();
}

// The call rank r's peer must make to answer calls[r].
Status checkPairing(std::span<const std::optional<PeerCall>> calls, int r) {
  const CollectiveArgs& a = calls[r]->args;
  const int n = static_cast<int>(calls.size());
  const std::string who = "rank " + std::to_string(r) + " (" + collectiveName(a.collective) +
                          " peer " + std::to_string(a.peer) + " count " + std::to_string(a.count) +
                          ")";
  if (a.collective != Collective::kSend && a.collective != Collective::kRecv) {
    return invalidArgument(who + " is not a send or recv");
  }
  if (a.nranks != n) {
    return invalidArgument(who + " has nranks " + std::to_string(a.nranks) + " but there are " +
                           std::to_string(n) + " calls");
  }
  const std::string problem = argsProblem(a);
  if (!problem.empty()) return invalidArgument(who + ": " + problem);
  if (a.peer == r) return invalidArgument(who + " is its own peer");
  const std::optional<PeerCall>& other = calls[a.peer];
  const Collective answer =
      a.collective == Collective::kSend ? Collective::kRecv : Collective::kSend;
  if (!other || other->args.collective != answer || other->args.peer != r ||
      other->args.count != a.count) {
    return invalidArgument(who + " is not answered: rank " + std::to_string(a.peer) +
                           " must call " + collectiveName(answer) + " peer " + std::to_string(r) +
                           " count " + std::to_string(a.count));
  }
  return Status::ok();
}

Status buildPointToPointModel(std::span<const std::optional<PeerCall>> calls, Model* model) {
  if (calls.empty()) return invalidArgument("no ranks");
  model->nranks = static_cast<int>(calls.size());
  model->ranks.resize(calls.size());
  for (int r = 0; r < model->nranks; ++r) {
    if (!calls[r]) {
      initIdleRank(r, &model->ranks[r]);
      continue;
    }
    LOOM_RETURN_IF_ERROR(checkPairing(calls, r));
    initRank(r, calls[r]->args, &calls[r]->schedule, &model->ranks[r]);
  }
  return Status::ok();
}

Status verifyModel(const Model& model, const VerifyOptions& options) {
  LOOM_RETURN_IF_ERROR(checkSteps(model));
  LOOM_RETURN_IF_ERROR(checkChannelsDisjoint(model));
  Graph graph;
  LOOM_RETURN_IF_ERROR(buildGraph(model, &graph));
  LOOM_RETURN_IF_ERROR(checkValues(model, graph));
  if (options.requireInOrderProgress) {
    LOOM_RETURN_IF_ERROR(runGraph(model, graph, Progress::kInOrderBuffered, nullptr));
  }
  if (options.requireUnbufferedProgress) {
    LOOM_RETURN_IF_ERROR(runGraph(model, graph, Progress::kDataflowUnbuffered, nullptr));
  }
  return Status::ok();
}

}  // namespace
}  // namespace verify_detail

Status verifySchedule(const Schedule& s, const VerifyOptions& options) {
  verify_detail::Model model;
  model.label = verify_detail::collectiveLabel(s);
  Status status = verify_detail::buildCollectiveModel(s, &model);
  if (status.isOk()) status = verify_detail::verifyModel(model, options);
  return status.withContext(model.label);
}

Status verifyPointToPoint(std::span<const std::optional<PeerCall>> calls,
                          const VerifyOptions& options) {
  verify_detail::Model model;
  model.label = "send/recv nranks " + std::to_string(calls.size());
  Status status = verify_detail::buildPointToPointModel(calls, &model);
  if (status.isOk()) status = verify_detail::verifyModel(model, options);
  return status.withContext(model.label);
}

}  // namespace loom::algo
