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
  std::lock_guard<std::mutex> lock(comm->engineMutex());
  std::vector<Stream> stream(1);
  stream[0].comm = comm;
  stream[0].units.emplace_back();
  stream[0].units[0].ops.push_back(op);
  return drive(&stream);
}

}  // namespace

Status submit(Communicator* comm, OpDesc op) {
  LOOM_RETURN_IF_ERROR(comm->asyncError());
  if (isP2p(op))
    op.seq = comm->nextP2pSeq(op.peer, op.collective == algo::Collective::kSend);
  else
    op.seq = comm->nextCollectiveSeq();
  if (tGroup.depth > 0) {
    tGroup.ops.push_back({comm, op});
    return Status::ok();
  }
  return runOne(comm, op);
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
  return runBlocking(organise(std::move(ops)));
}

Result<std::shared_ptr<WorkState>> groupEndAsync() {
  if (tGroup.depth == 0) return invalidUsage("loomGroupEndAsync without a matching loomGroupStart");
  if (tGroup.depth > 1)
    return invalidUsage("loomGroupEndAsync must close the outermost group (depth " +
                        std::to_string(tGroup.depth) + ")");
  tGroup.depth = 0;
  Organised plan = organise(std::move(tGroup.ops));
  tGroup.ops.clear();
  LOOM_RETURN_IF_ERROR(checkPlan(plan));
  // Zero parts (an empty group) is a work that is already complete.
  auto work = std::make_shared<WorkState>(static_cast<int>(plan.size()));
  for (auto& [comm, streams] : plan)
    comm->enqueue(std::move(streams), work);
  return work;
}

void forgetGroupOps(Communicator* comm) {
  auto& ops = tGroup.ops;
  ops.erase(
      std::remove_if(ops.begin(), ops.end(), [comm](const Recorded& r) { return r.comm == comm; }),
      ops.end());
}

}  // namespace loom::runtime
