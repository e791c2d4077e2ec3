// torch.distributed backend "loom" (torch 1.13 c10d ProcessGroup) over loom's public C API.
//
// One translation unit on purpose (build time). Every operation is issued on the calling thread
// as one loom group (loomGroupStart ... loomGroupEndAsync), so it runs on the communicator's
// progress thread; a completion thread per process group waits for the loom works in issue order
// (loom runs them in that order), runs the copy-outs an operation needs (tensor lists, non-dense
// tensors), then completes the torch Work and its Future (DDP's comm hooks chain on the Future).
//
// Only <loom/loom.h> is used: like compat/nccl this file sees no loom internals.
#include <loom/loom.h>

#include <torch/csrc/utils/pybind.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <pybind11/chrono.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace loom_torch {

using c10d::OpType;
using c10d::ReduceOp;

[[noreturn]] void fail(const std::string& what) {
  TORCH_CHECK(false, "loom backend: ", what);
}

void check(loomResult_t r, loomComm_t comm, const char* what) {
  if (r == loomSuccess) return;
  fail(std::string(what) + " failed: " + loomGetErrorString(r) + " (" + loomGetLastError(comm) +
       ")");
}

// loom datatype of a torch dtype, if loom reduces it natively.
std::optional<loomDataType_t> nativeType(at::ScalarType t) {
  switch (t) {
    case at::kChar:
      return loomInt8;
    case at::kByte:
      return loomUint8;
    case at::kInt:
      return loomInt32;
    case at::kLong:
      return loomInt64;
    case at::kHalf:
      return loomFloat16;
    case at::kBFloat16:
      return loomBfloat16;
    case at::kFloat:
      return loomFloat32;
    case at::kDouble:
      return loomFloat64;
    default:
      return std::nullopt;
  }
}

// (datatype, count) to move a tensor without reducing it: its own type, or bytes for dtypes
// loom has no type for (bool, int16, complex): moving data does not depend on the type.
std::pair<loomDataType_t, size_t> moveType(const at::Tensor& t) {
  if (auto d = nativeType(t.scalar_type())) return {*d, static_cast<size_t>(t.numel())};
  return {loomUint8, static_cast<size_t>(t.numel()) * t.element_size()};
}

// A reduction as loom runs it: datatype, element count, op (PreMulSum ops are created here and
// destroyed by the completion thread).
struct Reduction {
  loomDataType_t type = loomFloat32;
  size_t count = 0;
  loomRedOp_t op = loomSum;
  bool customOp = false;
};

Reduction reduction(const at::Tensor& t, const ReduceOp& rop, loomComm_t comm) {
  Reduction r;
  at::ScalarType st = t.scalar_type();
  r.count = static_cast<size_t>(t.numel());
  const char* opName = "?";
  switch (rop.op_) {
    case ReduceOp::SUM:
      r.op = loomSum, opName = "SUM";
      break;
    case ReduceOp::PRODUCT:
      r.op = loomProd, opName = "PRODUCT";
      break;
    case ReduceOp::MIN:
      r.op = loomMin, opName = "MIN";
      break;
    case ReduceOp::MAX:
      r.op = loomMax, opName = "MAX";
      break;
    case ReduceOp::AVG:
      r.op = loomAvg, opName = "AVG";
      break;
    case ReduceOp::PREMUL_SUM:
      r.op = loomSum, opName = "PREMUL_SUM";
      break;
    default:
      fail("ReduceOp " + std::to_string(static_cast<int>(rop.op_)) +
           " (BAND/BOR/BXOR) is not supported: loom has sum, prod, min, max, avg and premul_sum");
  }
  at::ScalarType scalarType = st;
  if (st == at::kBool) {
    // bool as uint8 0/1: or (SUM, MAX) is max, and (PRODUCT, MIN) is min.
    r.type = loomUint8;
    if (rop.op_ == ReduceOp::SUM || rop.op_ == ReduceOp::MAX) {
      r.op = loomMax;
    } else if (rop.op_ == ReduceOp::PRODUCT || rop.op_ == ReduceOp::MIN) {
      r.op = loomMin;
    } else {
      fail(std::string("ReduceOp ") + opName + " is not defined on bool tensors");
    }
    return r;
  }
  if (st == at::kComplexFloat || st == at::kComplexDouble) {
    // Complex sums are sums of the real and imaginary parts; products and orderings are not.
    if (rop.op_ != ReduceOp::SUM && rop.op_ != ReduceOp::AVG && rop.op_ != ReduceOp::PREMUL_SUM)
      fail(std::string("ReduceOp ") + opName + " is not defined on complex tensors");
    scalarType = st == at::kComplexFloat ? at::kFloat : at::kDouble;
    r.count *= 2;
  }
  auto native = nativeType(scalarType);
  if (!native) fail(std::string("dtype ") + c10::toString(st) + " cannot be reduced by loom");
  r.type = *native;
  if (rop.op_ == ReduceOp::PREMUL_SUM) {
    auto* sup = dynamic_cast<c10d::NCCLPreMulSumSupplement*>(rop.supplement_.get());
    if (!sup) fail("PREMUL_SUM without a factor");
    double factor = sup->double_factor;
    if (!sup->tensor_factors.empty()) factor = sup->tensor_factors[0].item<double>();
    at::Tensor scalar = at::scalar_tensor(factor, at::TensorOptions().dtype(scalarType));
    check(loomRedOpCreatePreMulSum(&r.op, scalar.data_ptr(), r.type, loomScalarHostImmediate, comm),
          comm, "loomRedOpCreatePreMulSum");
    r.customOp = true;
  }
  return r;
}

