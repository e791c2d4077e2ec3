#include "bench.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "check.h"
#include "gpu.h"
#include "json.h"
#include "report.h"

namespace loom::perf {
namespace {

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

class RankBench {
 public:
  RankBench(const Options& options, const RankSetup& setup, loomComm_t* comm)
      : o_(options), s_(setup), comm_(comm) {}
  ~RankBench() {
    gpu::free(dsend_);
    gpu::free(drecv_);
    gpu::destroyStream(stream_);
  }
  int run();

 private:
  bool ok(loomResult_t r, const char* what);
  bool allocate();
  std::vector<RankDesc> describeRanks();
  double combineTime(double seconds, int how);
  bool sumInts(int64_t* values, size_t count);
  bool runCollective(CollKind kind);
  bool timeTest(CollKind kind, loomDataType_t type, OpKind op, int root, RunRecord* run);
  bool warmUp(const RowSpec& row, const std::vector<size_t>& sizes);
  Measurement measure(RowSpec row, RunRecord* run, bool* stopSweep);
  bool timeFixed(const RowSpec& row, void* send, void* recv, double* seconds);
  bool timeAdaptive(const RowSpec& row, void* send, void* recv, double* seconds, int* iters,
                    bool* stopSweep);
  bool callOnce(const RowSpec& row, void* send, void* recv) {
    return ok(loom::perf::runCollective(row.kind, *comm_, onDevice(send), onDevice(recv),
                                        row.counts, row.type, row.op, row.root, stream_),
              collInfo(row.kind).name);
  }
  // --device cuda: the host buffers are the benchmark's view (values are prepared and checked
  // there); every call uses device buffers at the same offsets, on stream_.
  void* onDevice(void* p) const {
    if (!stream_ || !p) return p;
    auto* b = static_cast<char*>(p);
    auto* hs = static_cast<char*>(send_.get());
    auto* hr = static_cast<char*>(recv_.get());
    if (b >= hs && b < hs + bytes_) return static_cast<char*>(dsend_) + (b - hs);
    if (b >= hr && b < hr + bytes_) return static_cast<char*>(drecv_) + (b - hr);
    return p;
  }
  bool gpuOk(bool good, const std::string& error) {
    if (!good) {
      std::fprintf(stderr, "loom-perf: rank %d: %s\n", s_.rank, error.c_str());
      return ok(loomUnhandledCudaError, "device memory");
    }
    return true;
  }
  // Waits for the calls queued on the stream (the timing includes them).
  bool drain() {
    std::string e;
    return !stream_ || gpuOk(gpu::synchronize(stream_, &e), e);
  }
  bool upload() {
    std::string e;
    return !stream_ || (gpuOk(gpu::copy(dsend_, send_.get(), bytes_, &e), e) &&
                        gpuOk(gpu::copy(drecv_, recv_.get(), bytes_, &e), e));
  }
  bool download() {
    std::string e;
    return !stream_ || (gpuOk(gpu::copy(send_.get(), dsend_, bytes_, &e), e) &&
                        gpuOk(gpu::copy(recv_.get(), drecv_, bytes_, &e), e));
  }
  bool barrier() { return ok(loomBarrier(*comm_, nullptr), "barrier"); }
  std::string chosenAlgorithm(const RowSpec& row) const;
  bool check(const RowSpec& row, void* send, void* recv, Measurement* m, RunRecord* run);

