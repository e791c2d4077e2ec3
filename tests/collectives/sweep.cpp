#include "sweep.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>

#include "base/cuda.h"
#include "values.h"

namespace loom::test {

namespace {

using Bytes = std::vector<uint8_t>;

struct Ctx {
  loomComm_t comm;
  int rank;
  int nranks;
  std::vector<std::string>* failures;
  int iteration = 0;
  void* stream = nullptr;  // device mode (SweepOptions::device): buffers mirrored on the GPU
};

// Translates a pointer into one of the call's host buffers to the same offset in its mirror.
using Map = std::function<void*(const void*)>;

// Device memory for the mirrors, per stream, kept for the whole run: freeing it (cudaFree
// synchronises the device) while a peer rank's stream waits for a call this rank has yet to
// make would deadlock, as it would with NCCL. releaseDeviceMirrors() frees it at the end.
struct Mirrors {
  std::vector<std::pair<void*, size_t>> slots;  // reused, grown by replacement
  std::vector<void*> retired;                   // outgrown, freed at release
};
std::mutex gMirrorsMu;
std::map<void*, Mirrors>& mirrors() {
  static auto* m = new std::map<void*, Mirrors>();
  return *m;
}

// The stream's i-th mirror with at least `bytes`, or NULL.
void* mirror(void* stream, size_t i, size_t bytes) {
  std::lock_guard<std::mutex> lock(gMirrorsMu);
  Mirrors& m = mirrors()[stream];
  if (m.slots.size() <= i) m.slots.resize(i + 1, {nullptr, 0});
  auto& [ptr, size] = m.slots[i];
  if (size < bytes) {
    if (ptr) m.retired.push_back(ptr);
    ptr = nullptr;
    size = 0;
    const size_t want = std::max<size_t>(bytes, 1 << 20);
    if (!cuda::deviceAlloc(want, &ptr).isOk()) return nullptr;
    size = want;
  }
  return ptr;
}

// Runs `call` on the host buffers, or in device mode on device copies of them: each buffer is
// copied to the device, the call is issued on the stream, the stream is synchronised and every
// buffer copied back, so the checks that follow read what the device buffers hold.
loomResult_t run(Ctx* c, std::vector<Bytes*> bufs,
                 const std::function<loomResult_t(const Map&, loomStream_t)>& call) {
  if (!c->stream) return call([](const void* p) { return const_cast<void*>(p); }, nullptr);
  std::vector<void*> dev(bufs.size(), nullptr);
  for (size_t i = 0; i < bufs.size(); ++i)
    if (!(dev[i] = mirror(c->stream, i, bufs[i]->size())) ||
        !cuda::memcpyAsync(dev[i], bufs[i]->data(), bufs[i]->size(), c->stream).isOk()) {
      c->failures->push_back("device mirror: allocation or copy failed");
      return loomUnhandledCudaError;
    }
  Map map = [&](const void* p) -> void* {
    if (!p) return nullptr;
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < bufs.size(); ++i)
      if (b >= bufs[i]->data() && b < bufs[i]->data() + bufs[i]->size())
        return static_cast<uint8_t*>(dev[i]) + (b - bufs[i]->data());
    return const_cast<void*>(p);  // not a mirrored buffer: passed as is
  };
  loomResult_t r = call(map, c->stream);
  for (size_t i = 0; i < bufs.size(); ++i)
    if (!cuda::memcpyAsync(bufs[i]->data(), dev[i], bufs[i]->size(), c->stream).isOk())
      r = loomUnhandledCudaError;
  if (!cuda::streamSynchronize(c->stream).isOk()) r = loomUnhandledCudaError;
  return r;
}

std::string where(const char* coll, loomDataType_t t, int op, size_t count, bool inPlace, int rank,
                  int root = -1) {
  std::ostringstream os;
  os << coll << " " << typeName(t);
  if (op >= 0) os << " " << opName(op);
  os << " count " << count << (inPlace ? " in-place" : " out-of-place") << " rank " << rank;
  if (root >= 0) os << " root " << root;
  return os.str();
}

bool callOk(Ctx* c, loomResult_t r, const std::string& what) {
  if (r == loomSuccess) return true;
  c->failures->push_back(what + ": returned " + loomGetErrorString(r) + ": " +
                         loomGetLastError(c->comm));
  return false;
}

// Compares `count` elements at got+offset with want; records the first mismatch.
bool same(Ctx* c, loomDataType_t t, const uint8_t* got, const uint8_t* want, size_t count,
          const std::string& what) {
  const size_t es = typeSize(t);
  for (size_t i = 0; i < count; ++i) {
    if (std::memcmp(got + i * es, want + i * es, es) != 0) {
      std::ostringstream os;
      os << what << ": element " << i << " is " << loadValue(t, got, i) << ", expected "
         << loadValue(t, want, i);
      c->failures->push_back(os.str());
      return false;
    }
  }
  return true;
}

loomRedOp_t makeOp(Ctx* c, loomDataType_t t, int op, bool* created) {
  *created = false;
  if (op < 5) return static_cast<loomRedOp_t>(op);
  uint8_t scalar[8];
  storeValue(t, scalar, 0, 2.0);
  loomRedOp_t r;
  if (loomRedOpCreatePreMulSum(&r, scalar, t, loomScalarHostImmediate, c->comm) != loomSuccess)
    return loomNumOps;
  *created = true;
  return r;
}

// AllReduce, ReduceScatter, Reduce for one (type, op, count, placement).
bool reductions(Ctx* c, loomDataType_t t, int op, size_t count, bool inPlace) {
  const size_t es = typeSize(t);
  const int n = c->nranks, rank = c->rank;
  bool created;
  loomRedOp_t rop = makeOp(c, t, op, &created);
  bool ok = true;
  // AllReduce
  {
    Bytes in(count * es + 1), out(count * es + 1), want(count * es + 1);
    for (size_t i = 0; i < count; ++i) {
      storeValue(t, in.data(), i, reductionInput(op, rank, i));
      expectedReduction(t, op, n, i, want.data() + i * es);
    }
    Bytes orig = in;
    std::string w = where("allreduce", t, op, count, inPlace, rank);
    void* dst = inPlace ? in.data() : out.data();
    ok = callOk(c,
                run(c, {&in, &out},
                    [&](const Map& m, loomStream_t st) {
                      return loomAllReduce(m(in.data()), m(dst), count, t, rop, c->comm, st);
                    }),
                w) &&
         same(c, t, static_cast<uint8_t*>(dst), want.data(), count, w) &&
         (inPlace || same(c, t, in.data(), orig.data(), count, w + " (send buffer changed)"));
  }
  // ReduceScatter: rank r gets element block r.
  if (ok) {
    Bytes in(count * n * es + 1), out(count * es + 1), want(count * es + 1);
    for (size_t i = 0; i < count * n; ++i)
      storeValue(t, in.data(), i, reductionInput(op, rank, i));
    for (size_t i = 0; i < count; ++i)
      expectedReduction(t, op, n, rank * count + i, want.data() + i * es);
    std::string w = where("reducescatter", t, op, count, inPlace, rank);
    uint8_t* dst = inPlace ? in.data() + rank * count * es : out.data();
    ok = callOk(c,
                run(c, {&in, &out},
                    [&](const Map& m, loomStream_t st) {
                      return loomReduceScatter(m(in.data()), m(dst), count, t, rop, c->comm, st);
                    }),
                w) &&
         same(c, t, dst, want.data(), count, w);
  }
  // Reduce to a root that moves with the iteration.
  if (ok) {
    const int root = c->iteration++ % n;
    Bytes in(count * es + 1), out(count * es + 1), want(count * es + 1);
    for (size_t i = 0; i < count; ++i) {
      storeValue(t, in.data(), i, reductionInput(op, rank, i));
      expectedReduction(t, op, n, i, want.data() + i * es);
    }
    std::string w = where("reduce", t, op, count, inPlace, rank, root);
    // Non-roots pass a NULL receive buffer: the API says it is unused there.
    void* dst = rank != root ? nullptr : inPlace ? in.data() : out.data();
    ok = callOk(c,
                run(c, {&in, &out},
                    [&](const Map& m, loomStream_t st) {
                      return loomReduce(m(in.data()), m(dst), count, t, rop, root, c->comm, st);
                    }),
                w) &&
         (rank != root || same(c, t, static_cast<uint8_t*>(dst), want.data(), count, w));
  }
  if (created) loomRedOpDestroy(rop, c->comm);
  return ok;
}

bool movement(Ctx* c, loomDataType_t t, size_t count, bool inPlace) {
  const size_t es = typeSize(t);
  const int n = c->nranks, rank = c->rank;
  const int root = c->iteration++ % n;
  const size_t block = count * es;
  // AllGather
  {
    Bytes out(block * n + 1), want(block * n + 1), in(block + 1);
    for (int r = 0; r < n; ++r)
      for (size_t i = 0; i < count; ++i)
        storeValue(t, want.data(), r * count + i, payload(t, r, i));
    for (size_t i = 0; i < count; ++i)
      storeValue(t, in.data(), i, payload(t, rank, i));
    uint8_t* src = in.data();
    if (inPlace) {
      std::memcpy(out.data() + rank * block, in.data(), block);
      src = out.data() + rank * block;
    }
    std::string w = where("allgather", t, -1, count, inPlace, rank);
    if (!callOk(c,
                run(c, {&in, &out},
                    [&](const Map& m, loomStream_t st) {
                      return loomAllGather(m(src), m(out.data()), count, t, c->comm, st);
                    }),
                w) ||
        !same(c, t, out.data(), want.data(), count * n, w))
      return false;
  }
  // Broadcast (non-roots pass NULL send buffers)
  {
    Bytes buf(block + 1), in(block + 1), want(block + 1);
    for (size_t i = 0; i < count; ++i)
      storeValue(t, want.data(), i, payload(t, root, i));
    if (rank == root) in = want;
    if (rank == root && inPlace) buf = want;
    const void* src = rank != root ? nullptr : inPlace ? buf.data() : in.data();
    std::string w = where("broadcast", t, -1, count, inPlace, rank, root);
    if (!callOk(c,
                run(c, {&buf, &in},
                    [&](const Map& m, loomStream_t st) {
                      return loomBroadcast(m(src), m(buf.data()), count, t, root, c->comm, st);
                    }),
                w) ||
        !same(c, t, buf.data(), want.data(), count, w))
      return false;
  }
  // AllToAll: block j of rank r goes to rank j.
  {
    Bytes in(block * n + 1), out(block * n + 1), want(block * n + 1);
    for (int j = 0; j < n; ++j)
      for (size_t i = 0; i < count; ++i) {
        storeValue(t, in.data(), j * count + i, payload(t, rank * n + j, i));
        storeValue(t, want.data(), j * count + i, payload(t, j * n + rank, i));
      }
    uint8_t* dst = inPlace ? in.data() : out.data();
    std::string w = where("alltoall", t, -1, count, inPlace, rank);
    if (!callOk(c,
                run(c, {&in, &out},
                    [&](const Map& m, loomStream_t st) {
                      return loomAllToAll(m(in.data()), m(dst), count, t, c->comm, st);
                    }),
                w) ||
        !same(c, t, dst, want.data(), count * n, w))
      return false;
  }
  // Gather to root (non-roots pass NULL receive buffers)
  {
    Bytes in(block + 1), out(block * n + 1), want(block * n + 1);
    for (int r = 0; r < n; ++r)
      for (size_t i = 0; i < count; ++i)
        storeValue(t, want.data(), r * count + i, payload(t, r, i));
    for (size_t i = 0; i < count; ++i)
      storeValue(t, in.data(), i, payload(t, rank, i));
    const void* src = in.data();
    if (rank == root && inPlace) {
      std::memcpy(out.data() + root * block, in.data(), block);
      src = out.data() + root * block;
    }
    std::string w = where("gather", t, -1, count, inPlace, rank, root);
    void* dst = rank == root ? out.data() : nullptr;
    if (!callOk(c,
                run(c, {&in, &out},
                    [&](const Map& m, loomStream_t st) {
                      return loomGather(m(src), m(dst), count, t, root, c->comm, st);
                    }),
                w) ||
        (rank == root && !same(c, t, out.data(), want.data(), count * n, w)))
      return false;
  }
  // Scatter from root (non-roots pass NULL send buffers)
  {
    Bytes in(block * n + 1), out(block + 1), want(block + 1);
    for (int r = 0; r < n; ++r)
      for (size_t i = 0; i < count; ++i)
        storeValue(t, in.data(), r * count + i, payload(t, r, i));
    for (size_t i = 0; i < count; ++i)
      storeValue(t, want.data(), i, payload(t, rank, i));
    const void* src = rank == root ? in.data() : nullptr;
    uint8_t* dst = rank == root && inPlace ? in.data() + root * block : out.data();
    std::string w = where("scatter", t, -1, count, inPlace, rank, root);
    if (!callOk(c,
                run(c, {&in, &out},
                    [&](const Map& m, loomStream_t st) {
                      return loomScatter(m(src), m(dst), count, t, root, c->comm, st);
                    }),
                w) ||
        !same(c, t, dst, want.data(), count, w))
      return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> runSweep(loomComm_t comm, const SweepOptions& options) {
  std::vector<std::string> failures;
  Ctx c{comm, 0, 0, &failures};
  c.stream = options.stream;
  loomCommUserRank(comm, &c.rank);
  loomCommCount(comm, &c.nranks);
  std::vector<loomDataType_t> types = options.types;
  if (types.empty())
    for (int t = 0; t < loomNumTypes; ++t)
      types.push_back(static_cast<loomDataType_t>(t));
  for (loomDataType_t t : types)
    for (size_t count : options.counts)
      for (bool inPlace : {false, true}) {
        if (options.reductions)
          for (int op = 0; op <= 5; ++op)
            if (!reductions(&c, t, op, count, inPlace)) return failures;
        if (options.movement && !movement(&c, t, count, inPlace)) return failures;
      }
  return failures;
}

std::vector<std::string> runPointToPoint(loomComm_t comm, void* stream) {
  std::vector<std::string> failures;
  Ctx c{comm, 0, 0, &failures};
  c.stream = stream;
  loomCommUserRank(comm, &c.rank);
  loomCommCount(comm, &c.nranks);
  const int n = c.nranks, rank = c.rank;
  for (size_t count : {size_t{0}, size_t{1}, size_t{1000}, size_t{50000}}) {
    // Ring exchange: everyone sends right and receives from the left, in one group.
    Bytes outB(count * 4 + 1), inB(count * 4 + 1, 0xff);
    auto* out = reinterpret_cast<int32_t*>(outB.data());
    auto* in = reinterpret_cast<int32_t*>(inB.data());
    for (size_t i = 0; i < count; ++i)
      out[i] = static_cast<int32_t>(rank * 100000 + i);
    std::string w =
        "ring exchange count " + std::to_string(count) + " rank " + std::to_string(rank);
    loomResult_t r = run(&c, {&outB, &inB}, [&](const Map& m, loomStream_t st) {
      loomGroupStart();
      loomSend(m(out), count, loomInt32, (rank + 1) % n, comm, st);
      loomRecv(m(in), count, loomInt32, (rank + n - 1) % n, comm, st);
      return loomGroupEnd();
    });
    if (!callOk(&c, r, w)) return failures;
    for (size_t i = 0; i < count; ++i)
      if (in[i] != static_cast<int32_t>(((rank + n - 1) % n) * 100000 + i)) {
        failures.push_back(w + ": element " + std::to_string(i) + " wrong");
        return failures;
      }
    // All pairs, including self: everyone sends a distinct block to everyone.
    Bytes sendB(n * count * 8 + 1), recvB(n * count * 8 + 1, 0xff);
    auto* send = reinterpret_cast<int64_t*>(sendB.data());
    auto* recv = reinterpret_cast<int64_t*>(recvB.data());
    for (int p = 0; p < n; ++p)
      for (size_t i = 0; i < count; ++i)
        send[p * count + i] = rank * 1000003 + p * 1009 + i;
    w = "all-pairs exchange count " + std::to_string(count) + " rank " + std::to_string(rank);
    r = run(&c, {&sendB, &recvB}, [&](const Map& m, loomStream_t st) {
      loomGroupStart();
      for (int p = 0; p < n; ++p) {
        loomSend(m(send + p * count), count, loomInt64, p, comm, st);
        loomRecv(m(recv + p * count), count, loomInt64, p, comm, st);
      }
      return loomGroupEnd();
    });
    if (!callOk(&c, r, w)) return failures;
    for (int p = 0; p < n; ++p)
      for (size_t i = 0; i < count; ++i)
        if (recv[p * count + i] != static_cast<int64_t>(p * 1000003 + rank * 1009 + i)) {
          failures.push_back(w + ": from rank " + std::to_string(p) + " element " +
                             std::to_string(i) + " wrong");
          return failures;
        }
  }
  return failures;
}

void releaseDeviceMirrors() {
  std::lock_guard<std::mutex> lock(gMirrorsMu);
  for (auto& [stream, m] : mirrors()) {
    for (auto& [ptr, size] : m.slots)
      cuda::deviceFree(ptr);
    for (void* ptr : m.retired)
      cuda::deviceFree(ptr);
  }
  mirrors().clear();
}

}  // namespace loom::test
