#include "runtime/executor.h"

#include <algorithm>
#include <cstring>

#include "base/reduce.h"

namespace loom::runtime {

using algo::Step;
using algo::StepKind;

std::string OpLabel::toString() const {
  if (nops > 1) return "group of " + std::to_string(nops) + " send/recv operations";
  std::string s = std::string(algo::collectiveName(collective)) + " #" + std::to_string(seq) +
                  " (" + std::to_string(count) + " x " + dataTypeName(dtype);
  if (algo::isReduction(collective)) s += std::string(", ") + redOpName(op);
  if (algorithm && *algorithm) s += std::string(", ") + algorithm;
  return s + ")";
}

Execution::Execution(ExecParams params, std::vector<Program> programs, LaneProvider lanes)
    : params_(std::move(params)), programs_(std::move(programs)), laneProvider_(std::move(lanes)) {
  state_.resize(programs_.size());
  firstUnposted_.assign(programs_.size(), 0);
  for (size_t p = 0; p < programs_.size(); ++p) {
    state_[p].resize(programs_[p].channel->steps.size());
    remainingSteps_ += programs_[p].channel->steps.size();
  }
}

Execution::~Execution() = default;

std::byte* Execution::at(size_t p, const algo::Region& r, uint64_t elemOffset) const {
  std::byte* base = programs_[p].buffers[static_cast<int>(r.buffer)];
  if (base == nullptr) return nullptr;
  return base + (r.offset + elemOffset) * params_.elemBytes;
}

Result<Execution::Lane*> Execution::laneFor(int peer, int lane, bool send) {
  for (Lane* l : lanes_)
    if (l->peer == peer && l->lane == lane && l->send == send) return l;
  LOOM_ASSIGN_OR_RETURN(Lane * l, laneProvider_(peer, lane, send));
  LOOM_CHECK(l->inflight.empty(), "a lane still has slices of an earlier execution in flight");
  l->blockedThisPass = false;
  lanes_.push_back(l);
  return l;
}

bool Execution::dependenciesMet(size_t p, size_t i, uint32_t slice) const {
  const ChannelPlan& ch = *programs_[p].channel;
  const StepPlan& sp = ch.steps[i];
  if (sp.deps.empty()) return true;
  RegionUse mine[3];
  regionsOf(sp.step, mine);
  const uint64_t lo = static_cast<uint64_t>(slice) * sp.sliceElems;
  for (const Dependency& d : sp.deps) {
    const StepPlan& jp = ch.steps[d.step];
    const StepState& js = state_[p][d.step];
    if (js.completed == jp.nslices) continue;
    if (d.whole) return false;
    RegionUse theirs[3];
    regionsOf(jp.step, theirs);
    const algo::Region& m = mine[d.mine].region;
    const algo::Region& t = theirs[d.theirs].region;
    const uint64_t sliceLo = m.offset + lo;
    const uint64_t sliceHi = std::min(sliceLo + sp.sliceElems, m.end());
    const uint64_t olo = std::max(sliceLo, t.offset);
    const uint64_t ohi = std::min(sliceHi, t.end());
    if (olo >= ohi) continue;
    const uint64_t doneEnd =
        t.offset + std::min<uint64_t>(static_cast<uint64_t>(js.completed) * jp.sliceElems, t.count);
    if (doneEnd < ohi) return false;
  }
  return true;
}

void Execution::finalizeSlice(const Step& step, std::byte* dst, uint64_t count) {
  if (step.finalize && params_.op == RedOpKind::kAvg && params_.divisor > 1)
    divideInPlace(params_.dtype, dst, count, params_.divisor);
}

void Execution::runLocalSlice(size_t p, size_t i) {
  const StepPlan& sp = programs_[p].channel->steps[i];
  const Step& s = sp.step;
  const uint64_t lo = static_cast<uint64_t>(state_[p][i].posted) * sp.sliceElems;
  const uint64_t n = std::min(sp.sliceElems, s.count() - std::min(s.count(), lo));
  if (n == 0) return;
  std::byte* dst = at(p, s.dst, lo);
  if (s.kind == StepKind::kCopy) {
    const std::byte* src = at(p, s.src, lo);
    if (src != dst) std::memmove(dst, src, n * params_.elemBytes);
  } else {
    reduce2(params_.dtype, params_.op, dst, at(p, s.src, lo), at(p, s.src2, lo), n);
  }
  finalizeSlice(s, dst, n);
}

Status Execution::postSlice(size_t p, size_t i, Lane* lane) {
  const Program& prog = programs_[p];
  const StepPlan& sp = prog.channel->steps[i];
  const Step& s = sp.step;
  const uint32_t slice = state_[p][i].posted;
  const uint64_t lo = static_cast<uint64_t>(slice) * sp.sliceElems;
  const uint64_t n = std::min(sp.sliceElems, s.count() - std::min(s.count(), lo));
  const size_t bytes = n * params_.elemBytes;
  PostedSlice rec{static_cast<uint32_t>(p), static_cast<uint32_t>(i), slice, 0, -1, bytes == 0};
  if (s.kind == StepKind::kSend) {
    rec.ordinal = lane->conn->sendsPosted();
    LOOM_RETURN_IF_ERROR(lane->conn->postSend(n ? at(p, s.src, lo) : nullptr, bytes, prog.tag));
  } else if (s.kind == StepKind::kRecv) {
    rec.ordinal = lane->conn->recvsPosted();
    LOOM_RETURN_IF_ERROR(lane->conn->postRecv(n ? at(p, s.dst, lo) : nullptr, bytes, prog.tag));
  } else {  // kRecvReduce: land in a staging slot, combine on completion
    lane->ensureStaging(params_.pipelineDepth, params_.sliceBytes);
    rec.staging = lane->freeStaging.back();
    lane->freeStaging.pop_back();
    rec.ordinal = lane->conn->recvsPosted();
    LOOM_RETURN_IF_ERROR(lane->conn->postRecv(lane->stagingSlot(rec.staging), bytes, prog.tag));
  }
  lane->inflight.push_back(rec);
  ++state_[p][i].posted;
  return Status::ok();
}

void Execution::finishSlice(size_t p, size_t i) {
  StepState& st = state_[p][i];
  ++st.completed;
  if (st.completed == programs_[p].channel->steps[i].nslices) --remainingSteps_;
}

Status Execution::postReady(size_t p, bool* progressed) {
  const ChannelPlan& ch = *programs_[p].channel;
  std::vector<StepState>& states = state_[p];
  size_t& first = firstUnposted_[p];
  while (first < ch.steps.size() && states[first].posted == ch.steps[first].nslices)
    ++first;
  for (size_t i = first; i < ch.steps.size(); ++i) {
    const StepPlan& sp = ch.steps[i];
    StepState& st = states[i];
    if (st.posted == sp.nslices) continue;
    if (!isNetworkStep(sp.step.kind)) {
      while (st.posted < sp.nslices && dependenciesMet(p, i, st.posted)) {
        runLocalSlice(p, i);
        ++st.posted;
        finishSlice(p, i);
        *progressed = true;
      }
      continue;
    }
    const bool send = sp.step.kind == StepKind::kSend;
    LOOM_ASSIGN_OR_RETURN(Lane * lane, laneFor(sp.step.peer, programs_[p].lane, send));
    if (lane->blockedThisPass) continue;  // an earlier step still owes messages on this lane
    while (st.posted < sp.nslices &&
           lane->inflight.size() < static_cast<size_t>(params_.pipelineDepth) &&
           dependenciesMet(p, i, st.posted)) {
      LOOM_RETURN_IF_ERROR(postSlice(p, i, lane));
      *progressed = true;
    }
    if (st.posted < sp.nslices) lane->blockedThisPass = true;
  }
  return Status::ok();
}

Status Execution::reapCompletions(Lane* lane, bool* progressed) {
  const uint64_t completed =
      lane->send ? lane->conn->sendsCompleted() : lane->conn->recvsCompleted();
  // A zero-byte send is eager (schedule.h): it never waits for its receive, only for the sends
  // before it, so a fence after it cannot deadlock against a rendezvous transport.
  while (!lane->inflight.empty() && (lane->inflight.front().ordinal < completed ||
                                     (lane->send && lane->inflight.front().empty))) {
    PostedSlice rec = lane->inflight.front();
    lane->inflight.pop_front();
    const StepPlan& sp = programs_[rec.program].channel->steps[rec.step];
    const Step& s = sp.step;
    const uint64_t lo = static_cast<uint64_t>(rec.slice) * sp.sliceElems;
    const uint64_t n = std::min(sp.sliceElems, s.count() - std::min(s.count(), lo));
    if (lane->send) {
      bytesSent_ += n * params_.elemBytes;
    } else {
      bytesRecv_ += n * params_.elemBytes;
      if (s.kind == StepKind::kRecvReduce) {
        const std::byte* staged = lane->stagingSlot(rec.staging);
        std::byte* dst = at(rec.program, s.dst, lo);
        if (n) reduce2(params_.dtype, params_.op, dst, at(rec.program, s.src, lo), staged, n);
        lane->freeStaging.push_back(rec.staging);
        finalizeSlice(s, dst, n);
      } else if (n) {
        finalizeSlice(s, at(rec.program, s.dst, lo), n);
      }
    }
    finishSlice(rec.program, rec.step);
    *progressed = true;
  }
  if (completed != lane->completedMessages) {
    lane->completedMessages = completed;
    lane->lastCompletionNs = nowCoarseNs();  // only reported (stallReport)
  }
  return Status::ok();
}

Status Execution::progress(bool* progressed) {
  *progressed = false;
  for (auto& l : lanes_)
    l->blockedThisPass = false;
  for (size_t p = 0; p < programs_.size() && !done(); ++p)
    LOOM_RETURN_IF_ERROR(postReady(p, progressed));
  // Drive each connection once (send and receive lanes may share one), then reap.
  for (size_t k = 0; k < lanes_.size(); ++k) {
    bool seen = false;
    for (size_t j = 0; j < k && !seen; ++j)
      seen = lanes_[j]->conn == lanes_[k]->conn;
    if (!seen) {
      Status s = lanes_[k]->conn->progress();
      if (!s.isOk()) return s.withContext(params_.label.toString());
    }
  }
  for (Lane* l : lanes_)
    LOOM_RETURN_IF_ERROR(reapCompletions(l, progressed));
  return Status::ok();
}

std::string Execution::lastHeard(int peer, int lane) const {
  for (const Lane* l : lanes_) {
    if (l->send || l->peer != peer || l->lane != lane) continue;
    if (l->lastCompletionNs == 0)
      return "nothing received from rank " + std::to_string(peer) + " on lane " +
             std::to_string(lane) + " yet";
    return "last message from rank " + std::to_string(peer) + " (#" +
           std::to_string(l->completedMessages) + " on lane " + std::to_string(lane) + ") " +
           std::to_string((nowCoarseNs() - l->lastCompletionNs) / 1000000) + " ms ago";
  }
  return "nothing received from rank " + std::to_string(peer) + " in this operation";
}

std::string Execution::stallReport(const std::function<std::string(int)>& describePeer) const {
  std::string out;
  for (size_t p = 0; p < programs_.size(); ++p) {
    const ChannelPlan& ch = *programs_[p].channel;
    for (size_t i = 0; i < ch.steps.size(); ++i) {
      const StepState& st = state_[p][i];
      if (st.completed == ch.steps[i].nslices) continue;
      const Step& s = ch.steps[i].step;
      if (!out.empty()) out += "; ";
      out += "lane " + std::to_string(programs_[p].lane) + " step " + std::to_string(i + 1) + "/" +
             std::to_string(ch.steps.size()) + " (" + algo::stepKindName(s.kind);
      if (isNetworkStep(s.kind))
        out += (s.kind == StepKind::kSend ? " to " : " from ") +
               (describePeer ? describePeer(s.peer) : "rank " + std::to_string(s.peer));
      out += "): " + std::to_string(st.completed) + " of " + std::to_string(ch.steps[i].nslices) +
             " slices done, " + std::to_string(st.posted) + " posted";
      if (isNetworkStep(s.kind)) out += "; " + lastHeard(s.peer, programs_[p].lane);
      break;
    }
  }
  return out.empty() ? "nothing pending" : out;
}

}  // namespace loom::runtime