  const Options& o_;
  const RankSetup& s_;
  loomComm_t* comm_;
  std::unique_ptr<void, FreeDeleter> send_, recv_;
  size_t bytes_ = 0;
  void* dsend_ = nullptr;  // --device cuda
  void* drecv_ = nullptr;
  void* stream_ = nullptr;
  std::unique_ptr<Reporter> reporter_;  // global rank 0 only
  std::vector<RunRecord> runs_;
  bool failed_ = false;
  int64_t wrongRows_ = 0;
};

bool RankBench::ok(loomResult_t r, const char* what) {
  if (r == loomSuccess) return true;
  if (!failed_) {
    std::fprintf(stderr, "loom-perf: rank %d: %s failed: %s: %s\n", s_.rank, what,
                 loomGetErrorString(r), *comm_ ? loomGetLastError(*comm_) : "");
    failed_ = true;
    if (*comm_ != nullptr) {
      loomCommAbort(*comm_);  // peers waiting on this rank fail instead of hanging
      *comm_ = nullptr;
    }
  }
  return false;
}

bool RankBench::allocate() {
  // Every row's send and receive counts are at most maxBytes / elementBytes (collectives.h).
  const size_t bytes = (std::max<size_t>(o_.maxBytes, 64) + 4095) / 4096 * 4096;
  send_.reset(std::aligned_alloc(4096, bytes));
  recv_.reset(std::aligned_alloc(4096, bytes));
  if (!send_ || !recv_) {
    std::fprintf(stderr, "loom-perf: rank %d: cannot allocate 2 x %zu bytes\n", s_.rank, bytes);
    return false;
  }
  std::memset(send_.get(), 0, bytes);  // fault the pages in, and start from sane values
  std::memset(recv_.get(), 0, bytes);
  bytes_ = bytes;
  if (o_.device != "cuda") return true;
  std::string e;
  if (!gpu::available(&e) || !gpu::selectDevice(s_.rank, &e) || !(dsend_ = gpu::alloc(bytes, &e)) ||
      !(drecv_ = gpu::alloc(bytes, &e)) || !(stream_ = gpu::createStream(&e))) {
    std::fprintf(stderr, "loom-perf: rank %d: --device cuda: %s\n", s_.rank, e.c_str());
    return false;
  }
  return upload();
}

std::vector<RankDesc> RankBench::describeRanks() {
  struct Record {
    int32_t pid;
    char host[60];
  };
  Record mine{};
  mine.pid = static_cast<int32_t>(getpid());
  gethostname(mine.host, sizeof(mine.host) - 1);
  std::vector<Record> all(static_cast<size_t>(s_.nranks));
  std::vector<RankDesc> out;
  if (!ok(loomAllGather(&mine, all.data(), sizeof(Record), loomUint8, *comm_, nullptr),
          "allgather of rank descriptions"))
    return out;
  for (int r = 0; r < s_.nranks; ++r) {
    all[r].host[sizeof(all[r].host) - 1] = '\0';
    out.push_back({r, all[r].pid, all[r].host});
  }
  return out;
}

// The row's time from every rank's (-a): 0 rank 0's, 1 mean, 2 min, 3 max.
double RankBench::combineTime(double seconds, int how) {
  double v = seconds;
  if (how == 0) {
    ok(loomBroadcast(&v, &v, 1, loomFloat64, 0, *comm_, nullptr), "broadcast of the time");
    return v;
  }
  const loomRedOp_t op = how == 2 ? loomMin : how == 3 ? loomMax : loomSum;
  ok(loomAllReduce(&v, &v, 1, loomFloat64, op, *comm_, nullptr), "allreduce of the time");
  return how == 1 ? v / s_.nranks : v;
}

bool RankBench::sumInts(int64_t* values, size_t count) {
  return ok(loomAllReduce(values, values, count, loomInt64, loomSum, *comm_, nullptr),
            "allreduce of the check results");
}

bool RankBench::timeFixed(const RowSpec& row, void* send, void* recv, double* seconds) {
  if (!barrier()) return false;
  const double t0 = nowSeconds();
  for (int i = 0; i < o_.iters; ++i) {
    if (o_.aggIters > 1) loomGroupStart();
    for (int a = 0; a < o_.aggIters; ++a)
      if (!callOnce(row, send, recv)) break;
    if (o_.aggIters > 1 && !ok(loomGroupEnd(), "group end")) return false;
    if (failed_ || (o_.blocking && (!drain() || !barrier()))) return false;
  }
  if (!drain()) return false;
  const double mine = (nowSeconds() - t0) / (static_cast<double>(o_.iters) * o_.aggIters);
  *seconds = combineTime(mine, o_.average);
  return !failed_;
}

bool RankBench::timeAdaptive(const RowSpec& row, void* send, void* recv, double* seconds,
                             int* iters, bool* stopSweep) {
  const size_t bytes = std::max<size_t>(1, rowBytes(row.counts, typeInfo(row.type).bytes));
  *iters = static_cast<int>(std::clamp<double>(1024.0 * 1024 * 1024 / bytes, 10, 1000));
  const int warmup = std::clamp(*iters / 10, 2, 50);
  const int how = o_.peerLabel.empty() ? o_.average : 3;
  // The first warm-up call is a probe (max over ranks).
  if (!barrier()) return false;
  double t = nowSeconds();
  if (!callOnce(row, send, recv) || !drain()) return false;
  const double probe = combineTime(nowSeconds() - t, 3);
  if (probe > o_.slowLimitSec) {
    *iters = 1;
    *seconds = probe;
    *stopSweep = true;
    return !failed_;
  }
  const int cap = probe > 0 ? std::max(1, static_cast<int>(0.5 * o_.budgetSec / probe)) : warmup;
  const int rest = std::min(warmup - 1, cap);
  t = nowSeconds();
  for (int i = 0; i < rest; ++i)
    if (!callOnce(row, send, recv)) return false;
  if (!drain()) return false;
  const double perCall = combineTime(rest > 0 ? (nowSeconds() - t) / rest : probe, 3);
  if (perCall > 0 && perCall * *iters > o_.budgetSec)
    *iters = std::max(3, static_cast<int>(o_.budgetSec / perCall));
  if (!barrier()) return false;
  t = nowSeconds();
  for (int i = 0; i < *iters; ++i)
    if (!callOnce(row, send, recv) || (o_.blocking && (!drain() || !barrier()))) return false;
  if (!drain()) return false;
  *seconds = combineTime((nowSeconds() - t) / *iters, how);
  return !failed_;
}

bool RankBench::check(const RowSpec& row, void* send, void* recv, Measurement* m, RunRecord* run) {
  const ValueModel values(row.type, row.op, row.nranks);
  for (int c = 0; c < o_.check; ++c) {
    prepareRow(row, values, send, recv);
    if (!upload() || !callOnce(row, send, recv) || !drain() || !download()) return false;
    if (o_.corruptRank == s_.rank) corruptOutput(row, recv);
    std::string first;
    int64_t counts[2] = {countWrong(row, values, recv, &first), 0};
    if (counts[0] > 0) {
      counts[1] = 1;
      std::fprintf(stderr,
                   "loom-perf: rank %d: %s %s %s root %d, %zu elements, %s: %lld wrong; %s\n",
                   s_.rank, collInfo(row.kind).name, typeInfo(row.type).name, opName(row.op),
                   row.root, row.counts.param, row.inPlace ? "in-place" : "out-of-place",
                   static_cast<long long>(counts[0]), first.c_str());
    }
    if (!sumInts(counts, 2)) return false;
    m->wrong = counts[0];
    run->outOfBounds += static_cast<int>(counts[1]);
    if (counts[0] > 0) break;
  }
  return true;
}

Measurement RankBench::measure(RowSpec row, RunRecord* run, bool* stopSweep) {
  Measurement m;
  void *send = nullptr, *recv = nullptr;
  rowPointers(row, send_.get(), recv_.get(), &send, &recv);
  prepareRow(row, ValueModel(row.type, row.op, row.nranks), send, recv);
  if (!upload()) return m;
  double seconds = 0;
  m.iters = o_.iters;
  const bool timed = o_.budgetSec > 0 ? timeAdaptive(row, send, recv, &seconds, &m.iters, stopSweep)
                                      : timeFixed(row, send, recv, &seconds);
  if (!timed) return m;
  m.present = true;
  m.timeUs = seconds * 1e6;
  bandwidth(row.kind, row.counts, typeInfo(row.type).bytes, row.nranks, seconds, &m.algBw,
            &m.busBw);
  // Like nccl-tests, in-place sendrecv (one buffer sent on and received into at once, which
  // neither loom nor NCCL defines) is timed but not checked: "N/A".
  const bool checkable = !(row.kind == CollKind::kSendRecv && row.inPlace);
  if (o_.check > 0 && checkable) check(row, send, recv, &m, run);
  return m;
}

bool RankBench::warmUp(const RowSpec& base, const std::vector<size_t>& sizes) {
  if (o_.budgetSec > 0 || sizes.empty()) return true;  // adaptive rows warm up themselves
  for (size_t size : {sizes.back(), sizes.front()}) {
    RowSpec row = base;
    row.counts = countsFor(row.kind, size / typeInfo(row.type).bytes, row.nranks);
    void *send = nullptr, *recv = nullptr;
    rowPointers(row, send_.get(), recv_.get(), &send, &recv);
    for (int i = 0; i < o_.warmupIters; ++i)
      if (!callOnce(row, send, recv)) return false;
  }
  return drain();
}

// The planner's choice for the row's call (recorded in the JSON so perf/planner_sweep.sh can
// tell which algorithm the planner's time measured).
std::string RankBench::chosenAlgorithm(const RowSpec& row) const {
  static constexpr loomCollective_t kColl[] = {
      loomCollAllReduce, loomCollAllGather, loomCollReduceScatter,
      loomCollBroadcast, loomCollReduce,    loomCollAllToAll,
      loomCollGather,    loomCollScatter,   loomCollSend};
  static_assert(std::size(kColl) == static_cast<size_t>(CollKind::kSendRecv) + 1);
  if (comm_ == nullptr || *comm_ == nullptr) return "";
  const int root =
      row.kind == CollKind::kSendRecv ? (row.rank + 1) % row.nranks : std::max(row.root, 0);
  const char* name = nullptr;
  if (loomCommChosenAlgorithm(*comm_, kColl[static_cast<int>(row.kind)], row.counts.param, row.type,
                              root, &name) != loomSuccess)
    return "";
  return name;
}

bool RankBench::timeTest(CollKind kind, loomDataType_t type, OpKind op, int root, RunRecord* run) {
  const size_t es = typeInfo(type).bytes;
  const std::vector<size_t> sizes = sweepSizes(o_);
  RowSpec base;
  base.kind = kind;
  base.type = type;
  base.op = op;
  base.root = root;
  base.rank = s_.rank;
  base.nranks = s_.nranks;
  if (reporter_ && reporter_->peerFormat())
    reporter_->peerHeader(collInfo(kind), s_.nranks, typeInfo(type).name, opName(op));
  if (!barrier() || !warmUp(base, sizes)) return false;
  for (int cycle = 0; o_.runCycles == 0 || cycle < o_.runCycles; ++cycle) {
    bool stop = false;
    for (size_t size : sizes) {
      RowSpec row = base;
      row.counts = countsFor(kind, size / es, s_.nranks);
      if (!o_.peerLabel.empty() && row.counts.param == 0) continue;
      RowRecord rec;
      rec.bytes = rowBytes(row.counts, es);
      rec.count = row.counts.param;
      rec.type = typeInfo(type).name;
      rec.redop = opName(op);
      rec.root = root;
      rec.algorithm = chosenAlgorithm(row);
      if (reporter_) reporter_->rowStart(rec);
      for (bool inPlace : {false, true}) {
        // --peer-format: one row, timed as the peers time it (collectives.h, peersInPlace).
        if (!o_.peerLabel.empty() && inPlace != collInfo(kind).peersInPlace) continue;
        row.inPlace = inPlace;
        Measurement m = measure(row, run, &stop);
        if (failed_) return false;
        (inPlace ? rec.inPlace : rec.outOfPlace) = m;
        if (reporter_) reporter_->rowBody(m);
      }
      if (reporter_) reporter_->rowEnd();
      run->rows.push_back(rec);
      if (stop) {
        if (reporter_)
          std::printf("# %s: one call took more than %.2f s (--slow-limit); larger sizes skipped\n",
                      collInfo(kind).name, o_.slowLimitSec);
        break;
      }
    }
  }
  return true;
}

bool RankBench::runCollective(CollKind kind) {
  const CollInfo& info = collInfo(kind);
  RunRecord run;
  run.collective = info.name;
  run.label = o_.peerLabel.empty() ? "loom" : o_.peerLabel;
  run.nranks = s_.nranks;
  run.nprocs = s_.nprocs;
  run.nthreads = o_.nThreads;
  run.transport = s_.transport;
  run.algo = s_.algo;
  const std::vector<RankDesc> ranks = describeRanks();
  if (failed_) return false;
  if (reporter_) reporter_->header(info, s_.nranks, s_.nprocs, ranks, s_.transport, s_.algo);
  std::vector<int> roots{-1};
  if (info.rooted) {
    if (o_.root >= s_.nranks) {
      if (s_.rank == 0)
        std::fprintf(stderr, "loom-perf: root %d is out of range [0, %d)\n", o_.root, s_.nranks);
      failed_ = true;
      return false;
    }
    roots.clear();
    for (int r = o_.root < 0 ? 0 : o_.root; r <= (o_.root < 0 ? s_.nranks - 1 : o_.root); ++r)
      roots.push_back(r);
  }
  const std::vector<OpKind> ops = info.reduces ? o_.ops : std::vector<OpKind>{OpKind::kNone};
  for (loomDataType_t type : o_.types)
    for (OpKind op : ops)
      for (int root : roots)
        if (!timeTest(kind, type, op, root, &run)) return false;
  double sum = 0;
  int n = 0;
  for (const RowRecord& r : run.rows)
    for (const Measurement* m : {&r.outOfPlace, &r.inPlace})
      if (m->present) sum += m->busBw, ++n;
  run.avgBusBw = n ? sum / n : 0;
  if (reporter_) reporter_->footer(run.outOfBounds, run.avgBusBw);
  wrongRows_ += run.outOfBounds;
  runs_.push_back(std::move(run));
  return true;
}

int RankBench::run() {
  const std::string start = nowString();
  if (s_.rank == 0) reporter_ = std::make_unique<Reporter>(o_, stdout);
  if (!allocate()) {
    ok(o_.device == "cuda" ? loomUnhandledCudaError : loomSystemError, "allocation");
    return 1;
  }
  for (CollKind kind : o_.collectives)
    if (!runCollective(kind)) break;
  if (reporter_ && !o_.jsonPath.empty()) {
    std::string error;
    if (!writeResultsJson(o_.jsonPath, o_, start, runs_, &error)) {
      std::fprintf(stderr, "loom-perf: %s\n", error.c_str());
      return 1;
    }
  }
  return failed_ || wrongRows_ > 0 ? 1 : 0;
}

}  // namespace

int runRank(const Options& options, const RankSetup& setup, loomComm_t* comm) {
  RankBench bench(options, setup, comm);
  return bench.run();
}

}  // namespace loom::perf
