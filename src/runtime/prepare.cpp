// Communicator::prepare: from an OpDesc to a ready Execution (algorithm, plan, buffers, tags).
#include <algorithm>
#include <cstring>

#include "base/hash.h"
#include "base/log.h"
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
  return hashCombine(hashCombine(hashCombine(mix64(a), b), c), d);
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

namespace {

OpLabel labelOf(const OpDesc& op, const char* algorithm) {
  OpLabel l;
  l.collective = op.collective;
  l.seq = op.seq;
  l.count = op.count;
  l.dtype = op.dtype;
  l.op = op.op.kind;
  l.algorithm = algorithm;
  return l;
}

}  // namespace

Result<std::unique_ptr<PreparedUnit>> Communicator::prepare(Unit unit) {
  auto pu = std::make_unique<PreparedUnit>();
  pu->unit = std::move(unit);
  if (pu->unit.isP2p()) {
    LOOM_RETURN_IF_ERROR(prepareP2p(pu.get()));
  } else {
    LOOM_RETURN_IF_ERROR(prepareCollective(pu->unit.ops[0], pu.get()));
  }
  pu->timeoutMs = config().timeoutMs;  // the driver starts the deadline (PreparedUnit)
  return pu;
}

void Communicator::logChoice(const algo::CollectiveArgs& args, const algo::Choice& choice) {
  const uint64_t key =
      hashCombine(hashCombine(static_cast<uint64_t>(args.collective), choice.bytes),
                  hashCombine(reinterpret_cast<uintptr_t>(choice.algorithm), args.inPlace ? 1 : 0));
  if (!loggedChoices_.insert(key).second) return;
  std::string others;
  for (const algo::Algorithm* a : algo::algorithmsFor(args.collective)) {
    if (a == choice.algorithm || !a->supports(args)) continue;
    const double us = algo::predictUs(*a, args, choice.bytes, costModel_, planTopology_);
    if (us >= 0) others += " " + std::string(a->name()) + "=" + std::to_string(us);
  }
  LOOM_LOG(kInfo, kTuning) << algo::collectiveName(args.collective) << " " << choice.bytes
                           << " B on " << nranks() << " ranks (" << planTopology_.nhosts
                           << " host(s)" << (planTopology_.oversubscribed ? ", oversubscribed" : "")
                           << "): " << choice.algorithm->name()
                           << (choice.overridden ? " (LOOM_ALGO)" : "")
                           << (choice.measured ? " (measured, LOOM_TUNING_FILE)" : "")
                           << ", predicted " << choice.predictedUs
                           << " us; others (us):" << (others.empty() ? " none" : others);
}

Status Communicator::choose(const OpDesc& op, size_t elemBytes, bool preMul,
                            algo::CollectiveArgs* args, const algo::Algorithm** algorithm,
                            std::shared_ptr<const Plan>* plan) {
  args->collective = op.collective;
  args->count = op.count;
  args->nranks = nranks();
  args->root = op.root;
  args->inPlace = !preMul && isInPlace(op, rank(), elemBytes);  // a scaled copy is an input
  args->nchannels = config().nchannels > 0 ? static_cast<int>(config().nchannels) : 1;
  args->windowBytes = windowBytes();
  // A repeated call (training loops and benchmarks repeat a few calls) skips the planner and
  // the plan cache, which cost ~0.2 us per call between them: everything else they depend on
  // (overrides, cost model, topology, slice size) is fixed for the communicator's life.
  ChoiceMemo& memo =
      memo_[hashCombine(mix64(args->count), static_cast<uint64_t>(args->collective)) % kMemoSlots];
  if (memo.algorithm != nullptr && memo.collective == args->collective &&
      memo.count == args->count && memo.root == args->root && memo.inPlace == args->inPlace &&
      memo.nchannels == args->nchannels && memo.elemBytes == elemBytes) {
    *algorithm = memo.algorithm;
    *plan = memo.plan;
    return Status::ok();
  }
  args->hosts = hostLayout_;
  algo::Choice choice;
  LOOM_ASSIGN_OR_RETURN(*algorithm, algo::chooseAlgorithm(*args, elemBytes, overrides_, costModel_,
                                                          planTopology_, &choice));
  if (log::enabled(LogLevel::kInfo, Subsys::kTuning)) logChoice(*args, choice);
  // Through the host window an algorithm runs no schedule (and needs no scratch).
  plan->reset();
  if (!algo::runsInWindow(**algorithm, *args)) {
    LOOM_ASSIGN_OR_RETURN(*plan, plans_.get(**algorithm, *args, rank(), elemBytes,
                                            static_cast<size_t>(config().sliceBytes)));
  }
  memo = ChoiceMemo{args->collective, args->count, args->root, args->inPlace,
                    args->nchannels,  elemBytes,   *algorithm, *plan};
  return Status::ok();
}

