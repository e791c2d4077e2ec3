// Device kernels of the GPU path (base/cuda.h): the N-input reduction for every dtype and op,
// with the host kernels' arithmetic (base/reduce_kernels.h: integer Sum/Prod wrap, Max/Min
// propagate NaN, half types widen to float and round once through base/half.h), and the
// one-thread flag wait used where stream memory operations are unavailable.
//
// Compiled with --fmad=false so float results match the host's bit for bit. The element types
// and operators below repeat reduce_kernels.h's with __device__ added: the host ones live in a
// per-instruction-set namespace on purpose (see that file), so the device copies stay beside
// the kernels. A change to the arithmetic changes both; gpu_test compares them bit for bit.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "base/half.h"

namespace loom::cuda::detail {

namespace {

constexpr int kMaxSources = 32;

struct Sources {
  const void* ptr[kMaxSources];
};

struct F16 {
  uint16_t bits;
};
struct BF16 {
  uint16_t bits;
};
struct E4M3 {
  uint8_t bits;
};
struct E5M2 {
  uint8_t bits;
};

template <typename T>
struct Traits {
  using Acc = T;
  __device__ static Acc load(T v) { return v; }
  __device__ static T store(Acc v) { return v; }
};
template <>
struct Traits<F16> {
  using Acc = float;
  __device__ static float load(F16 v) { return half::fp16ToFloat(v.bits); }
  __device__ static F16 store(float v) { return F16{half::floatToFp16(v)}; }
};
template <>
struct Traits<BF16> {
  using Acc = float;
  __device__ static float load(BF16 v) { return half::bf16ToFloat(v.bits); }
  __device__ static BF16 store(float v) { return BF16{half::floatToBf16(v)}; }
};
template <>
struct Traits<E4M3> {
  using Acc = float;
  __device__ static float load(E4M3 v) { return half::e4m3ToFloat(v.bits); }
  __device__ static E4M3 store(float v) { return E4M3{half::floatToE4m3(v)}; }
};
template <>
struct Traits<E5M2> {
  using Acc = float;
  __device__ static float load(E5M2 v) { return half::e5m2ToFloat(v.bits); }
  __device__ static E5M2 store(float v) { return E5M2{half::floatToE5m2(v)}; }
};

template <typename A>
struct Sum {
  __device__ static A apply(A a, A b) {
    if constexpr (std::is_integral_v<A>) {
      using U = std::make_unsigned_t<A>;
      return static_cast<A>(static_cast<U>(a) + static_cast<U>(b));
    } else {
      return a + b;
    }
  }
};
template <typename A>
struct Prod {
  __device__ static A apply(A a, A b) {
    if constexpr (std::is_integral_v<A>) {
      using U = std::make_unsigned_t<A>;
      using W = std::conditional_t<(sizeof(U) < sizeof(unsigned)), unsigned, U>;
      return static_cast<A>(
          static_cast<U>(static_cast<W>(static_cast<U>(a)) * static_cast<W>(static_cast<U>(b))));
    } else {
      return a * b;
    }
  }
};
template <typename A>
struct Max {
  __device__ static A apply(A a, A b) { return (a > b || a != a) ? a : b; }
};
template <typename A>
struct Min {
  __device__ static A apply(A a, A b) { return (a < b || a != a) ? a : b; }
};

// One element: all sources, in order, accumulated in Acc and stored once.
template <typename T, template <typename> class Op>
__device__ inline T combine(const Sources& s, int n, size_t i) {
  using Acc = typename Traits<T>::Acc;
  Acc acc = Traits<T>::load(static_cast<const T*>(s.ptr[0])[i]);
  for (int k = 1; k < n; ++k)
    acc = Op<Acc>::apply(acc, Traits<T>::load(static_cast<const T*>(s.ptr[k])[i]));
  return Traits<T>::store(acc);
}

// Grid-stride over 16-byte vectors when every pointer is 16-byte aligned (`vec`), then the
// scalar tail. Each thread loads one uint4 per source: the widest load the memory system
// serves in one transaction per thread.
template <typename T, template <typename> class Op>
__global__ void reduceKernel(T* dst, Sources s, int n, size_t count, bool vec) {
  constexpr size_t kPer = 16 / sizeof(T);
  const size_t tid = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  size_t done = 0;
  if (vec) {
    const size_t nvec = count / kPer;
    for (size_t v = tid; v < nvec; v += stride) {
      union U {
        uint4 raw;
        T elem[kPer];
      };
      U acc0, out;
      acc0.raw = static_cast<const uint4*>(s.ptr[0])[v];
      using Acc = typename Traits<T>::Acc;
      Acc acc[kPer];
#pragma unroll
      for (size_t e = 0; e < kPer; ++e)
        acc[e] = Traits<T>::load(acc0.elem[e]);
      for (int k = 1; k < n; ++k) {
        U x;
        x.raw = static_cast<const uint4*>(s.ptr[k])[v];
#pragma unroll
        for (size_t e = 0; e < kPer; ++e)
          acc[e] = Op<Acc>::apply(acc[e], Traits<T>::load(x.elem[e]));
      }
#pragma unroll
      for (size_t e = 0; e < kPer; ++e)
        out.elem[e] = Traits<T>::store(acc[e]);
      reinterpret_cast<uint4*>(dst)[v] = out.raw;
    }
    done = nvec * kPer;
  }
  for (size_t i = done + tid; i < count; i += stride)
    dst[i] = combine<T, Op>(s, n, i);
}

__global__ void waitFlagKernel(const volatile uint32_t* flag) {
  while (*flag == 0)
    __nanosleep(2000);
}

template <typename T, template <typename> class Op>
cudaError_t launch(void* dst, const Sources& s, int n, size_t count, cudaStream_t stream) {
  bool vec = (reinterpret_cast<uintptr_t>(dst) & 15) == 0;
  for (int k = 0; k < n; ++k)
    vec = vec && (reinterpret_cast<uintptr_t>(s.ptr[k]) & 15) == 0;
  int device = 0, sms = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess)
    err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (err != cudaSuccess) return err;
  // Enough blocks to fill the GPU (4 per SM), never more than the work needs.
  constexpr int kThreads = 512;
  const size_t units = vec ? count / (16 / sizeof(T)) + 16 : count;
  size_t blocks = (units + kThreads - 1) / kThreads;
  if (blocks > static_cast<size_t>(sms) * 4) blocks = static_cast<size_t>(sms) * 4;
  if (blocks == 0) blocks = 1;
  reduceKernel<T, Op><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(static_cast<T*>(dst),
                                                                              s, n, count, vec);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launchOp(int op, void* dst, const Sources& s, int n, size_t count,
                     cudaStream_t stream) {
  switch (op) {
    case 1:
      return launch<T, Prod>(dst, s, n, count, stream);
    case 2:
      return launch<T, Max>(dst, s, n, count, stream);
    case 3:
      return launch<T, Min>(dst, s, n, count, stream);
    default:  // Sum, and Avg/PreMulSum, which reduce with Sum
      return launch<T, Sum>(dst, s, n, count, stream);
  }
}

cudaError_t launchType(int type, int op, void* dst, const Sources& s, int n, size_t count,
                       cudaStream_t stream) {
  switch (type) {  // base/dtype.h DataType values
    case 0:
      return launchOp<int8_t>(op, dst, s, n, count, stream);
    case 1:
      return launchOp<uint8_t>(op, dst, s, n, count, stream);
    case 2:
      return launchOp<int32_t>(op, dst, s, n, count, stream);
    case 3:
      return launchOp<uint32_t>(op, dst, s, n, count, stream);
    case 4:
      return launchOp<int64_t>(op, dst, s, n, count, stream);
    case 5:
      return launchOp<uint64_t>(op, dst, s, n, count, stream);
    case 6:
      return launchOp<F16>(op, dst, s, n, count, stream);
    case 7:
      return launchOp<float>(op, dst, s, n, count, stream);
    case 8:
      return launchOp<double>(op, dst, s, n, count, stream);
    case 9:
      return launchOp<BF16>(op, dst, s, n, count, stream);
    case 10:
      return launchOp<E4M3>(op, dst, s, n, count, stream);
    case 11:
      return launchOp<E5M2>(op, dst, s, n, count, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

// More than kMaxSources sources reduce in passes (the first kMaxSources, then dst with the
// next kMaxSources - 1, …); half types then round once per pass.
cudaError_t launchReduceN(int type, int op, void* dst, const void* const* srcs, int nsrcs,
                          size_t count, cudaStream_t stream) {
  if (nsrcs < 1) return cudaErrorInvalidValue;
  if (count == 0) return cudaSuccess;
  int next = 0;
  bool first = true;
  while (next < nsrcs) {
    Sources s{};
    int n = 0;
    if (!first) s.ptr[n++] = dst;
    while (n < kMaxSources && next < nsrcs)
      s.ptr[n++] = srcs[next++];
    cudaError_t err = launchType(type, op, dst, s, n, count, stream);
    if (err != cudaSuccess) return err;
    first = false;
  }
  return cudaSuccess;
}

cudaError_t launchWaitFlag(const volatile uint32_t* flag, cudaStream_t stream) {
  waitFlagKernel<<<1, 1, 0, stream>>>(flag);
  return cudaGetLastError();
}

}  // namespace loom::cuda::detail
