// Reduction kernels compiled for the avx2 instruction set (flags in CMakeLists.txt).
#define LOOM_KERNEL_NS avx2
#include "base/reduce_kernels.h"
