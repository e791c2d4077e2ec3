// The dispatch table every kernel set fills (reduce_kernels.h) and reduce.cpp chooses from.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/dtype.h"

namespace loom::kernels {

// Index [type][op] with op 0..3 = Sum, Prod, Max, Min.
struct KernelTable {
  void (*reduce2[kNumDataTypes][4])(void*, const void*, const void*, size_t);
  void (*reduceN[kNumDataTypes][4])(void*, const void* const*, int, size_t);
  void (*scale[kNumDataTypes])(void*, const void*, const void*, size_t);
  void (*divide[kNumDataTypes])(void*, size_t, uint64_t);
};

namespace baseline {
const KernelTable& table();
}
namespace avx2 {
const KernelTable& table();
}
namespace avx512 {
const KernelTable& table();
}

}  // namespace loom::kernels
