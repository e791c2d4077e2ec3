#include "schedule.h"

#include <algorithm>
#include <chrono>
#include <map>

namespace loom::trainer {

namespace {

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One rank's view of a round: received inputs / gradients by micro-batch position.
template <typename T>
class Pipe {
 public:
  Pipe(const Group& pp, StageModel<T>* stage, const std::vector<MicroBatch>& mbs, int step,
       int round, std::vector<TraceEvent>* trace, double* loss)
      : pp_(pp), stage_(stage), mbs_(mbs), step_(step), round_(round), trace_(trace), loss_(loss) {
    s_ = pp.rank;
    first_ = s_ == 0;
    last_ = s_ == pp.size - 1;
  }

  // Moves the boundary tensors of one step of the schedule: optionally send forward output
  // of position `fwdOut` / backward output of `bwdOut`, receive forward input of `fwdIn` /
  // backward input of `bwdIn` (-1: none). Everything in one loom group.
  Status exchange(int fwdOut, int bwdOut, int fwdIn, int bwdIn) {
    const bool any = (fwdOut >= 0 && !last_) || (bwdOut >= 0 && !first_) ||
                     (fwdIn >= 0 && !first_) || (bwdIn >= 0 && !last_);
    if (!any) {
      if (fwdOut >= 0) out_.erase(fwdOut);
      if (bwdOut >= 0) dout_.erase(bwdOut);
      return Status();
    }
    const loomDataType_t dt = loom::dataTypeOf<T>();
    loomComm_t c = pp_.comm ? pp_.comm->handle() : nullptr;
    loomResult_t r = loomGroupStart();
    if (fwdOut >= 0 && !last_ && r == loomSuccess)
      r = loomSend(out_[fwdOut].data(), out_[fwdOut].size(), dt, s_ + 1, c, nullptr);
    if (bwdOut >= 0 && !first_ && r == loomSuccess)
      r = loomSend(dout_[bwdOut].data(), dout_[bwdOut].size(), dt, s_ - 1, c, nullptr);
    if (fwdIn >= 0 && !first_ && r == loomSuccess) {
      in_[fwdIn].resize(stage_->boundaryElems(mbs_[fwdIn]));
      r = loomRecv(in_[fwdIn].data(), in_[fwdIn].size(), dt, s_ - 1, c, nullptr);
    }
    if (bwdIn >= 0 && !last_ && r == loomSuccess) {
      din_[bwdIn].resize(stage_->boundaryElems(mbs_[bwdIn]));
      r = loomRecv(din_[bwdIn].data(), din_[bwdIn].size(), dt, s_ + 1, c, nullptr);
    }
    const loomResult_t end = loomGroupEnd();
    if (r == loomSuccess) r = end;
    if (fwdOut >= 0) out_.erase(fwdOut);
    if (bwdOut >= 0) dout_.erase(bwdOut);
    return Status::fromResult(r);
  }

  Status forward(int i) {
    TraceEvent e{step_, round_, s_, 'F', mbs_[i].index, nowNs(), 0};
    std::vector<T>& out = out_[i];
    out.resize(last_ ? 0 : stage_->boundaryElems(mbs_[i]));
    Status st = stage_->forward(mbs_[i], in_[i].data(), out.data(), loss_);
    in_.erase(i);
    e.endNs = nowNs();
    trace_->push_back(e);
    return st;
  }

  Status backward(int i) {
    TraceEvent e{step_, round_, s_, 'B', mbs_[i].index, nowNs(), 0};
    std::vector<T>& dout = dout_[i];
    dout.resize(first_ ? 0 : stage_->boundaryElems(mbs_[i]));
    Status st = stage_->backward(mbs_[i], din_[i].data(), dout.data());
    din_.erase(i);
    e.endNs = nowNs();
    trace_->push_back(e);
    return st;
  }

  int stage() const { return s_; }

 private:
  const Group& pp_;
  StageModel<T>* stage_;
  const std::vector<MicroBatch>& mbs_;
  int step_, round_;
  std::vector<TraceEvent>* trace_;
  double* loss_;
  int s_ = 0;
  bool first_ = true, last_ = true;
  // By position in mbs_: received forward inputs, forward outputs to send, received output
  // gradients, input gradients to send.
  std::map<int, std::vector<T>> in_, out_, din_, dout_;
};

// Returns the Status of `expr` when it failed (the one helper macro of this file).
#define TRAINER_TRY(expr)            \
  do {                               \
    Status s_try_ = (expr);          \
    if (!s_try_.ok()) return s_try_; \
  } while (0)

template <typename T>
Status gpipe(Pipe<T>& pipe, int m) {
  for (int i = 0; i < m; ++i) {
    TRAINER_TRY(pipe.exchange(-1, -1, i, -1));
    TRAINER_TRY(pipe.forward(i));
    TRAINER_TRY(pipe.exchange(i, -1, -1, -1));
  }
  for (int i = 0; i < m; ++i) {
    TRAINER_TRY(pipe.exchange(-1, -1, -1, i));
    TRAINER_TRY(pipe.backward(i));
    TRAINER_TRY(pipe.exchange(-1, i, -1, -1));
  }
  return Status();
}

template <typename T>
Status oneFOneB(Pipe<T>& pipe, int m, int p) {
  const int warm = std::min(p - pipe.stage() - 1, m), rest = m - warm;
  for (int i = 0; i < warm; ++i) {
    TRAINER_TRY(pipe.exchange(-1, -1, i, -1));
    TRAINER_TRY(pipe.forward(i));
    TRAINER_TRY(pipe.exchange(i, -1, -1, -1));
  }
  if (rest > 0) TRAINER_TRY(pipe.exchange(-1, -1, warm, -1));
  for (int i = 0; i < rest; ++i) {
    const int f = warm + i;
    TRAINER_TRY(pipe.forward(f));
    TRAINER_TRY(pipe.exchange(f, -1, -1, i));  // send forward, receive backward
    TRAINER_TRY(pipe.backward(i));
    if (i == rest - 1)
      TRAINER_TRY(pipe.exchange(-1, i, -1, -1));
    else
      TRAINER_TRY(pipe.exchange(-1, i, f + 1, -1));  // send backward, receive forward
  }
  for (int i = rest; i < m; ++i) {
    TRAINER_TRY(pipe.exchange(-1, -1, -1, i));
    TRAINER_TRY(pipe.backward(i));
    TRAINER_TRY(pipe.exchange(-1, i, -1, -1));
  }
  return Status();
}

#undef TRAINER_TRY

}  // namespace

template <typename T>
Status runSchedule(Schedule kind, const Group& pp, StageModel<T>* stage,
                   const std::vector<MicroBatch>& mbs, int step, int round,
                   std::vector<TraceEvent>* trace, double* loss) {
  Pipe<T> pipe(pp, stage, mbs, step, round, trace, loss);
  const int m = static_cast<int>(mbs.size());
  // Without a pipeline, one forward then its backward (1F1B with no warm-up) keeps one
  // micro-batch of activations, as plain gradient accumulation does.
  if (kind == Schedule::kGpipe && pp.size > 1) return gpipe(pipe, m);
  return oneFOneB(pipe, m, pp.size);
}

template Status runSchedule<float>(Schedule, const Group&, StageModel<float>*,
                                   const std::vector<MicroBatch>&, int, int,
                                   std::vector<TraceEvent>*, double*);
template Status runSchedule<double>(Schedule, const Group&, StageModel<double>*,
                                    const std::vector<MicroBatch>&, int, int,
                                    std::vector<TraceEvent>*, double*);

}  // namespace loom::trainer