ExecParams Communicator::execParams(const OpDesc& op, const algo::Algorithm& algorithm,
                                    bool preMul) const {
  ExecParams params;
  params.dtype = op.dtype;
  params.op = preMul ? RedOpKind::kSum : op.op.kind;
  params.divisor = static_cast<uint64_t>(nranks());
  params.elemBytes = dataTypeSize(op.dtype);
  params.pipelineDepth = static_cast<int>(config().pipelineDepth);
  params.sliceBytes =
      std::max<size_t>(params.elemBytes, config().sliceBytes / params.elemBytes * params.elemBytes);
  params.label = labelOf(op, algorithm.name().data());
  return params;
}

namespace {

// Everything but the sequence number equal (PreMulSum, whose scalar may differ, never takes
// the lane).
bool sameCallAgain(const OpDesc& last, const OpDesc& op) {
  return last.collective == op.collective && last.sendbuf == op.sendbuf &&
         last.recvbuf == op.recvbuf && last.count == op.count && last.dtype == op.dtype &&
         last.op.kind == op.op.kind && last.root == op.root && last.internal == op.internal;
}

DirectCall directCall(const OpDesc& op, const algo::Algorithm& algorithm, const void* input) {
  DirectCall call;
  call.collective = op.collective;
  call.twoShot = algorithm.name() == "two_shot";
  call.root = op.root;
  call.input = input;
  call.output = op.recvbuf;
  call.count = op.count;
  call.tag = collectiveTag(op);
  return call;
}

}  // namespace

Status Communicator::prepareCollective(const OpDesc& op, PreparedUnit* out) {
  if (op.count == 0 && op.collective != Collective::kBarrier) {
    out->trivial = true;  // nothing to move; like NCCL, a zero-count call returns at once
    return Status::ok();
  }
  const size_t elemBytes = dataTypeSize(op.dtype);
  const bool preMul = op.op.kind == RedOpKind::kPreMulSum && algo::isReduction(op.collective);
  algo::CollectiveArgs args;
  const algo::Algorithm* algorithm = nullptr;
  std::shared_ptr<const Plan> plan;
  LOOM_RETURN_IF_ERROR(choose(op, elemBytes, preMul, &args, &algorithm, &plan));
  const size_t planScratch = plan ? plan->scratchCount * elemBytes : 0;
  const size_t inputBytes = algo::inputCount(args, rank()) * elemBytes;
  std::byte* arena = scratch(planScratch + (preMul ? inputBytes : 0));
  const void* input = op.sendbuf;
  if (preMul) {
    std::byte* scaled = arena + planScratch;
    const void* scalar = op.op.scalarAt ? op.op.scalarAt : op.op.scalar;
    scale(op.dtype, scaled, op.sendbuf, scalar, algo::inputCount(args, rank()));
    input = scaled;
  }
  ExecParams params = execParams(op, *algorithm, preMul);
  if (!plan) {
    out->execution = std::make_unique<DirectExecution>(std::move(params), window_.get(),
                                                       directCall(op, *algorithm, input));
    return Status::ok();
  }
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
  out->execution =
      std::make_unique<Execution>(std::move(params), std::move(programs), laneProvider());
  return Status::ok();
}