// Starts the process group's deferred send/recv batch (ProcessGroupLoom::flushP2p) for a Work
// of that batch, while the group lives.
struct Flusher {
  std::mutex mu;
  std::function<void()> flush;  // cleared by the process group's destructor
  void operator()() {
    std::lock_guard<std::mutex> lock(mu);
    if (flush) flush();
  }
};

// A torch Work completed by the process group's completion thread. A send/recv Work carries the
// flusher: looking at it (wait, is_completed, get_future) starts its batch.
class LoomWork : public c10d::Work {
 public:
  LoomWork(int rank, OpType type, std::vector<at::Tensor> outputs,
           std::shared_ptr<Flusher> flusher = nullptr)
      : c10d::Work(rank, type),
        outputs_(std::move(outputs)),
        future_(
            c10::make_intrusive<at::ivalue::Future>(c10::ListType::create(c10::TensorType::get()))),
        flusher_(std::move(flusher)) {}

  std::vector<at::Tensor> result() override { return outputs_; }
  c10::intrusive_ptr<at::ivalue::Future> getFuture() override {
    kick();
    return future_;
  }
  bool isCompleted() override {
    kick();
    return c10d::Work::isCompleted();
  }
  bool wait(std::chrono::milliseconds timeout) override {
    kick();
    return c10d::Work::wait(timeout);
  }
  void synchronize() override { kick(); }

  void complete(std::exception_ptr error) {
    finish(error);
    if (error) {
      future_->setError(error);
    } else {
      future_->markCompleted(c10::IValue(outputs_));
    }
  }

 private:
  void kick() {
    if (flusher_ && !flushed_.exchange(true)) (*flusher_)();
  }

  std::vector<at::Tensor> outputs_;
  c10::intrusive_ptr<at::ivalue::Future> future_;
  std::shared_ptr<Flusher> flusher_;
  std::atomic<bool> flushed_{false};
};

// The loom half of one operation: issues its calls inside a group, keeps its tensors alive and
// names the copy-outs to run once loom is done.
struct Launch {
  std::function<loomResult_t()> issue;
  std::vector<std::function<void()>> post;  // run in order after loom completes
  std::vector<at::Tensor> keep;             // alive until loom completes
  std::optional<loomRedOp_t> customOp;      // destroyed after completion
};

// A dense (contiguous) tensor for t; when it is a copy and writeBack, t gets it after completion.
at::Tensor dense(const at::Tensor& t, Launch* l, bool writeBack) {
  at::Tensor c = t.contiguous();
  l->keep.push_back(c);
  if (writeBack && !c.is_same(t)) {
    at::Tensor target = t;
    l->post.push_back([target, c]() mutable { target.copy_(c); });
  }
  return c;
}

at::Tensor flatCat(const std::vector<at::Tensor>& ts) {
  std::vector<at::Tensor> flat;
  flat.reserve(ts.size());
  for (const at::Tensor& t : ts)
    flat.push_back(t.reshape({-1}));
  return at::cat(flat);
}

void checkOne(const std::vector<at::Tensor>& ts, const char* op) {
  if (ts.size() != 1)
    fail(std::string(op) + " takes one tensor per process (got " + std::to_string(ts.size()) + ")");
  if (!ts[0].device().is_cpu())
    fail(std::string(op) + ": loom's torch backend serves CPU tensors only");
}

void checkList(const std::vector<at::Tensor>& ts, const at::Tensor& like, size_t n,
               const char* op) {
  if (ts.size() != n)
    fail(std::string(op) + ": expected " + std::to_string(n) + " tensors, got " +
         std::to_string(ts.size()));
  for (const at::Tensor& t : ts) {
    if (t.numel() != like.numel() || t.scalar_type() != like.scalar_type())
      fail(std::string(op) + ": every tensor of the list must match the other argument's " +
           "numel and dtype");
  }
}

