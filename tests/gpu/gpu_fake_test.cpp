// The GPU path's host side, on the emulated device (cuda::testing::useFakeDevice): argument
// checks, the staged path through groups, the communicator's worker and its ordering on
// streams, with ranks as threads and as processes. It runs everywhere; gpu_test runs the same
// sweep on a real GPU.
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>
#include <vector>

#include "api/handles.h"
#include "base/config.h"
#include "base/cuda.h"
#include "launcher.h"
#include "loom/loom.h"
#include "ranks.h"
#include "runtime/device_direct.h"
#include "runtime/device_ipc.h"
#include "sweep.h"

namespace loom::test {
namespace {

// Before main: the emulation must be in place before anything asks about CUDA.
const bool kFake = [] {
  cuda::testing::useFakeDevice();
  // A small staging budget, so that calls issued without synchronising wait for earlier ones.
  setenv("LOOM_CUDA_STAGE_BYTES", "1048576", 1);
  // Small CUDA IPC windows (ctest's ipc.* instance), so that calls run in several chunks.
  setenv("LOOM_CUDA_IPC_BYTES", "65536", 1);
  return true;
}();

// ctest runs this program three times: as is (device calls are staged through host memory),
// as direct.* with LOOM_CUDA_DIRECT=1 (ranks that are threads read each other's device
// buffers) and as ipc.* with LOOM_CUDA_IPC=1 (ranks read each other's CUDA IPC windows).
bool directMode() {
  return Config::processDefaults().cudaDirect;
}
bool ipcMode() {
  return !directMode() && Config::processDefaults().cudaIpc;
}

std::vector<loomComm_t> initAll(int n, const char* transport) {
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.transport = transport;
  cfg.timeoutMs = 60000;
  std::vector<loomComm_t> comms(n);
  EXPECT_EQ(loomCommInitAll(comms.data(), n, nullptr, &cfg), loomSuccess)
      << loomGetLastError(nullptr);
  return comms;
}

// Every covered call of ranks as threads takes the direct path; the sweep (which also runs
// there) proves its results, this proves it was taken and that a mismatch is reported.
TEST(FakeGpuDirect, CoveredCallsReadPeersDirectlyAndMismatchesAreInvalidUsage) {
  if (!directMode()) GTEST_SKIP() << "runs with LOOM_CUDA_DIRECT=1 (ctest: direct.*)";
  const int n = 3;
  const size_t count = 1000;
  std::vector<loomComm_t> comms = initAll(n, "loopback");
  const uint64_t before = runtime::DeviceDirect::callsHandled();
  onEveryRank(n, [&](int r) {
    std::vector<std::string> f;
    void *stream = nullptr, *buf = nullptr;
    if (!cuda::streamCreate(&stream).isOk() || !cuda::deviceAlloc(count * 4, &buf).isOk())
      return std::vector<std::string>{"setup failed"};
    std::vector<int32_t> v(count, r + 1), back(count);
    cuda::memcpyAsync(buf, v.data(), count * 4, stream).ignoreError();
    if (loomAllReduce(buf, buf, count, loomInt32, loomSum, comms[r], stream) != loomSuccess)
      f.push_back(std::string("allreduce: ") + loomGetLastError(comms[r]));
    cuda::memcpyAsync(back.data(), buf, count * 4, stream).ignoreError();
    if (back[0] != 6 || back[count - 1] != 6) f.push_back("sum " + std::to_string(back[0]));
    // Rank 0 broadcasts while the others all-reduce: every rank is told.
    const loomResult_t res =
        r == 0 ? loomBroadcast(buf, buf, count, loomInt32, 0, comms[r], stream)
               : loomAllReduce(buf, buf, count, loomInt32, loomSum, comms[r], stream);
    if (res != loomInvalidUsage)
      f.push_back("a mismatched call returned " + std::string(loomGetErrorString(res)));
    else if (std::string(loomGetLastError(comms[r])).find("different device call") ==
             std::string::npos)
      f.push_back(std::string("mismatch message: ") + loomGetLastError(comms[r]));
    cuda::deviceFree(buf);
    cuda::streamDestroy(stream);
    return f;
  });
  EXPECT_EQ(runtime::DeviceDirect::callsHandled() - before, static_cast<uint64_t>(n));
  for (loomComm_t c : comms)
    EXPECT_EQ(loomCommDestroy(c), loomSuccess);
}

// Every covered call goes through the windows, in chunks (65536-byte windows), with ranks as
// threads (they use each other's window pointers) and as processes (they map each other's
// windows; the worker checks the path it took); the sweeps prove the results.
TEST(FakeGpuIpc, CoveredCallsGoThroughTheWindowsInChunks) {
  if (!ipcMode()) GTEST_SKIP() << "runs with LOOM_CUDA_IPC=1 (ctest: ipc.*)";
  const int n = 3;
  const size_t count = 40000;  // 160 KB of int32: 3 chunks; a ReduceScatter chunk is 5461
  std::vector<loomComm_t> comms = initAll(n, "loopback");
  const uint64_t before = runtime::DeviceIpc::callsHandled();
  const uint64_t staged = runtime::DeviceIpc::callsStaged();
  const uint64_t twoShot = runtime::DeviceIpc::callsTwoShot();
  onEveryRank(n, [&](int r) {
    std::vector<std::string> f;
    void *stream = nullptr, *buf = nullptr, *out = nullptr;
    if (!cuda::streamCreate(&stream).isOk() || !cuda::deviceAlloc(count * 4, &buf).isOk() ||
        !cuda::deviceAlloc(count * 4 * n, &out).isOk())
      return std::vector<std::string>{"setup failed"};
    std::vector<int32_t> v(count), back(count * n);
    for (size_t i = 0; i < count; ++i)
      v[i] = static_cast<int32_t>(i % 1000) + r;
    cuda::memcpyAsync(buf, v.data(), count * 4, stream).ignoreError();
    if (loomAllReduce(buf, out, count, loomInt32, loomMax, comms[r], stream) != loomSuccess)
      f.push_back(std::string("allreduce: ") + loomGetLastError(comms[r]));
    cuda::memcpyAsync(back.data(), out, count * 4, stream).ignoreError();
    for (size_t i = 0; i < count && f.empty(); ++i)
      if (back[i] != static_cast<int32_t>(i % 1000) + n - 1)
        f.push_back("max at " + std::to_string(i) + ": " + std::to_string(back[i]));
    // 3 x 160 KB: two-shot (at least 256 KiB on 3 ranks), 8 chunks of 16384, slices of
    // 5461/5461/5462 elements; in place.
    std::vector<int32_t> big(count * n);
    for (size_t i = 0; i < big.size(); ++i)
      big[i] = static_cast<int32_t>((i * 7 + r) % 100003);
    cuda::memcpyAsync(out, big.data(), big.size() * 4, stream).ignoreError();
    if (loomAllReduce(out, out, big.size(), loomInt32, loomSum, comms[r], stream) != loomSuccess)
      f.push_back(std::string("two-shot allreduce: ") + loomGetLastError(comms[r]));
    cuda::memcpyAsync(back.data(), out, big.size() * 4, stream).ignoreError();
    for (size_t i = 0; i < big.size() && f.empty(); ++i) {
      int32_t want = 0;
      for (int p = 0; p < n; ++p)
        want += static_cast<int32_t>((i * 7 + p) % 100003);
      if (back[i] != want) f.push_back("two-shot sum at " + std::to_string(i));
    }
    if (loomAllGather(buf, out, count, loomInt32, comms[r], stream) != loomSuccess)
      f.push_back(std::string("allgather: ") + loomGetLastError(comms[r]));
    cuda::memcpyAsync(back.data(), out, count * 4 * n, stream).ignoreError();
    for (int p = 0; p < n && f.empty(); ++p)
      for (size_t i = 0; i < count && f.empty(); ++i)
        if (back[p * count + i] != static_cast<int32_t>(i % 1000) + p)
          f.push_back("gather from " + std::to_string(p) + " at " + std::to_string(i));
    cuda::deviceFree(buf);
    cuda::deviceFree(out);
    cuda::streamDestroy(stream);
    return f;
  });
  EXPECT_EQ(runtime::DeviceIpc::callsHandled() - before, static_cast<uint64_t>(3 * n));
  EXPECT_EQ(runtime::DeviceIpc::callsTwoShot() - twoShot, static_cast<uint64_t>(n));
  EXPECT_EQ(runtime::DeviceIpc::callsStaged(), staged);
  loomCounters_t counters;
  ASSERT_EQ(loomCommGetCounters(comms[0], &counters), loomSuccess);
  EXPECT_EQ(counters.calls[loomCollAllReduce], 2u) << "the windows' barriers are not counted";
  for (loomComm_t c : comms)
    EXPECT_EQ(loomCommDestroy(c), loomSuccess);
}

// Where the windows cannot be set up (here: the emulation refuses IPC memory), every rank says
// so and runs its calls through host memory on the worker: still exact, nothing hangs.
TEST(FakeGpuIpc, WithoutWindowsEveryRankFallsBackToHostMemory) {
  if (!ipcMode()) GTEST_SKIP() << "runs with LOOM_CUDA_IPC=1 (ctest: ipc.*)";
  cuda::testing::refuseIpc(true);
  const int n = 3;
  std::vector<loomComm_t> comms = initAll(n, "loopback");
  const uint64_t handled = runtime::DeviceIpc::callsHandled();
  const uint64_t staged = runtime::DeviceIpc::callsStaged();
  std::vector<void*> streams(n, nullptr);
  onEveryRank(n, [&](int r) {
    if (!cuda::streamCreate(&streams[r]).isOk()) return std::vector<std::string>{"no stream"};
    SweepOptions o;
    o.counts = {1, 1000};
    o.stream = streams[r];
    return runSweep(comms[r], o);
  });
  cuda::testing::refuseIpc(false);
  releaseDeviceMirrors();
  for (void* s : streams)
    cuda::streamDestroy(s);
  EXPECT_EQ(runtime::DeviceIpc::callsHandled(), handled);
  EXPECT_GT(runtime::DeviceIpc::callsStaged(), staged);
  for (loomComm_t c : comms)
    EXPECT_EQ(loomCommDestroy(c), loomSuccess);
}

struct Param {
  const char* transport;
  int nranks;
};

class FakeGpuThreads : public testing::TestWithParam<Param> {};

TEST_P(FakeGpuThreads, EveryCollectiveTypeAndOpIsExactOnDeviceBuffers) {
  ASSERT_TRUE(kFake && cuda::available());
  const int n = GetParam().nranks;
  std::vector<loomComm_t> comms = initAll(n, GetParam().transport);
  std::vector<void*> streams(n, nullptr);
  onEveryRank(n, [&](int r) {
    if (!cuda::streamCreate(&streams[r]).isOk()) return std::vector<std::string>{"no stream"};
    void* stream = streams[r];
    SweepOptions o;
    o.counts = {0, 1, 7, 1000};
    o.stream = stream;
    std::vector<std::string> f = runSweep(comms[r], o);
    std::vector<std::string> p = runPointToPoint(comms[r], stream);
    f.insert(f.end(), p.begin(), p.end());
    return f;
  });
  releaseDeviceMirrors();  // every rank is done
  for (void* s : streams)
    cuda::streamDestroy(s);
  for (loomComm_t c : comms)
    EXPECT_EQ(loomCommDestroy(c), loomSuccess);
}

INSTANTIATE_TEST_SUITE_P(Emulated, FakeGpuThreads,
                         testing::Values(Param{"loopback", 1}, Param{"loopback", 3},
                                         Param{"shm", 2}),
                         [](const testing::TestParamInfo<Param>& i) {
                           return std::string(i.param.transport) + "_" +
                                  std::to_string(i.param.nranks) + "ranks";
                         });

// One thread drives every rank in one group (loomCommInitAll's use): the group returns at
// once, each communicator's worker runs its part when the streams reach it.
TEST(FakeGpu, OneThreadDrivesEveryRankThroughAGroupOfDeviceCalls) {
  const int n = 4;
  const size_t count = 1000;
  std::vector<loomComm_t> comms = initAll(n, "loopback");
  std::vector<void*> streams(n), in(n), out(n);
  for (int r = 0; r < n; ++r) {
    ASSERT_TRUE(cuda::streamCreate(&streams[r]).isOk());
    ASSERT_TRUE(cuda::deviceAlloc(count * 4, &in[r]).isOk());
    ASSERT_TRUE(cuda::deviceAlloc(count * 4, &out[r]).isOk());
    std::vector<float> v(count, static_cast<float>(r + 1));
    ASSERT_TRUE(cuda::memcpyAsync(in[r], v.data(), count * 4, streams[r]).isOk());
  }
  ASSERT_EQ(loomGroupStart(), loomSuccess);
  for (int r = 0; r < n; ++r)
    ASSERT_EQ(loomAllReduce(in[r], out[r], count, loomFloat32, loomSum, comms[r], streams[r]),
              loomSuccess)
        << loomGetLastError(comms[r]);
  ASSERT_EQ(loomGroupEnd(), loomSuccess);
  for (int r = 0; r < n; ++r) {
    std::vector<float> v(count, 0.0f);
    ASSERT_TRUE(cuda::memcpyAsync(v.data(), out[r], count * 4, streams[r]).isOk());
    ASSERT_TRUE(cuda::streamSynchronize(streams[r]).isOk());
    EXPECT_EQ(v[0], 10.0f);
    EXPECT_EQ(v[count - 1], 10.0f);
    cuda::deviceFree(in[r]);
    cuda::deviceFree(out[r]);
    cuda::streamDestroy(streams[r]);
  }
  for (loomComm_t c : comms)
    EXPECT_EQ(loomCommDestroy(c), loomSuccess);
}

// Issue order holds across kinds: a host call after a device call on the same communicator
// waits for it (it queues behind the worker), and sees the same sequence on every rank.
TEST(FakeGpu, HostCallsAfterDeviceCallsKeepTheirOrder) {
  const int n = 2;
  std::vector<loomComm_t> comms = initAll(n, "loopback");
  onEveryRank(n, [&](int r) {
    std::vector<std::string> f;
    void* stream = nullptr;
    void* dev = nullptr;
    if (!cuda::streamCreate(&stream).isOk() || !cuda::deviceAlloc(64 * 4, &dev).isOk())
      return std::vector<std::string>{"no stream"};
    for (int i = 0; i < 20; ++i) {
      std::vector<int32_t> v(64, r + i), back(64);
      cuda::memcpyAsync(dev, v.data(), 64 * 4, stream).ignoreError();
      if (loomAllReduce(dev, dev, 64, loomInt32, loomSum, comms[r], stream) != loomSuccess)
        f.push_back(std::string("device allreduce: ") + loomGetLastError(comms[r]));
      int32_t h = 100 * i + r, hs = 0;
      if (loomAllReduce(&h, &hs, 1, loomInt32, loomSum, comms[r], nullptr) != loomSuccess)
        f.push_back(std::string("host allreduce: ") + loomGetLastError(comms[r]));
      if (hs != 200 * i + 1) f.push_back("host allreduce " + std::to_string(i) + " wrong");
      cuda::memcpyAsync(back.data(), dev, 64 * 4, stream).ignoreError();
      cuda::streamSynchronize(stream).ignoreError();
      if (back[63] != 2 * i + 1) f.push_back("device allreduce " + std::to_string(i) + " wrong");
    }
    cuda::deviceFree(dev);
    cuda::streamDestroy(stream);
    return f;
  });
  for (loomComm_t c : comms)
    EXPECT_EQ(loomCommDestroy(c), loomSuccess);
}

TEST(FakeGpu, MixedOrMisplacedBuffersAreInvalidArgument) {
  std::vector<loomComm_t> comms = initAll(1, "loopback");
  void* dev = nullptr;
  void* stream = nullptr;
  ASSERT_TRUE(cuda::deviceAlloc(64, &dev).isOk());
  ASSERT_TRUE(cuda::streamCreate(&stream).isOk());
  float host[16] = {};
  EXPECT_EQ(loomAllReduce(host, dev, 16, loomFloat32, loomSum, comms[0], stream),
            loomInvalidArgument);
  EXPECT_NE(std::string(loomGetLastError(comms[0])).find("one call takes one kind"),
            std::string::npos)
      << loomGetLastError(comms[0]);
  EXPECT_EQ(loomAllReduce(host, host, 16, loomFloat32, loomSum, comms[0], stream),
            loomInvalidArgument);
  EXPECT_NE(std::string(loomGetLastError(comms[0])).find("host buffers"), std::string::npos);
  // Device buffers with a NULL stream use the default stream.
  EXPECT_EQ(loomAllReduce(dev, dev, 16, loomFloat32, loomSum, comms[0], nullptr), loomSuccess)
      << loomGetLastError(comms[0]);
  EXPECT_TRUE(cuda::streamSynchronize(nullptr).isOk());
  cuda::deviceFree(dev);
  cuda::streamDestroy(stream);
  EXPECT_EQ(loomCommDestroy(comms[0]), loomSuccess);
}

// PreMulSum with its scalar in device memory (loomScalarDevice): each call reads the scalar
// in stream order, so a new value written on the stream before a call is the one it uses.
TEST(FakeGpu, ADeviceScalarIsReadInStreamOrder) {
  const int n = 2;
  const size_t count = 100;
  std::vector<loomComm_t> comms = initAll(n, "loopback");
  onEveryRank(n, [&](int r) {
    std::vector<std::string> f;
    void *stream = nullptr, *scalar = nullptr, *buf = nullptr;
    if (!cuda::streamCreate(&stream).isOk() || !cuda::deviceAlloc(sizeof(float), &scalar).isOk() ||
        !cuda::deviceAlloc(count * sizeof(float), &buf).isOk())
      return std::vector<std::string>{"setup failed"};
    loomRedOp_t op;
    if (loomRedOpCreatePreMulSum(&op, scalar, loomFloat32, loomScalarDevice, comms[r]) !=
        loomSuccess)
      return std::vector<std::string>{std::string("create: ") + loomGetLastError(comms[r])};
    for (float k : {3.0f, 0.5f}) {
      std::vector<float> in(count, static_cast<float>(r + 1)), out(count);
      cuda::memcpyAsync(scalar, &k, sizeof(k), stream).ignoreError();
      cuda::memcpyAsync(buf, in.data(), count * sizeof(float), stream).ignoreError();
      if (loomAllReduce(buf, buf, count, loomFloat32, op, comms[r], stream) != loomSuccess)
        f.push_back(std::string("allreduce: ") + loomGetLastError(comms[r]));
      cuda::memcpyAsync(out.data(), buf, count * sizeof(float), stream).ignoreError();
      if (out[0] != k * 3.0f || out[count - 1] != k * 3.0f)
        f.push_back("scalar " + std::to_string(k) + ": got " + std::to_string(out[0]));
    }
    // The op's scalar is on the device: a host call cannot use it.
    float h = 1, hout = 0;
    if (loomAllReduce(&h, &hout, 1, loomFloat32, op, comms[r], nullptr) != loomInvalidUsage)
      f.push_back("a host call with a device-scalar op was not InvalidUsage");
    loomRedOpDestroy(op, comms[r]);
    cuda::deviceFree(scalar);
    cuda::deviceFree(buf);
    cuda::streamDestroy(stream);
    return f;
  });
  for (loomComm_t c : comms)
    EXPECT_EQ(loomCommDestroy(c), loomSuccess);
}

TEST(StageBudget, WaitsWhileOverItsCapExceptAloneOrWhenTold) {
  cuda::StageBudget b(100);
  std::atomic<bool> abort{false};
  ASSERT_TRUE(b.acquire(150, true, Deadline::afterMs(1000), &abort).isOk());  // alone: allowed
  ASSERT_TRUE(b.acquire(10, false, Deadline::afterMs(1000), &abort).isOk());  // told not to wait
  EXPECT_EQ(b.held(), 160u);
  Status s = b.acquire(10, true, Deadline::afterMs(50), &abort);
  EXPECT_EQ(s.code(), Code::kTimeout) << s.toString();
  EXPECT_NE(s.message().find("LOOM_CUDA_STAGE_BYTES"), std::string::npos);
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    b.release(150);
  });
  EXPECT_TRUE(b.acquire(50, true, Deadline::afterMs(5000), &abort).isOk());  // after the release
  releaser.join();
  EXPECT_EQ(b.held(), 60u);
  std::thread aborter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    abort = true;
  });
  EXPECT_EQ(b.acquire(100, true, Deadline::afterMs(5000), &abort).code(), Code::kAborted);
  aborter.join();
}

