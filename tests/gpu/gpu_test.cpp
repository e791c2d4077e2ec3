// The GPU path (DESIGN.md section 4, docs/GPU.md): device buffers on CUDA streams.
//
// Without a usable GPU (no driver, no device, or a build without CUDA) the tests that need one
// skip with the reason, and the tests of what happens then (clear errors, host collectives
// unaffected) run. With a GPU everything runs: the device reduction kernels against the host
// kernels, the collective sweep on device buffers with several ranks on one GPU as threads and
// as processes, and the stream semantics (the call returns at once, later work sees the result).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "base/cuda.h"
#include "base/reduce.h"
#include "launcher.h"
#include "loom/loom.h"
#include "loom_features.h"
#include "ranks.h"
#include "sweep.h"
#include "values.h"

#if LOOM_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace loom::test {
namespace {

// ctest runs this program twice: as is (staged path) and as direct.* with LOOM_CUDA_DIRECT=1
// (ranks that are threads read each other's device buffers).

#define SKIP_WITHOUT_GPU()                                                  \
  do {                                                                      \
    std::string why_;                                                       \
    if (!cuda::available(&why_)) GTEST_SKIP() << "no usable GPU: " << why_; \
  } while (0)

// ---- without a GPU ------------------------------------------------------------------------

TEST(GpuUnavailable, SaysWhyAndKeepsEveryPointerOnTheHost) {
  std::string why;
  if (cuda::available(&why)) GTEST_SKIP() << "a GPU is usable here";
  EXPECT_FALSE(why.empty());
  EXPECT_EQ(cuda::deviceCount(), 0);
  float x[4] = {};
  EXPECT_EQ(cuda::pointerInfo(x).memory, cuda::Memory::kHost);
  cuda::StreamStage::Buffers buffers;
  buffers.send = x;
  buffers.sendBytes = sizeof(x);
  buffers.recv = x;
  buffers.recvBytes = sizeof(x);
  auto stage = cuda::StreamStage::create(nullptr, buffers);
  ASSERT_FALSE(stage.isOk());
  EXPECT_EQ(stage.status().code(), Code::kCudaError);
  EXPECT_NE(stage.status().message().find(why), std::string::npos) << stage.status().toString();
}

TEST(GpuUnavailable, AStreamIsInvalidUsageWithTheReasonAndHostCallsStillWork) {
  std::string why;
  if (cuda::available(&why)) GTEST_SKIP() << "a GPU is usable here";
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.transport = "loopback";
  loomComm_t comm;
  ASSERT_EQ(loomCommInitAll(&comm, 1, nullptr, &cfg), loomSuccess);
  float in = 3, out = 0;
  int fakeStream = 0;
  EXPECT_EQ(loomAllReduce(&in, &out, 1, loomFloat32, loomSum, comm, &fakeStream), loomInvalidUsage);
  EXPECT_NE(std::string(loomGetLastError(comm)).find(why), std::string::npos)
      << loomGetLastError(comm);
  EXPECT_EQ(loomAllReduce(&in, &out, 1, loomFloat32, loomSum, comm, nullptr), loomSuccess);
  EXPECT_EQ(out, 3.0f);
  loomRedOp_t op;
  EXPECT_EQ(loomRedOpCreatePreMulSum(&op, &in, loomFloat32, loomScalarDevice, comm),
            loomInvalidUsage);
  EXPECT_NE(std::string(loomGetLastError(comm)).find(why), std::string::npos)
      << loomGetLastError(comm);
  EXPECT_EQ(loomCommDestroy(comm), loomSuccess);
}

// ---- kernels ------------------------------------------------------------------------------

// Device reduceN equals host reduceN bit for bit: every dtype and op, source counts that
// take one and two passes, and misaligned starts (the scalar path) beside aligned ones.
TEST(GpuKernels, ReduceNMatchesTheHostKernels) {
  SKIP_WITHOUT_GPU();
  void* stream = nullptr;
  ASSERT_TRUE(cuda::streamCreate(&stream).isOk());
  for (int ti = 0; ti < kNumDataTypes; ++ti) {
    const auto type = static_cast<DataType>(ti);
    const auto ctype = static_cast<loomDataType_t>(ti);
    const size_t es = dataTypeSize(type);
    const bool half = type == DataType::kFloat16 || type == DataType::kBfloat16 ||
                      type == DataType::kFloat8e4m3 || type == DataType::kFloat8e5m2;
    for (int op = 0; op < 4; ++op)
      for (int nsrcs : {1, 2, 3, 8, 40})
        for (size_t count : {size_t{1}, size_t{7}, size_t{4099}, size_t{(1 << 18) + 3}})
          for (size_t shift : {size_t{0}, es}) {
            // Over 32 sources reduce in two passes, which rounds half types twice.
            if (nsrcs > 32 && half) continue;
            std::vector<std::vector<uint8_t>> host(nsrcs, std::vector<uint8_t>(count * es));
            for (int k = 0; k < nsrcs; ++k)
              for (size_t i = 0; i < count; ++i)
                storeValue(ctype, host[k].data(), i, reductionInput(op, k, i));
            std::vector<const void*> hostPtrs;
            for (auto& h : host)
              hostPtrs.push_back(h.data());
            std::vector<uint8_t> want(count * es), got(count * es);
            reduceN(type, static_cast<RedOpKind>(op), want.data(), hostPtrs.data(), nsrcs, count);

            std::vector<void*> dev(nsrcs + 1);
            for (int k = 0; k <= nsrcs; ++k)
              ASSERT_TRUE(cuda::deviceAlloc(count * es + 16, &dev[k]).isOk());
            std::vector<const void*> devPtrs;
            for (int k = 0; k < nsrcs; ++k) {
              void* at = static_cast<uint8_t*>(dev[k]) + shift;
              ASSERT_TRUE(cuda::memcpyAsync(at, host[k].data(), count * es, stream).isOk());
              devPtrs.push_back(at);
            }
            void* dst = static_cast<uint8_t*>(dev[nsrcs]) + shift;
            ASSERT_TRUE(cuda::reduceN(type, static_cast<RedOpKind>(op), dst, devPtrs.data(), nsrcs,
                                      count, stream)
                            .isOk());
            ASSERT_TRUE(cuda::memcpyAsync(got.data(), dst, count * es, stream).isOk());
            ASSERT_TRUE(cuda::streamSynchronize(stream).isOk());
            for (void* d : dev)
              cuda::deviceFree(d);
            ASSERT_EQ(std::memcmp(got.data(), want.data(), count * es), 0)
                << typeName(ctype) << " " << opName(op) << " nsrcs " << nsrcs << " count " << count
                << " shift " << shift;
          }
  }
  cuda::streamDestroy(stream);
}

// ---- collectives on device buffers --------------------------------------------------------

class GpuThreads : public testing::TestWithParam<int> {};

// Several ranks on ONE GPU, as threads, each with its own stream (NCCL refuses this setup).
TEST_P(GpuThreads, EveryCollectiveTypeAndOpIsExactOnDeviceBuffers) {
  SKIP_WITHOUT_GPU();
  const int n = GetParam();
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.transport = "loopback";
  cfg.timeoutMs = 60000;
  std::vector<loomComm_t> comms(n);
  ASSERT_EQ(loomCommInitAll(comms.data(), n, nullptr, &cfg), loomSuccess)
      << loomGetLastError(nullptr);
  std::vector<void*> streams(n, nullptr);
  onEveryRank(n, [&](int r) {
    std::vector<std::string> f;
    if (!cuda::setDevice(0).isOk() || !cuda::streamCreate(&streams[r]).isOk())
      return std::vector<std::string>{"stream creation failed"};
    void* stream = streams[r];
    SweepOptions o;
    o.counts = {0, 1, 7, 1000, 70000};
    o.stream = stream;
    f = runSweep(comms[r], o);
    std::vector<std::string> p = runPointToPoint(comms[r], stream);
    f.insert(f.end(), p.begin(), p.end());
    return f;
  });
  releaseDeviceMirrors();  // every rank is done
  for (void* s : streams)
    cuda::streamDestroy(s);
  for (loomComm_t c : comms)
    EXPECT_EQ(loomCommDestroy(c), loomSuccess);
  EXPECT_GT(cuda::pooledPinnedBytes(), 0u) << "the staging memory went back to its pool";
}

INSTANTIATE_TEST_SUITE_P(OneGpu, GpuThreads, testing::Values(1, 2, 4));

// Ranks as processes on one GPU: the worker's sweep on device buffers.
TEST(GpuProcesses, EveryCollectiveIsExactWithTwoAndFourProcessesOnOneGpu) {
  SKIP_WITHOUT_GPU();
  for (int n : {2, 4}) {
    LaunchResult res = launchRanks(siblingBinary("../multiproc/loom_test_worker"), {"gpu-sweep"}, n,
                                   {{"LOOM_TRANSPORT", "shm"}}, 300000);
    EXPECT_FALSE(res.timedOut);
    for (size_t r = 0; r < res.ranks.size(); ++r)
      EXPECT_EQ(res.ranks[r].exitCode, 0) << "rank " << r << " of " << n << ":\n"
                                          << res.ranks[r].output;
  }
}

#if LOOM_HAVE_CUDA
// The call returns while the stream is still busy with earlier work, and the result is there
// for the work after it: a host function holds the stream until the test releases it.
void CUDART_CB holdStream(void* flag) {
  auto* f = static_cast<std::atomic<bool>*>(flag);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!f->load() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

TEST(GpuStream, TheCallReturnsAtOnceAndLaterWorkSeesTheResult) {
  SKIP_WITHOUT_GPU();
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.transport = "loopback";
  loomComm_t comm;
  ASSERT_EQ(loomCommInitAll(&comm, 1, nullptr, &cfg), loomSuccess);
  void* stream = nullptr;
  ASSERT_TRUE(cuda::streamCreate(&stream).isOk());
  const size_t count = 1 << 20;
  std::vector<float> host(count, 1.5f), back(count, 0.0f);
  void *in = nullptr, *out = nullptr;
  ASSERT_TRUE(cuda::deviceAlloc(count * 4, &in).isOk());
  ASSERT_TRUE(cuda::deviceAlloc(count * 4, &out).isOk());
  std::atomic<bool> release{false};
  ASSERT_EQ(cudaLaunchHostFunc(static_cast<cudaStream_t>(stream), holdStream, &release),
            cudaSuccess);
  ASSERT_TRUE(cuda::memcpyAsync(in, host.data(), count * 4, stream).isOk());
  EXPECT_EQ(loomAllReduce(in, out, count, loomFloat32, loomSum, comm, stream), loomSuccess)
      << loomGetLastError(comm);
  // Returned although the stream cannot have reached the collective.
  EXPECT_EQ(cudaStreamQuery(static_cast<cudaStream_t>(stream)), cudaErrorNotReady);
  ASSERT_TRUE(cuda::memcpyAsync(back.data(), out, count * 4, stream).isOk());
  release = true;
  ASSERT_TRUE(cuda::streamSynchronize(stream).isOk());
  EXPECT_EQ(back[0], 1.5f);
  EXPECT_EQ(back[count - 1], 1.5f);
  cuda::deviceFree(in);
  cuda::deviceFree(out);
  cuda::streamDestroy(stream);
  EXPECT_EQ(loomCommDestroy(comm), loomSuccess);
}

TEST(GpuStream, HostAndDeviceBuffersInOneCallAreInvalidArgument) {
  SKIP_WITHOUT_GPU();
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.transport = "loopback";
  loomComm_t comm;
  ASSERT_EQ(loomCommInitAll(&comm, 1, nullptr, &cfg), loomSuccess);
  void* dev = nullptr;
  ASSERT_TRUE(cuda::deviceAlloc(64, &dev).isOk());
  float host[16] = {};
  EXPECT_EQ(loomAllReduce(host, dev, 16, loomFloat32, loomSum, comm, nullptr), loomInvalidArgument);
  EXPECT_NE(std::string(loomGetLastError(comm)).find("one call takes one kind"), std::string::npos);
  void* stream = nullptr;
  ASSERT_TRUE(cuda::streamCreate(&stream).isOk());
  EXPECT_EQ(loomAllReduce(host, host, 16, loomFloat32, loomSum, comm, stream), loomInvalidArgument);
  EXPECT_NE(std::string(loomGetLastError(comm)).find("host buffers"), std::string::npos);
  cuda::deviceFree(dev);
  cuda::streamDestroy(stream);
  EXPECT_EQ(loomCommDestroy(comm), loomSuccess);
}
#endif

}  // namespace
}  // namespace loom::test