class ProcessGroupLoom : public c10d::ProcessGroup {
 public:
  ProcessGroupLoom(c10::intrusive_ptr<c10d::Store> store, int rank, int size,
                   std::chrono::milliseconds timeout)
      : c10d::ProcessGroup(rank, size), store_(std::move(store)), timeout_(timeout) {
    loomUniqueId id;
    const std::string key = "loom/unique_id";
    if (rank == 0) {
      check(loomGetUniqueId(&id), nullptr, "loomGetUniqueId");
      std::vector<uint8_t> bytes(sizeof(id));
      std::memcpy(bytes.data(), &id, sizeof(id));
      store_->set(key, bytes);
    } else {
      std::vector<uint8_t> bytes = store_->get(key);
      if (bytes.size() != sizeof(id)) fail("the store holds a unique id of the wrong size");
      std::memcpy(&id, bytes.data(), sizeof(id));
    }
    loomConfig_t config = LOOM_CONFIG_INITIALIZER;
    config.timeoutMs = static_cast<int>(std::clamp<int64_t>(timeout.count(), 1, INT_MAX));
    config.commName = "torch";
    check(loomCommInitRankConfig(&comm_, size, id, rank, &config), nullptr,
          "loomCommInitRankConfig");
    completer_ = std::thread([this] { completionLoop(); });
    flusher_->flush = [this] { flushP2p(); };
    init();
  }

  ~ProcessGroupLoom() override {
    {
      std::lock_guard<std::mutex> lock(flusher_->mu);
      flusher_->flush = nullptr;
    }
    flushP2p();
    {
      std::lock_guard<std::mutex> lock(queueMu_);
      stop_ = true;
    }
    queueCv_.notify_all();
    if (completer_.joinable()) completer_.join();
    loomResult_t asyncError = loomSuccess;
    loomCommGetAsyncError(comm_, &asyncError);
    if (asyncError != loomSuccess) {
      loomCommAbort(comm_);
    } else {
      loomCommDestroy(comm_);
    }
  }

  const std::string getBackendName() const override { return "loom"; }

