#include "runtime/group.h"

#include <algorithm>
#include <map>
#include <vector>

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

// Per communicator: stream 0 = collectives in order, stream 1 = all Send/Recv as one unit.
using Organised = std::map<Communicator*, std::vector<std::deque<Unit>>>;

Organised organise(std::vector<Recorded> ops) {
  Organised plan;
  for (Recorded& r : ops) {
    std::vector<std::deque<Unit>>& streams = plan[r.comm];
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
                                 [](const std::deque<Unit>& s) { return s.empty(); }),
                  streams.end());
  return plan;
}

Status runBlocking(Organised plan) {
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
    for (std::deque<Unit>& units : streams) {
      all.emplace_back();
      all.back().comm = comm;
      all.back().units = std::move(units);
    }
  return drive(&all);
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
  return runBlocking(organise({{comm, op}}));
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
  auto work = std::make_shared<WorkState>(static_cast<int>(plan.size()));
  if (plan.empty()) {
    auto done = std::make_shared<WorkState>(1);
    done->complete(Status::ok());
    return done;
  }
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
