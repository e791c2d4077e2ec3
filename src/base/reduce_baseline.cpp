// Reduction kernels compiled for the baseline instruction set (flags in CMakeLists.txt).
#define LOOM_KERNEL_NS baseline
#include "base/reduce_kernels.h"
