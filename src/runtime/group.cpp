#include "runtime/group.h"

#include <algorithm>
#include <map>
#include <vector>

#include "runtime/check.h"
#include "runtime/driver.h"

namespace loom::runtime {

namespace {

struct Recorded {
  Communicator* comm;
  OpDesc op;
  std::shared_ptr<cuda::StreamStage> stage;  // device operations only
};

struct GroupState {
  int depth = 0;
  std::vector<Recorded> ops;
};

thread_local GroupState tGroup;

bool isP2p(const OpDesc& op) {
  return op.collective == algo::Collective::kSend || op.collective == algo::Collective::kRecv;
}

// Per communicator: its collectives in order on one stream, all its Send/Recv as one unit on
// another (group.h).
using Organised = std::map<Communicator*, std::vector<std::vector<Unit>>>;

Organised organise(std::vector<Recorded> ops) {
  Organised plan;
  for (Recorded& r : ops) {
    std::vector<std::vector<Unit>>& streams = plan[r.comm];
    if (streams.empty()) streams.resize(2);
    if (isP2p(r.op)) {
      if (streams[1].empty()) streams[1].emplace_back();
      streams[1].front().ops.push_back(r.op);
    } else {
      streams[0].emplace_back();
      streams[0].back().ops.push_back(r.op);
    }
  }
  for (auto& [comm, streams] : plan)
    streams.erase(std::remove_if(streams.begin(), streams.end(),
                                 [](const std::vector<Unit>& s) { return s.empty(); }),
                  streams.end());
  return plan;
}

// LOOM_CHECK (check.h): the collectives of every communicator in the plan.
Status checkPlan(const Organised& plan) {
  std::vector<CheckedOps> items;
  for (const auto& [comm, streams] : plan) {
    if (!comm->config().check) continue;
    items.push_back({comm, {}});
    for (const std::vector<Unit>& units : streams)
      for (const Unit& u : units)
        if (!u.isP2p())
          for (const OpDesc& op : u.ops)
            items.back().ops.push_back(&op);
  }
  return items.empty() ? Status::ok() : checkCollectives(items);
}

using Stages = std::map<Communicator*, std::vector<std::shared_ptr<cuda::StreamStage>>>;

// A group with device operations: every communicator's part goes to its worker, which waits
// for the streams first. Returns when host operations in the group are done (they are
// blocking); device operations complete on their streams.
Status runStaged(Organised plan, Stages stages, bool hostOps) {
  LOOM_RETURN_IF_ERROR(checkPlan(plan));
  auto work = std::make_shared<WorkState>(static_cast<int>(plan.size()));
  for (auto& [comm, streams] : plan)
    comm->enqueue(std::move(streams), work, std::move(stages[comm]));
  return hostOps ? work->wait(Deadline::never()) : Status::ok();
}

Status runBlocking(Organised plan) {
  LOOM_RETURN_IF_ERROR(checkPlan(plan));
  bool allIdle = true;
  for (auto& [comm, streams] : plan)
    allIdle = allIdle && comm->idle();
  if (!allIdle) {
    auto work = std::make_shared<WorkState>(static_cast<int>(plan.size()));
    for (auto& [comm, streams] : plan)
      comm->enqueue(std::move(streams), work);
    return work->wait(Deadline::never());
  }
  // std::map orders communicators by address: a consistent lock order.
  std::vector<std::unique_lock<std::mutex>> locks;
  for (auto& [comm, streams] : plan)
    locks.emplace_back(comm->engineMutex());
  std::vector<Stream> all;
  for (auto& [comm, streams] : plan)
    for (std::vector<Unit>& units : streams) {
      all.emplace_back();
      all.back().comm = comm;
      all.back().units = std::move(units);
    }
  return drive(&all);
}

// One operation outside a group: the common case, without the group bookkeeping.
Status runOne(Communicator* comm, const OpDesc& op) {
  if (comm->config().check && !isP2p(op)) LOOM_RETURN_IF_ERROR(checkCollectives({{comm, {&op}}}));
  if (!comm->idle()) {
    std::vector<std::vector<Unit>> streams(1);
    streams[0].emplace_back();
    streams[0][0].ops.push_back(op);
    auto work = std::make_shared<WorkState>(1);
    comm->enqueue(std::move(streams), work);
    return work->wait(Deadline::never());
  }
  return comm->runNow(op);
}

}  // namespace

// Takes the operation's sequence number; inside a group records it (true).
static bool numberAndRecord(Communicator* comm, OpDesc* op,
                            std::shared_ptr<cuda::StreamStage>* stage) {
  if (isP2p(*op))
    op->seq = comm->nextP2pSeq(op->peer, op->collective == algo::Collective::kSend);
  else
    op->seq = comm->nextCollectiveSeq();
  if (tGroup.depth == 0) return false;
  tGroup.ops.push_back({comm, *op, std::move(*stage)});
  return true;
}

Status submit(Communicator* comm, OpDesc op) {
  LOOM_RETURN_IF_ERROR(comm->asyncError());
  std::shared_ptr<cuda::StreamStage> none;
  if (numberAndRecord(comm, &op, &none)) return Status::ok();
  return runOne(comm, op);
}

Status submitStaged(Communicator* comm, OpDesc op, std::unique_ptr<cuda::StreamStage> stage) {
  LOOM_RETURN_IF_ERROR(comm->asyncError());
  std::shared_ptr<cuda::StreamStage> shared = std::move(stage);
  if (numberAndRecord(comm, &op, &shared)) return Status::ok();
  if (comm->config().check && !isP2p(op)) LOOM_RETURN_IF_ERROR(checkCollectives({{comm, {&op}}}));
  LOOM_RETURN_IF_ERROR(shared->finishOnStream());
  std::vector<std::vector<Unit>> streams(1);
  streams[0].emplace_back();
  streams[0][0].ops.push_back(op);
  std::vector<std::shared_ptr<cuda::StreamStage>> stages;
  stages.push_back(std::move(shared));
  comm->enqueue(std::move(streams), std::make_shared<WorkState>(1), std::move(stages));
  return Status::ok();
}

Status submitDeviceIpc(Communicator* comm, OpDesc op, int device,
                       std::unique_ptr<cuda::StreamStage> stage) {
  LOOM_RETURN_IF_ERROR(comm->asyncError());
  DeviceIpc* ipc = comm->deviceIpc();
  if (!ipc) return internalError("submitDeviceIpc without the CUDA IPC path");
  op.seq = comm->reserveCollectiveSeqs(ipc->seqsFor(op, device));
  if (comm->config().check) LOOM_RETURN_IF_ERROR(checkCollectives({{comm, {&op}}}));
  std::shared_ptr<cuda::StreamStage> shared = std::move(stage);
  LOOM_RETURN_IF_ERROR(shared->finishOnStream());
  comm->enqueueDeviceIpc(op, device, std::move(shared), std::make_shared<WorkState>(1));
  return Status::ok();
}

// Splits the device operations' stages out of a recorded group, after ordering the second
// half of each on its stream (StreamStage::finishOnStream), in issue order. *any: whether
// there were device operations.
static Status takeStages(std::vector<Recorded>* ops, Stages* stages, bool* hostOps, bool* any) {
  *any = false;
  *hostOps = false;
  for (Recorded& r : *ops) {
    if (r.stage) {
      *any = true;
      LOOM_RETURN_IF_ERROR(r.stage->finishOnStream());
      (*stages)[r.comm].push_back(std::move(r.stage));
    } else {
      *hostOps = true;
    }
  }
  return Status::ok();
}

void groupStart() {
  ++tGroup.depth;
}

int groupDepth() {
  return tGroup.depth;
}

Status groupEnd() {
  if (tGroup.depth == 0) return invalidUsage("loomGroupEnd without a matching loomGroupStart");
  if (--tGroup.depth > 0) return Status::ok();
  std::vector<Recorded> ops = std::move(tGroup.ops);
  tGroup.ops.clear();
  if (ops.empty()) return Status::ok();
  Stages stages;
  bool hostOps = false, device = false;
  LOOM_RETURN_IF_ERROR(takeStages(&ops, &stages, &hostOps, &device));
  if (device) return runStaged(organise(std::move(ops)), std::move(stages), hostOps);
  return runBlocking(organise(std::move(ops)));
}

Result<std::shared_ptr<WorkState>> groupEndAsync() {
  if (tGroup.depth == 0) return invalidUsage("loomGroupEndAsync without a matching loomGroupStart");
  if (tGroup.depth > 1)
    return invalidUsage("loomGroupEndAsync must close the outermost group (depth " +
                        std::to_string(tGroup.depth) + ")");
  tGroup.depth = 0;
  std::vector<Recorded> ops = std::move(tGroup.ops);
  tGroup.ops.clear();
  Stages stages;
  bool hostOps = false, device = false;
  LOOM_RETURN_IF_ERROR(takeStages(&ops, &stages, &hostOps, &device));
  Organised plan = organise(std::move(ops));
  LOOM_RETURN_IF_ERROR(checkPlan(plan));
  // Zero parts (an empty group) is a work that is already complete.
  auto work = std::make_shared<WorkState>(static_cast<int>(plan.size()));
  for (auto& [comm, streams] : plan)
    comm->enqueue(std::move(streams), work, std::move(stages[comm]));
  return work;
}

void forgetGroupOps(Communicator* comm) {
  auto& ops = tGroup.ops;
  ops.erase(
      std::remove_if(ops.begin(), ops.end(), [comm](const Recorded& r) { return r.comm == comm; }),
      ops.end());
}

}  // namespace loom::runtime