// Many large calls issued without synchronising: the budget (1 MiB here) holds the pinned
// memory in use to about itself, and every result is right.
TEST(FakeGpu, CallsIssuedWithoutSynchronisingStayWithinTheStagingBudget) {
  const int n = 2, calls = 16;
  const size_t count = 65536;  // 256 KiB of floats: send and recv copies 512 KiB per call
  std::vector<loomComm_t> comms = initAll(n, "loopback");
  std::vector<size_t> most(n, 0);
  std::vector<void*> streams(n, nullptr);
  std::vector<std::vector<void*>> bufs(n, std::vector<void*>(2 * calls, nullptr));
  onEveryRank(n, [&](int r) {
    std::vector<std::string> f;
    if (!cuda::streamCreate(&streams[r]).isOk()) return std::vector<std::string>{"no stream"};
    std::vector<float> v(count, static_cast<float>(r + 1));
    for (void*& b : bufs[r])
      if (!cuda::deviceAlloc(count * 4, &b).isOk()) return std::vector<std::string>{"alloc"};
    const auto& budget = comms[r]->comm->stageBudget();
    for (int i = 0; i < calls; ++i) {
      cuda::memcpyAsync(bufs[r][2 * i], v.data(), count * 4, streams[r]).ignoreError();
      if (loomAllReduce(bufs[r][2 * i], bufs[r][2 * i + 1], count, loomFloat32, loomSum, comms[r],
                        streams[r]) != loomSuccess)
        f.push_back(std::string("allreduce: ") + loomGetLastError(comms[r]));
      most[r] = std::max(most[r], budget->held());
    }
    for (int i = 0; i < calls; ++i) {
      std::vector<float> back(count);
      cuda::memcpyAsync(back.data(), bufs[r][2 * i + 1], count * 4, streams[r]).ignoreError();
      if (back[0] != 3.0f || back[count - 1] != 3.0f)
        f.push_back("call " + std::to_string(i) + ": " + std::to_string(back[0]));
    }
    return f;
  });
  for (int r = 0; r < n; ++r) {
    EXPECT_LE(most[r], size_t{1048576}) << "rank " << r;
    if (directMode() || ipcMode())
      EXPECT_EQ(most[r], 0u) << "rank " << r << ": the direct and IPC paths stage nothing";
    else
      EXPECT_GT(most[r], 0u) << "rank " << r;
  }
  for (int r = 0; r < n; ++r) {
    for (void* b : bufs[r])
      cuda::deviceFree(b);
    cuda::streamDestroy(streams[r]);
  }
  for (loomComm_t c : comms)
    EXPECT_EQ(loomCommDestroy(c), loomSuccess);
}

