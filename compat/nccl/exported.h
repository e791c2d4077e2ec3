// nccl.h with every function given default visibility (the rest of the library is hidden and
// nccl.map exports only nccl* and pncclX), and NCCL_LOOM_ALIAS to define pncclX as an alias of
// ncclX: the profiling entry points of NCCL, same code.
#pragma once

#pragma GCC visibility push(default)
#include "nccl.h"
#pragma GCC visibility pop

#define NCCL_LOOM_ALIAS(name) \
  extern "C" decltype(name) p##name __attribute__((alias(#name), visibility("default")))
