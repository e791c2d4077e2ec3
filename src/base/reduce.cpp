#include "base/reduce.h"

#include "base/assert.h"
#include "base/reduce_table.h"

namespace loom {

namespace {

using Table = kernels::KernelTable;

struct Chosen {
  const Table* table;
  const char* isa;
};

const Chosen& chosen() {
  static const Chosen c = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
      return Chosen{&kernels::avx512::table(), "avx512"};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
        __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"))
      return Chosen{&kernels::avx2::table(), "avx2"};
    return Chosen{&kernels::baseline::table(), "baseline"};
  }();
  return c;
}

int opIndex(RedOpKind op) {
  switch (op) {
    case RedOpKind::kSum:
    case RedOpKind::kAvg:
    case RedOpKind::kPreMulSum:
      return 0;
    case RedOpKind::kProd:
      return 1;
    case RedOpKind::kMax:
      return 2;
    case RedOpKind::kMin:
      return 3;
  }
  LOOM_CHECK(false, "unknown RedOpKind");
  return 0;
}

}  // namespace

void reduce2(DataType type, RedOpKind op, void* dst, const void* a, const void* b, size_t count) {
  if (count == 0) return;
  chosen().table->reduce2[static_cast<int>(type)][opIndex(op)](dst, a, b, count);
}

void reduceN(DataType type, RedOpKind op, void* dst, const void* const* srcs, int nsrcs,
             size_t count) {
  LOOM_CHECK_GE(nsrcs, 1);
  if (count == 0) return;
  chosen().table->reduceN[static_cast<int>(type)][opIndex(op)](dst, srcs, nsrcs, count);
}

void scale(DataType type, void* dst, const void* src, const void* scalar, size_t count) {
  if (count == 0) return;
  chosen().table->scale[static_cast<int>(type)](dst, src, scalar, count);
}

void divideInPlace(DataType type, void* data, size_t count, uint64_t divisor) {
  LOOM_CHECK_GT(divisor, 0u);
  if (count == 0) return;
  chosen().table->divide[static_cast<int>(type)](data, count, divisor);
}

const char* reduceKernelIsa() {
  return chosen().isa;
}

}  // namespace loom
