// Device memory for loom-perf --device cuda: the few CUDA runtime calls the benchmark needs,
// behind functions that exist in every build (without CUDA they report why they cannot work).
// loom-perf links the CUDA runtime itself (statically), as an application beside loom does.
#pragma once

#include <cstddef>
#include <string>

namespace loom::perf::gpu {

// Whether device buffers can be used; otherwise false with the reason.
bool available(std::string* why);
// Selects device `index` modulo the number of devices (ranks of one host spread over them).
bool selectDevice(int index, std::string* error);
void* alloc(size_t bytes, std::string* error);
void free(void* p);
// Blocking copies (any direction).
bool copy(void* dst, const void* src, size_t bytes, std::string* error);
void* createStream(std::string* error);
void destroyStream(void* stream);
bool synchronize(void* stream, std::string* error);

}  // namespace loom::perf::gpu
