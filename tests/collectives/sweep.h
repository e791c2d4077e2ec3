// The collective sweep (DESIGN.md section 8): every collective x datatype x operator x count x
// in-place/out-of-place, inputs chosen so results are exact, compared bit for bit. It drives
// one rank through the public C API; every rank of the communicator runs the same sweep
// (ranks as threads in one process, or as processes).
#pragma once

#include <string>
#include <vector>

#include "loom/loom.h"

namespace loom::test {

struct SweepOptions {
  std::vector<size_t> counts = {0, 1, 7, 1000, 5000};
  std::vector<loomDataType_t> types;  // empty = all
  bool reductions = true;
  bool movement = true;
  // A cudaStream_t: every call runs on device copies of its buffers, ordered on this stream
  // (the GPU path). NULL: host buffers.
  void* stream = nullptr;
};

// Returns one line per failure (empty = everything matched). Stops at the first failing call.
std::vector<std::string> runSweep(loomComm_t comm, const SweepOptions& options);
// Grouped Send/Recv: ring exchange, all-pairs exchange, sends to self.
std::vector<std::string> runPointToPoint(loomComm_t comm, void* stream = nullptr);
// Frees the device mirrors of every stream (device mode keeps them for the whole run: cudaFree
// synchronises the device). Call once every rank of the process is done.
void releaseDeviceMirrors();

}  // namespace loom::test
