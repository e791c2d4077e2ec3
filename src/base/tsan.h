// ThreadSanitizer annotations (no-ops in other builds).
//
// TSan tracks happens-before by virtual address. Ranks that are threads of one process but talk
// through the shm transport each map the shared segment at their own address, so the ordering
// its rings give is invisible to TSan. Code that relies on that ordering for memory both threads
// touch at the same address (the CUDA IPC windows of runtime/device_ipc.h) says so here: a
// release before the synchronising operation, an acquire after it, on one key.
#pragma once

#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace loom {

inline void tsanRelease(void* key) {
#if defined(__SANITIZE_THREAD__)
  __tsan_release(key);
#else
  (void)key;
#endif
}

inline void tsanAcquire(void* key) {
#if defined(__SANITIZE_THREAD__)
  __tsan_acquire(key);
#else
  (void)key;
#endif
}

}  // namespace loom
