// Reduction kernels compiled for the avx512 instruction set (flags in CMakeLists.txt).
#define LOOM_KERNEL_NS avx512
#include "base/reduce_kernels.h"