// A peer that never arrives: the device call fails with the communicator's timeout, the error
// is sticky, and the stream is released (it does not wait forever).
TEST(FakeGpu, APeerThatNeverComesTimesOutAndReleasesTheStream) {
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.transport = "loopback";
  cfg.timeoutMs = 1000;
  std::vector<loomComm_t> comms(2);
  ASSERT_EQ(loomCommInitAll(comms.data(), 2, nullptr, &cfg), loomSuccess);
  void* stream = nullptr;
  void* dev = nullptr;
  ASSERT_TRUE(cuda::streamCreate(&stream).isOk());
  ASSERT_TRUE(cuda::deviceAlloc(1024, &dev).isOk());
  // Rank 0 alone: it waits for rank 1, which never calls. Staged, the worker waits and the call
  // returns at once; direct, the issuing thread waits for its peers and the call times out.
  const loomResult_t first = loomAllReduce(dev, dev, 256, loomFloat32, loomSum, comms[0], stream);
  ASSERT_EQ(first, directMode() ? loomTimeout : loomSuccess) << loomGetLastError(comms[0]);
  ASSERT_TRUE(cuda::streamSynchronize(stream).isOk());  // returns: the stream was released
  loomResult_t async = loomSuccess;
  ASSERT_EQ(loomCommGetAsyncError(comms[0], &async), loomSuccess);
  EXPECT_EQ(async, loomTimeout) << loomGetLastError(comms[0]);
  // Sticky: the next call reports it at once.
  EXPECT_EQ(loomAllReduce(dev, dev, 256, loomFloat32, loomSum, comms[0], stream), loomTimeout);
  cuda::deviceFree(dev);
  cuda::streamDestroy(stream);
  loomCommAbort(comms[0]);
  loomCommAbort(comms[1]);
}

// Ranks as processes: the worker's device sweep on the emulation, over shared memory.
TEST(FakeGpu, EveryCollectiveIsExactWithProcesses) {
  LaunchResult res = launchRanks(siblingBinary("../multiproc/loom_test_worker"), {"gpu-sweep"}, 3,
                                 {{"LOOM_TRANSPORT", "shm"}, {"LOOM_TEST_FAKE_GPU", "1"}}, 240000);
  EXPECT_FALSE(res.timedOut);
  for (size_t r = 0; r < res.ranks.size(); ++r)
    EXPECT_EQ(res.ranks[r].exitCode, 0) << "rank " << r << ":\n" << res.ranks[r].output;
}

}  // namespace
}  // namespace loom::test