  loomComm_t comm() const { return comm_; }

  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors,
                                           const c10d::BroadcastOptions& opts) override {
    checkOne(tensors, "broadcast");
    Launch l;
    at::Tensor t = dense(tensors[0], &l, true);
    auto [type, count] = moveType(t);
    int root = static_cast<int>(opts.rootRank);
    loomComm_t c = comm_;
    l.issue = [=] {
      return loomBroadcast(t.data_ptr(), t.data_ptr(), count, type, root, c, nullptr);
    };
    return launch(OpType::BROADCAST, "broadcast", tensors, std::move(l));
  }

  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& tensors,
                                           const c10d::AllreduceOptions& opts) override {
    checkOne(tensors, "allreduce");
    return allreduceList(tensors, opts.reduceOp, OpType::ALLREDUCE, "allreduce");
  }

  c10::intrusive_ptr<c10d::Work> allreduce_coalesced(
      std::vector<at::Tensor>& tensors, const c10d::AllreduceCoalescedOptions& opts) override {
    for (const at::Tensor& t : tensors)
      if (!t.device().is_cpu()) fail("allreduce_coalesced: CPU tensors only");
    return allreduceList(tensors, opts.reduceOp, OpType::ALLREDUCE_COALESCED,
                         "allreduce_coalesced");
  }

  c10::intrusive_ptr<c10d::Work> reduce(std::vector<at::Tensor>& tensors,
                                        const c10d::ReduceOptions& opts) override {
    checkOne(tensors, "reduce");
    Launch l;
    at::Tensor t = dense(tensors[0], &l, true);
    Reduction r = reduction(t, opts.reduceOp, comm_);
    if (r.customOp) l.customOp = r.op;
    int root = static_cast<int>(opts.rootRank);
    loomComm_t c = comm_;
    l.issue = [=] {
      return loomReduce(t.data_ptr(), t.data_ptr(), r.count, r.type, r.op, root, c, nullptr);
    };
    return launch(OpType::REDUCE, "reduce", tensors, std::move(l));
  }

  c10::intrusive_ptr<c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& outputs,
                                           std::vector<at::Tensor>& inputs,
                                           const c10d::AllgatherOptions&) override {
    checkOne(inputs, "allgather");
    if (outputs.size() != 1) fail("allgather takes one output list per process");
    checkList(outputs[0], inputs[0], static_cast<size_t>(size_), "allgather");
    Launch l;
    at::Tensor in = dense(inputs[0], &l, false);
    at::Tensor flat = at::empty({size_, in.numel()}, in.options());
    l.keep.push_back(flat);
    auto [type, count] = moveType(in);
    loomComm_t c = comm_;
    l.issue = [=] {
      return loomAllGather(in.data_ptr(), flat.data_ptr(), count, type, c, nullptr);
    };
    std::vector<at::Tensor> outs = outputs[0];
    l.post.push_back([outs, flat]() mutable {
      for (size_t i = 0; i < outs.size(); ++i)
        outs[i].copy_(flat[i].view(outs[i].sizes()));
    });
    return launch(OpType::ALLGATHER, "allgather", outputs[0], std::move(l));
  }

  c10::intrusive_ptr<c10d::Work> _allgather_base(at::Tensor& output, at::Tensor& input,
                                                 const c10d::AllgatherOptions&) override {
    if (output.numel() != input.numel() * size_ || output.scalar_type() != input.scalar_type())
      fail("_allgather_base: output must hold world_size inputs of the same dtype");
    Launch l;
    at::Tensor in = dense(input, &l, false);
    at::Tensor out = dense(output, &l, true);
    auto [type, count] = moveType(in);
    loomComm_t c = comm_;
    l.issue = [=] { return loomAllGather(in.data_ptr(), out.data_ptr(), count, type, c, nullptr); };
    return launch(OpType::_ALLGATHER_BASE, "_allgather_base", {output}, std::move(l));
  }

  c10::intrusive_ptr<c10d::Work> allgather_coalesced(
      std::vector<std::vector<at::Tensor>>& outputLists, std::vector<at::Tensor>& inputs,
      const c10d::AllgatherOptions&) override {
    if (outputLists.size() != static_cast<size_t>(size_))
      fail("allgather_coalesced: one output list per rank");
    Launch l;
    std::vector<at::Tensor> ins, flats;
    for (size_t j = 0; j < inputs.size(); ++j) {
      ins.push_back(dense(inputs[j], &l, false));
      flats.push_back(at::empty({size_, inputs[j].numel()}, inputs[j].options()));
      l.keep.push_back(flats.back());
      for (int r = 0; r < size_; ++r) {
        if (outputLists[r].size() != inputs.size() ||
            outputLists[r][j].numel() != inputs[j].numel())
          fail("allgather_coalesced: output lists must match the inputs");
      }
    }
    loomComm_t c = comm_;
    l.issue = [=] {
      for (size_t j = 0; j < ins.size(); ++j) {
        auto [type, count] = moveType(ins[j]);
        loomResult_t res =
            loomAllGather(ins[j].data_ptr(), flats[j].data_ptr(), count, type, c, nullptr);
        if (res != loomSuccess) return res;
      }
      return loomSuccess;
    };
    std::vector<std::vector<at::Tensor>> outs = outputLists;
    std::vector<at::Tensor> flatOut;
    for (auto& list : outputLists)
      flatOut.insert(flatOut.end(), list.begin(), list.end());
    l.post.push_back([outs, flats]() mutable {
      for (size_t r = 0; r < outs.size(); ++r)
        for (size_t j = 0; j < flats.size(); ++j)
          outs[r][j].copy_(flats[j][static_cast<int64_t>(r)].view(outs[r][j].sizes()));
    });
    return launch(OpType::ALLGATHER_COALESCED, "allgather_coalesced", flatOut, std::move(l));
  }

  c10::intrusive_ptr<c10d::Work> gather(std::vector<std::vector<at::Tensor>>& outputs,
                                        std::vector<at::Tensor>& inputs,
                                        const c10d::GatherOptions& opts) override {
    checkOne(inputs, "gather");
    int root = static_cast<int>(opts.rootRank);
    Launch l;
    at::Tensor in = dense(inputs[0], &l, false);
    at::Tensor flat;
    std::vector<at::Tensor> outs;
    if (rank_ == root) {
      if (outputs.size() != 1) fail("gather: the root takes one output list");
      checkList(outputs[0], in, static_cast<size_t>(size_), "gather");
      outs = outputs[0];
      flat = at::empty({size_, in.numel()}, in.options());
      l.keep.push_back(flat);
      l.post.push_back([outs, flat]() mutable {
        for (size_t i = 0; i < outs.size(); ++i)
          outs[i].copy_(flat[i].view(outs[i].sizes()));
      });
    } else if (!outputs.empty() && !outputs[0].empty()) {
      fail("gather: only the root gives output tensors");
    }
    auto [type, count] = moveType(in);
    void* recv = flat.defined() ? flat.data_ptr() : nullptr;
    loomComm_t c = comm_;
    l.issue = [=] { return loomGather(in.data_ptr(), recv, count, type, root, c, nullptr); };
    return launch(OpType::GATHER, "gather", outs, std::move(l));
  }

  c10::intrusive_ptr<c10d::Work> scatter(std::vector<at::Tensor>& outputs,
                                         std::vector<std::vector<at::Tensor>>& inputs,
                                         const c10d::ScatterOptions& opts) override {
    checkOne(outputs, "scatter");
    int root = static_cast<int>(opts.rootRank);
    Launch l;
    at::Tensor out = dense(outputs[0], &l, true);
    at::Tensor flat;
    if (rank_ == root) {
      if (inputs.size() != 1) fail("scatter: the root takes one input list");
      checkList(inputs[0], out, static_cast<size_t>(size_), "scatter");
      flat = flatCat(inputs[0]);
      l.keep.push_back(flat);
    } else if (!inputs.empty() && !inputs[0].empty()) {
      fail("scatter: only the root gives input tensors");
    }
    auto [type, count] = moveType(out);
    const void* send = flat.defined() ? flat.data_ptr() : nullptr;
    loomComm_t c = comm_;
    l.issue = [=] { return loomScatter(send, out.data_ptr(), count, type, root, c, nullptr); };
    return launch(OpType::SCATTER, "scatter", outputs, std::move(l));
  }

  c10::intrusive_ptr<c10d::Work> reduce_scatter(std::vector<at::Tensor>& outputs,
                                                std::vector<std::vector<at::Tensor>>& inputs,
                                                const c10d::ReduceScatterOptions& opts) override {
    checkOne(outputs, "reduce_scatter");
    if (inputs.size() != 1) fail("reduce_scatter takes one input list per process");
    checkList(inputs[0], outputs[0], static_cast<size_t>(size_), "reduce_scatter");
    Launch l;
    at::Tensor out = dense(outputs[0], &l, true);
    at::Tensor flat = flatCat(inputs[0]);
    l.keep.push_back(flat);
    return reduceScatter(flat, out, opts.reduceOp, OpType::REDUCE_SCATTER, "reduce_scatter",
                         outputs, std::move(l));
  }

  c10::intrusive_ptr<c10d::Work> _reduce_scatter_base(
      at::Tensor& output, at::Tensor& input, const c10d::ReduceScatterOptions& opts) override {
    if (input.numel() != output.numel() * size_ || output.scalar_type() != input.scalar_type())
      fail("_reduce_scatter_base: input must hold world_size outputs of the same dtype");
    Launch l;
    at::Tensor out = dense(output, &l, true);
    at::Tensor in = dense(input, &l, false);
    return reduceScatter(in, out, opts.reduceOp, OpType::_REDUCE_SCATTER_BASE,
                         "_reduce_scatter_base", {output}, std::move(l));
  }

  c10::intrusive_ptr<c10d::Work> alltoall_base(at::Tensor& output, at::Tensor& input,
                                               std::vector<int64_t>& outputSplits,
                                               std::vector<int64_t>& inputSplits,
                                               const c10d::AllToAllOptions&) override {
    if (output.scalar_type() != input.scalar_type()) fail("alltoall_base: dtypes differ");
    Launch l;
    at::Tensor in = dense(input, &l, false);
    at::Tensor out = dense(output, &l, true);
    loomComm_t c = comm_;
    if (outputSplits.empty() && inputSplits.empty()) {
      if (in.numel() != out.numel() || in.numel() % size_ != 0)
        fail("alltoall_base: input and output must have equal numel divisible by world_size");
      auto [type, whole] = moveType(in);
      size_t count = whole / static_cast<size_t>(size_);
      l.issue = [=] {
        return loomAllToAll(in.data_ptr(), out.data_ptr(), count, type, c, nullptr);
      };
      return launch(OpType::ALLTOALL_BASE, "alltoall_base", {output}, std::move(l));
    }
    // Split sizes (rows of dim 0): loom has no AllToAllv, so one group of Send/Recv per peer.
    std::vector<std::pair<size_t, size_t>> sendRanges = splits(in, inputSplits, "input");
    std::vector<std::pair<size_t, size_t>> recvRanges = splits(out, outputSplits, "output");
    char* sendBase = static_cast<char*>(in.data_ptr());
    char* recvBase = static_cast<char*>(out.data_ptr());
    std::vector<std::pair<void*, size_t>> sends, recvs;
    for (int p = 0; p < size_; ++p) {
      sends.emplace_back(sendBase + sendRanges[p].first, sendRanges[p].second);
      recvs.emplace_back(recvBase + recvRanges[p].first, recvRanges[p].second);
    }
    return exchange(sends, recvs, OpType::ALLTOALL_BASE, "alltoall_base", {output}, std::move(l));
  }

  c10::intrusive_ptr<c10d::Work> alltoall(std::vector<at::Tensor>& outputs,
                                          std::vector<at::Tensor>& inputs,
                                          const c10d::AllToAllOptions&) override {
    if (outputs.size() != static_cast<size_t>(size_) || inputs.size() != outputs.size())
      fail("alltoall: world_size input and output tensors");
    Launch l;
    std::vector<std::pair<void*, size_t>> sends, recvs;
    for (int p = 0; p < size_; ++p) {
      at::Tensor in = dense(inputs[p], &l, false);
      at::Tensor out = dense(outputs[p], &l, true);
      sends.emplace_back(in.data_ptr(), in.numel() * in.element_size());
      recvs.emplace_back(out.data_ptr(), out.numel() * out.element_size());
    }
    return exchange(sends, recvs, OpType::ALLTOALL, "alltoall", outputs, std::move(l));
  }

  void monitoredBarrier(const c10d::BarrierOptions& opts, bool waitAllRanks) override {
    // Through the store, not loom: a rank that never arrives must be named, and a loom
    // operation that timed out would fail the communicator for good (errors are sticky).
    std::chrono::milliseconds timeout =
        opts.timeout == c10d::kUnsetTimeout ? timeout_ : opts.timeout;
    flushP2p();  // deferred sends and receives are not held back by the barrier
    const std::string base = "loom/monitored_barrier/" + std::to_string(barrierSeq_++) + "/";
    if (rank_ != 0) {
      store_->set(base + std::to_string(rank_), {1});
      try {
        store_->wait({base + "done"}, timeout);
      } catch (const std::exception& e) {
        fail("rank " + std::to_string(rank_) + " timed out in monitoredBarrier after " +
             std::to_string(timeout.count()) + " ms waiting for rank 0: " + e.what());
      }
      return;
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<int> missing;
    for (int r = 1; r < size_; ++r) {
      const std::string key = base + std::to_string(r);
      if (!missing.empty()) {
        if (!store_->check({key})) missing.push_back(r);
        continue;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      try {
        store_->wait({key}, std::max(left, std::chrono::milliseconds(1)));
      } catch (const std::exception&) {
        missing.push_back(r);
        if (!waitAllRanks) break;
      }
    }
    if (!missing.empty()) {
      std::string names;
      for (int r : missing)
        names += (names.empty() ? "" : ", ") + std::to_string(r);
      fail((missing.size() == 1 ? "Rank " : "Ranks ") + names +
           " failed to pass monitoredBarrier in " + std::to_string(timeout.count()) + " ms");
    }
    store_->set(base + "done", {1});
  }

  c10::intrusive_ptr<c10d::Work> send(std::vector<at::Tensor>& tensors, int dstRank,
                                      int /*tag: loom matches Send/Recv in order*/) override {
    checkOne(tensors, "send");
    if (dstRank < 0 || dstRank >= size_ || dstRank == rank_) fail("send: bad destination rank");
    Launch l;
    at::Tensor t = dense(tensors[0], &l, false);
    auto [type, count] = moveType(t);
    loomComm_t c = comm_;
    l.issue = [=] { return loomSend(t.data_ptr(), count, type, dstRank, c, nullptr); };
    return deferP2p(OpType::SEND, tensors, std::move(l));
  }

  c10::intrusive_ptr<c10d::Work> recv(std::vector<at::Tensor>& tensors, int srcRank,
                                      int /*tag*/) override {
    checkOne(tensors, "recv");
    if (srcRank < 0 || srcRank >= size_ || srcRank == rank_) fail("recv: bad source rank");
    Launch l;
    at::Tensor t = dense(tensors[0], &l, true);
    auto [type, count] = moveType(t);
    loomComm_t c = comm_;
    l.issue = [=] { return loomRecv(t.data_ptr(), count, type, srcRank, c, nullptr); };
    return deferP2p(OpType::RECV, tensors, std::move(l));
  }

  c10::intrusive_ptr<c10d::Work> barrier(const c10d::BarrierOptions&) override {
    Launch l;
    loomComm_t c = comm_;
    l.issue = [=] { return loomBarrier(c, nullptr); };
    return launch(OpType::BARRIER, "barrier", {}, std::move(l));
  }

  loomCounters_t counters() const {
    loomCounters_t c{};
    check(loomCommGetCounters(comm_, &c), comm_, "loomCommGetCounters");
    return c;
  }

 private:
  using Item = std::pair<c10::intrusive_ptr<LoomWork>, Launch>;
  struct Pending {
    loomWork_t loomWork = nullptr;
    std::vector<Item> items;  // one loom group
  };

  c10::intrusive_ptr<c10d::Work> allreduceList(std::vector<at::Tensor>& tensors,
                                               const ReduceOp& rop, OpType type, const char* name) {
    Launch l;
    std::vector<at::Tensor> ts;
    std::vector<Reduction> rs;
    for (const at::Tensor& t : tensors) {
      ts.push_back(dense(t, &l, true));
      rs.push_back(reduction(ts.back(), rop, comm_));
      if (rs.back().customOp) {
        if (l.customOp) loomRedOpDestroy(rs.back().op, comm_);
        rs.back().op = l.customOp.value_or(rs.back().op);
        l.customOp = rs.back().op;
      }
    }
    if (l.customOp && ts.size() > 1) {
      for (size_t i = 1; i < ts.size(); ++i)
        if (ts[i].scalar_type() != ts[0].scalar_type())
          fail(std::string(name) + ": PREMUL_SUM needs one dtype for all tensors");
    }
    loomComm_t c = comm_;
    l.issue = [=] {
      for (size_t i = 0; i < ts.size(); ++i) {
        loomResult_t res = loomAllReduce(ts[i].data_ptr(), ts[i].data_ptr(), rs[i].count,
                                         rs[i].type, rs[i].op, c, nullptr);
        if (res != loomSuccess) return res;
      }
      return loomSuccess;
    };
    return launch(type, name, tensors, std::move(l));
  }

  c10::intrusive_ptr<c10d::Work> reduceScatter(const at::Tensor& in, const at::Tensor& out,
                                               const ReduceOp& rop, OpType type, const char* name,
                                               std::vector<at::Tensor> outputs, Launch l) {
    Reduction r = reduction(out, rop, comm_);
    if (r.customOp) l.customOp = r.op;
    loomComm_t c = comm_;
    l.issue = [=] {
      return loomReduceScatter(in.data_ptr(), out.data_ptr(), r.count, r.type, r.op, c, nullptr);
    };
    return launch(type, name, std::move(outputs), std::move(l));
  }

  // Byte offset and length of each peer's rows of t for split sizes (even split when empty).
  std::vector<std::pair<size_t, size_t>> splits(const at::Tensor& t,
                                                const std::vector<int64_t>& sizes,
                                                const char* which) const {
    int64_t rows = t.dim() == 0 ? 1 : t.size(0);
    size_t rowBytes = rows == 0 ? 0 : t.numel() * t.element_size() / static_cast<size_t>(rows);
    std::vector<int64_t> s = sizes;
    if (s.empty()) {
      if (rows % size_ != 0) fail(std::string("alltoall_base: ") + which + " rows not divisible");
      s.assign(static_cast<size_t>(size_), rows / size_);
    }
    if (s.size() != static_cast<size_t>(size_))
      fail(std::string("alltoall_base: ") + which + " split sizes need world_size entries");
    int64_t total = 0;
    std::vector<std::pair<size_t, size_t>> out;
    for (int64_t n : s) {
      if (n < 0) fail("alltoall_base: negative split size");
      out.emplace_back(static_cast<size_t>(total) * rowBytes, static_cast<size_t>(n) * rowBytes);
      total += n;
    }
    if (total != rows)
      fail(std::string("alltoall_base: ") + which + " split sizes do not add up to dim 0");
    return out;
  }

  // sends[p] to peer p and recvs[p] from peer p, as bytes, in one group; the own part is copied.
  c10::intrusive_ptr<c10d::Work> exchange(std::vector<std::pair<void*, size_t>> sends,
                                          std::vector<std::pair<void*, size_t>> recvs, OpType type,
                                          const char* name, std::vector<at::Tensor> outputs,
                                          Launch l) {
    if (recvs[rank_].second != sends[rank_].second)
      fail(std::string(name) + ": this rank's own send and receive sizes differ");
    void* selfDst = recvs[rank_].first;
    const void* selfSrc = sends[rank_].first;
    size_t selfBytes = sends[rank_].second;
    int me = rank_, n = size_;
    loomComm_t c = comm_;
    l.issue = [=] {
      if (selfBytes) std::memmove(selfDst, selfSrc, selfBytes);
      for (int k = 1; k < n; ++k) {
        int to = (me + k) % n, from = (me - k + n) % n;
        if (sends[to].second) {
          loomResult_t r = loomSend(sends[to].first, sends[to].second, loomUint8, to, c, nullptr);
          if (r != loomSuccess) return r;
        }
        if (recvs[from].second) {
          loomResult_t r =
              loomRecv(recvs[from].first, recvs[from].second, loomUint8, from, c, nullptr);
          if (r != loomSuccess) return r;
        }
      }
      return loomSuccess;
    };
    return launch(type, name, std::move(outputs), std::move(l));
  }

  c10::intrusive_ptr<c10d::Work> launch(OpType type, const char* name,
                                        std::vector<at::Tensor> outputs, Launch l) {
    auto work = c10::make_intrusive<LoomWork>(rank_, type, std::move(outputs));
    std::vector<Item> items;
    items.emplace_back(work, std::move(l));
    std::lock_guard<std::mutex> lock(issueMu_);
    flushP2pLocked();  // earlier sends and receives go first
    std::exception_ptr error = submitLocked(name, std::move(items));
    if (error) std::rethrow_exception(error);
    return work;
  }

  // Sends and receives wait in a batch until the next operation of another kind, or until one
  // of their Works is looked at, and then run as one loom group. Within a group loom progresses
  // Send/Recv pairs together, so isend+irecv in both directions cannot deadlock; issued one by
  // one they would (the progress thread runs operations one after another).
  c10::intrusive_ptr<c10d::Work> deferP2p(OpType type, std::vector<at::Tensor> outputs, Launch l) {
    auto work = c10::make_intrusive<LoomWork>(rank_, type, std::move(outputs), flusher_);
    std::lock_guard<std::mutex> lock(p2pMu_);
    p2p_.emplace_back(work, std::move(l));
    return work;
  }

  void flushP2p() {
    std::lock_guard<std::mutex> lock(issueMu_);
    flushP2pLocked();
  }

  void flushP2pLocked() {
    std::vector<Item> batch;
    {
      std::lock_guard<std::mutex> lock(p2pMu_);
      batch.swap(p2p_);
    }
    if (batch.empty()) return;
    std::vector<c10::intrusive_ptr<LoomWork>> works;
    for (auto& item : batch)
      works.push_back(item.first);
    if (std::exception_ptr error = submitLocked("send/recv", std::move(batch)))
      for (auto& w : works)
        w->complete(error);
  }

  // Issues items as one loom group and queues it for the completion thread (issueMu_ held, so
  // the queue order is the issue order). Returns the error of a group that could not start.
  std::exception_ptr submitLocked(const char* name, std::vector<Item> items) {
    loomWork_t w = nullptr;
    loomGroupStart();
    loomResult_t r = loomSuccess;
    for (auto& item : items) {
      r = item.second.issue();
      if (r != loomSuccess) break;
    }
    std::string why = r == loomSuccess ? "" : loomGetLastError(comm_);
    loomResult_t e = loomGroupEndAsync(&w);
    if (r == loomSuccess && e != loomSuccess) why = loomGetLastError(comm_);
    if (r != loomSuccess || e != loomSuccess) {
      if (w) loomWorkFree(w);
      for (auto& item : items)
        if (item.second.customOp) loomRedOpDestroy(*item.second.customOp, comm_);
      return std::make_exception_ptr(std::runtime_error(
          std::string("loom backend: ") + name +
          " failed: " + loomGetErrorString(r != loomSuccess ? r : e) + " (" + why + ")"));
    }
    {
      std::lock_guard<std::mutex> lock(queueMu_);
      queue_.push_back(Pending{w, std::move(items)});
    }
    queueCv_.notify_all();
    return nullptr;
  }

  void completionLoop() {
    for (;;) {
      Pending p;
      {
        std::unique_lock<std::mutex> lock(queueMu_);
        queueCv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        p = std::move(queue_.front());
        queue_.pop_front();
      }
      // Bounded by the communicator's timeout (from init_process_group).
      loomResult_t r = loomWorkWait(p.loomWork, -1);
      std::string why = r == loomSuccess ? "" : loomGetLastError(comm_);
      loomWorkFree(p.loomWork);
      std::exception_ptr failed;
      if (r != loomSuccess) {
        failed = std::make_exception_ptr(
            std::runtime_error(std::string("loom backend: operation failed: ") +
                               loomGetErrorString(r) + " (" + why + ")"));
      }
      for (auto& [work, launch] : p.items) {
        if (launch.customOp) loomRedOpDestroy(*launch.customOp, comm_);
        std::exception_ptr error = failed;
        if (!error) {
          try {
            for (auto& f : launch.post)
              f();
          } catch (...) {
            error = std::current_exception();
          }
        }
        launch = Launch{};  // release the tensors before completing
        work->complete(error);
      }
    }
  }

  c10::intrusive_ptr<c10d::Store> store_;
  std::chrono::milliseconds timeout_;
  loomComm_t comm_ = nullptr;
  uint64_t barrierSeq_ = 0;
  std::mutex issueMu_;  // loom: one thread issues on a communicator at a time
  std::mutex p2pMu_;
  std::vector<Item> p2p_;  // deferred sends and receives (deferP2p)
  std::shared_ptr<Flusher> flusher_ = std::make_shared<Flusher>();
  std::mutex queueMu_;
  std::condition_variable queueCv_;
  std::deque<Pending> queue_;
  bool stop_ = false;
  std::thread completer_;
};

c10::intrusive_ptr<c10d::ProcessGroup> create(const c10::intrusive_ptr<c10d::Store>& store,
                                              int rank, int size,
                                              const std::chrono::duration<float>& timeout) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  return c10::make_intrusive<ProcessGroupLoom>(store, rank, size, ms);
}

pybind11::dict counters(const c10::intrusive_ptr<c10d::ProcessGroup>& pg) {
  auto* loom = dynamic_cast<ProcessGroupLoom*>(pg.get());
  if (!loom) fail("counters: not a loom process group");
  loomCounters_t c = loom->counters();
  static const char* const kNames[loomNumColls] = {
      "all_reduce", "broadcast", "reduce", "all_gather", "reduce_scatter", "all_to_all",
      "gather",     "scatter",   "send",   "recv",       "barrier"};
  pybind11::dict d;
  for (int i = 0; i < loomNumColls; ++i) {
    d[kNames[i]] = pybind11::make_tuple(c.calls[i], c.bytesSent[i], c.bytesRecv[i]);
  }
  return d;
}

}  // namespace loom_torch

PYBIND11_MODULE(_loom_c10d, m) {
  m.doc() = "torch.distributed backend 'loom' (see loom_torch)";
  m.def("create_process_group", &loom_torch::create, pybind11::arg("store"), pybind11::arg("rank"),
        pybind11::arg("size"), pybind11::arg("timeout"));
  m.def("counters", &loom_torch::counters,
        "per collective (calls, bytes sent, bytes received) of a loom process group");
}