PreparedUnit* Communicator::prepareInWindow(const OpDesc& op) {
  if (!window_ || op.count == 0 || op.collective == Collective::kSend ||
      op.collective == Collective::kRecv || op.collective == Collective::kBarrier)
    return nullptr;
  const bool preMul = op.op.kind == RedOpKind::kPreMulSum && algo::isReduction(op.collective);
  if (preMul) return nullptr;  // its scaled input needs the scratch arena: the general path
  PreparedUnit& pu = windowUnit_;
  pu.deadline = Deadline::never();
  pu.deadlineStarted = false;
  // The same call as the last one through this lane (training loops and benchmarks repeat
  // theirs): the choice, parameters and pieces are those of last time; only the sequence
  // number (and so its tag) is new.
  if (pu.execution && sameCallAgain(pu.unit.ops[0], op)) {
    pu.unit.ops[0].seq = op.seq;
    static_cast<DirectExecution&>(*pu.execution).restart(op.seq, collectiveTag(op));
    return &pu;
  }
  algo::CollectiveArgs args;
  const algo::Algorithm* algorithm = nullptr;
  std::shared_ptr<const Plan> plan;
  // A failure to choose is the general path's to report (it chooses the same way).
  if (!choose(op, dataTypeSize(op.dtype), false, &args, &algorithm, &plan).isOk() || plan)
    return nullptr;
  if (pu.unit.ops.empty())
    pu.unit.ops.push_back(op);
  else
    pu.unit.ops[0] = op;
  pu.timeoutMs = config().timeoutMs;
  ExecParams params = execParams(op, *algorithm, false);
  const DirectCall call = directCall(op, *algorithm, op.sendbuf);
  if (!pu.execution)
    pu.execution = std::make_unique<DirectExecution>(std::move(params), window_.get(), call);
  else
    static_cast<DirectExecution&>(*pu.execution).reset(std::move(params), call);
  return &pu;
}

namespace {

std::pair<const std::byte*, const std::byte*> p2pRange(const OpDesc& op) {
  const auto* p =
      static_cast<const std::byte*>(op.collective == Collective::kSend ? op.sendbuf : op.recvbuf);
  return {p, p + op.count * dataTypeSize(op.dtype)};
}

bool overlaps(const OpDesc& a, const OpDesc& b) {
  if (a.count == 0 || b.count == 0) return false;
  auto [lo, hi] = p2pRange(a);
  auto [olo, ohi] = p2pRange(b);
  return lo < ohi && olo < hi;
}

// Operations of one unit run concurrently. Two receives into overlapping memory have no
// meaningful result, so they are rejected. A send whose buffer a receive of the same group
// overwrites (nccl-tests' in-place sendrecv does this) sends the buffer's contents as they were
// when the group started: such sends are snapshotted into memory the unit owns. Sends may share
// buffers freely.
Status resolveP2pOverlap(PreparedUnit* unit) {
  std::vector<OpDesc>& ops = unit->unit.ops;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].collective != Collective::kRecv) continue;
    for (size_t j = i + 1; j < ops.size(); ++j)
      if (ops[j].collective == Collective::kRecv && overlaps(ops[i], ops[j]))
        return invalidArgument("receive from rank " + std::to_string(ops[i].peer) +
                               " overlaps the buffer of the receive from rank " +
                               std::to_string(ops[j].peer) +
                               " in the same group; use distinct buffers");
  }
  for (OpDesc& send : ops) {
    if (send.collective != Collective::kSend) continue;
    const bool clobbered = std::any_of(ops.begin(), ops.end(), [&](const OpDesc& op) {
      return op.collective == Collective::kRecv && overlaps(op, send);
    });
    if (!clobbered) continue;
    const size_t bytes = send.count * dataTypeSize(send.dtype);
    unit->owned.emplace_back(new std::byte[bytes]);
    std::memcpy(unit->owned.back().get(), send.sendbuf, bytes);
    send.sendbuf = unit->owned.back().get();
  }
  return Status::ok();
}

}  // namespace

Status Communicator::prepareP2p(PreparedUnit* out) {
  // Send/Recv move bytes: each operation becomes a byte-count program on the p2p lane, so one
  // group may mix datatypes. Operations with this rank itself pair up locally, in order.
  LOOM_RETURN_IF_ERROR(resolveP2pOverlap(out));
  std::vector<const OpDesc*> selfSends, selfRecvs;
  std::vector<Program> programs;
  OpLabel label;
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
    if (programs.size() == 1) label = labelOf(op, "");
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
  params.label = label;
  params.label.nops = out->unit.ops.size();
  out->execution =
      std::make_unique<Execution>(std::move(params), std::move(programs), laneProvider());
  return Status::ok();
}

}  // namespace loom::runtime
