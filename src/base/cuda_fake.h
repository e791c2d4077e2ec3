// What cuda_ipc.cpp needs of the emulation in cuda.cpp (testing::useFakeDevice): registering
// memory that pointerInfo reports as device memory, and waiting for every emulated stream.
// Internal to base/.
#pragma once

#include <cstddef>

namespace loom::cuda::detail {

bool fakeActive();
void fakeRemember(void* ptr, size_t bytes);
void fakeForget(void* ptr);
void fakeSynchronizeAll();  // what cudaFree waits for

}  // namespace loom::cuda::detail
