// Communicator::prepare: from an OpDesc to a ready Execution (algorithm, plan, buffers, tags).
#include <cstring>

#include "base/host.h"
#include "base/reduce.h"
#include "runtime/communicator.h"

namespace loom::runtime {

namespace {

using algo::Collective;

// Whether this rank's buffers are in the in-place layout the API defines (algorithms/schedule.h
// aliasOf); the API layer has already rejected overlaps that are not.
bool isInPlace(const OpDesc& op, int rank, size_t elemBytes) {
  const auto* s = static_cast<const std::byte*>(op.sendbuf);
  const auto* r = static_cast<const std::byte*>(op.recvbuf);
  if (s == nullptr || r == nullptr) return false;
  const size_t block = op.count * elemBytes;
  switch (op.collective) {
    case Collective::kAllReduce:
    case Collective::kAllToAll:
      return s == r;
    case Collective::kBroadcast:
    case Collective::kReduce:
      return rank == op.root && s == r;
    case Collective::kAllGather:
      return s == r + rank * block;
    case Collective::kReduceScatter:
      return r == s + rank * block;
    case Collective::kGather:
      return rank == op.root && s == r + op.root * block;
    case Collective::kScatter:
      return rank == op.root && r == s + op.root * block;
    default:
      return false;
  }
}

uint64_t mix(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  uint64_t m[4] = {a, b, c, d};
  return hash64(m, sizeof(m));
}

// Tags (transport.h): a mismatch between what peers run shows up as a tag mismatch on the
// first message. Layout keeps the sequence number readable in error messages.
uint64_t collectiveTag(const OpDesc& op) {
  uint64_t sig = mix(op.count, static_cast<uint64_t>(op.dtype), static_cast<uint64_t>(op.op.kind),
                     static_cast<uint64_t>(op.root));
  return ((op.seq & 0xffffff) << 40) | (static_cast<uint64_t>(op.collective) << 32) |
         (sig & 0xffffffffu);
}

uint64_t p2pTag(uint64_t seq, uint64_t bytes) {
  return (1ull << 63) | ((seq & 0x7fffff) << 40) | (mix(bytes, 0, 0, 0) & 0xffffffffffull);
}

}  // namespace

std::string Communicator::opLabel(const OpDesc& op, const std::string& algorithm) const {
  std::string s = std::string(algo::collectiveName(op.collective)) + " #" + std::to_string(op.seq) +
                  " (" + std::to_string(op.count) + " x " + dataTypeName(op.dtype);
  if (algo::isReduction(op.collective)) s += std::string(", ") + redOpName(op.op.kind);
  if (!algorithm.empty()) s += ", " + algorithm;
  return s + ")";
}

Result<std::unique_ptr<PreparedUnit>> Communicator::prepare(Unit unit) {
  auto pu = std::make_unique<PreparedUnit>();
  pu->unit = std::move(unit);
  if (pu->unit.isP2p()) {
    LOOM_RETURN_IF_ERROR(prepareP2p(pu.get()));
  } else {
    LOOM_RETURN_IF_ERROR(prepareCollective(pu->unit.ops[0], pu.get()));
  }
  pu->deadline = Deadline::afterMs(config().timeoutMs);
  return pu;
}

Status Communicator::prepareCollective(const OpDesc& op, PreparedUnit* out) {
  if (op.count == 0 && op.collective != Collective::kBarrier) {
    out->trivial = true;  // nothing to move; like NCCL, a zero-count call returns at once
    return Status::ok();
  }
  const size_t elemBytes = dataTypeSize(op.dtype);
  algo::CollectiveArgs args;
  args.collective = op.collective;
  args.count = op.count;
  args.nranks = nranks();
  args.root = op.root;
  args.inPlace = isInPlace(op, rank(), elemBytes);
  args.nchannels = config().nchannels > 0 ? static_cast<int>(config().nchannels) : 1;
  const bool preMul = op.op.kind == RedOpKind::kPreMulSum && algo::isReduction(op.collective);
  if (preMul) args.inPlace = false;  // the scaled copy below is a separate input
  LOOM_ASSIGN_OR_RETURN(const algo::Algorithm* algorithm,
                        algo::chooseAlgorithm(args, elemBytes, overrides_));
  LOOM_ASSIGN_OR_RETURN(
      std::shared_ptr<const Plan> plan,
      plans_.get(*algorithm, args, rank(), elemBytes, static_cast<size_t>(config().sliceBytes)));
  const size_t planScratch = plan->scratchCount * elemBytes;
  const size_t inputBytes = algo::inputCount(args, rank()) * elemBytes;
  std::byte* arena = scratch(planScratch + (preMul ? inputBytes : 0));
  const void* input = op.sendbuf;
  if (preMul) {
    std::byte* scaled = arena + planScratch;
    scale(op.dtype, scaled, op.sendbuf, op.op.scalar, algo::inputCount(args, rank()));
    input = scaled;
  }
  ExecParams params;
  params.dtype = op.dtype;
  params.op = preMul ? RedOpKind::kSum : op.op.kind;
  params.divisor = static_cast<uint64_t>(nranks());
  params.elemBytes = elemBytes;
  params.pipelineDepth = static_cast<int>(config().pipelineDepth);
  params.sliceBytes = std::max<size_t>(elemBytes, config().sliceBytes / elemBytes * elemBytes);
  params.label = opLabel(op, plan->algorithm);
  std::vector<Program> programs;
  for (size_t c = 0; c < plan->channels.size(); ++c) {
    Program p;
    p.plan = plan;
    p.channel = &plan->channels[c];
    p.buffers[0] = const_cast<std::byte*>(static_cast<const std::byte*>(input));
    p.buffers[1] = static_cast<std::byte*>(op.recvbuf);
    p.buffers[2] = arena;
    p.lane = static_cast<int>(c);
    p.tag = collectiveTag(op);
    programs.push_back(std::move(p));
  }
  Engine* engine = engine_.get();
  out->execution = std::make_unique<Execution>(
      std::move(params), std::move(programs),
      [engine](int peer, int lane) { return engine->connection(peer, lane); });
  return Status::ok();
}

namespace {

// Receives of one unit run concurrently with its other operations, so a receive buffer that
// overlaps any other operation's buffer would be corrupted mid-transfer (sends may share
// buffers: sending one buffer to several peers is fine).
Status checkP2pOverlap(const std::vector<OpDesc>& ops) {
  auto range = [](const OpDesc& op) {
    const auto* p =
        static_cast<const std::byte*>(op.collective == Collective::kSend ? op.sendbuf : op.recvbuf);
    return std::make_pair(p, p + op.count * dataTypeSize(op.dtype));
  };
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].collective != Collective::kRecv || ops[i].count == 0) continue;
    auto [lo, hi] = range(ops[i]);
    for (size_t j = 0; j < ops.size(); ++j) {
      if (j == i || ops[j].count == 0) continue;
      auto [olo, ohi] = range(ops[j]);
      if (lo < ohi && olo < hi)
        return invalidArgument(
            "receive from rank " + std::to_string(ops[i].peer) + " overlaps the buffer of the " +
            (ops[j].collective == Collective::kSend ? "send to" : "receive from") + " rank " +
            std::to_string(ops[j].peer) + " in the same group; use distinct buffers");
    }
  }
  return Status::ok();
}

}  // namespace

Status Communicator::prepareP2p(PreparedUnit* out) {
  // Send/Recv move bytes: each operation becomes a byte-count program on the p2p lane, so one
  // group may mix datatypes. Operations with this rank itself pair up locally, in order.
  LOOM_RETURN_IF_ERROR(checkP2pOverlap(out->unit.ops));
  std::vector<const OpDesc*> selfSends, selfRecvs;
  std::vector<Program> programs;
  std::string label;
  for (const OpDesc& op : out->unit.ops) {
    const uint64_t bytes = op.count * dataTypeSize(op.dtype);
    const bool send = op.collective == Collective::kSend;
    if (op.peer == rank()) {
      (send ? selfSends : selfRecvs).push_back(&op);
      continue;
    }
    algo::CollectiveArgs args;
    args.collective = op.collective;
    args.count = bytes;
    args.nranks = nranks();
    args.peer = op.peer;
    LOOM_ASSIGN_OR_RETURN(const algo::Algorithm* algorithm,
                          algo::chooseAlgorithm(args, 1, overrides_));
    LOOM_ASSIGN_OR_RETURN(
        std::shared_ptr<const Plan> plan,
        plans_.get(*algorithm, args, rank(), 1, static_cast<size_t>(config().sliceBytes)));
    Program p;
    p.plan = plan;
    p.channel = &plan->channels[0];
    p.buffers[0] = const_cast<std::byte*>(static_cast<const std::byte*>(op.sendbuf));
    p.buffers[1] = static_cast<std::byte*>(op.recvbuf);
    p.lane = kP2pLane;
    p.tag = p2pTag(op.seq, bytes);
    programs.push_back(std::move(p));
    if (label.empty()) label = opLabel(op, "");
  }
  if (selfSends.size() != selfRecvs.size())
    return invalidUsage(std::to_string(selfSends.size()) + " send(s) to self but " +
                        std::to_string(selfRecvs.size()) +
                        " receive(s) from self in one group; they must pair up");
  for (size_t i = 0; i < selfSends.size(); ++i) {
    const uint64_t sb = selfSends[i]->count * dataTypeSize(selfSends[i]->dtype);
    const uint64_t rb = selfRecvs[i]->count * dataTypeSize(selfRecvs[i]->dtype);
    if (sb != rb)
      return invalidArgument("send to self of " + std::to_string(sb) +
                             " bytes paired with a receive from self of " + std::to_string(rb));
    if (sb) std::memmove(selfRecvs[i]->recvbuf, selfSends[i]->sendbuf, sb);
  }
  if (programs.empty()) {
    out->trivial = true;
    return Status::ok();
  }
  ExecParams params;
  params.dtype = DataType::kUint8;
  params.elemBytes = 1;
  params.pipelineDepth = static_cast<int>(config().pipelineDepth);
  params.sliceBytes = static_cast<size_t>(config().sliceBytes);
  params.label = out->unit.ops.size() == 1
                     ? label
                     : "group of " + std::to_string(out->unit.ops.size()) + " send/recv operations";
  Engine* engine = engine_.get();
  out->execution = std::make_unique<Execution>(
      std::move(params), std::move(programs),
      [engine](int peer, int lane) { return engine->connection(peer, lane); });
  return Status::ok();
}

}  // namespace loom::runtime
