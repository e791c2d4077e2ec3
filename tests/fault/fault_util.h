// Helpers shared by the fault tests: a scope that routes every transport a communicator creates
// through the fault-injecting wrapper (transports/testing), ranks as threads with a result and
// duration per rank, and process-resource probes (descriptors, resident memory).
//
// Every wait is bounded: communicators get short timeouts, and threads are joined only after
// their operations (themselves bounded by those timeouts) return.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "loom/loom.h"
#include "transports/testing/fault_plan.h"

namespace loom::test {

// Installs the plan on every communicator created while it lives (runtime/testing.h).
class FaultScope {
 public:
  explicit FaultScope(const std::string& plan);
  ~FaultScope();
  FaultScope(const FaultScope&) = delete;
  FaultScope& operator=(const FaultScope&) = delete;
  const transport::fault::FaultCounters& counters() const { return *plan_.counters; }

 private:
  transport::fault::FaultPlan plan_;
};

// nranks communicators in this process (loomCommInitAll); empty on failure (with a gtest
// failure). checkMode: LOOM_CONFIG_UNDEF_INT leaves LOOM_CHECK as the environment has it.
std::vector<loomComm_t> initAll(const char* transport, int nranks, int timeoutMs,
                                int checkMode = LOOM_CONFIG_UNDEF_INT, const char* algo = nullptr);
void destroyAll(std::vector<loomComm_t>* comms);

struct RankOutcome {
  loomResult_t result = loomSuccess;
  std::string message;  // loomGetLastError after a failure
  double seconds = 0;   // how long fn took
};

// Runs fn(rank) on one thread per rank; fn returns its loomResult_t. The message of a failure
// is taken on the rank's own thread.
std::vector<RankOutcome> onEveryRank(const std::vector<loomComm_t>& comms,
                                     const std::function<loomResult_t(int)>& fn);

// One allreduce of `count` floats of value rank+1; checks the sum when it succeeds (a wrong
// sum is reported as loomInternalError).
loomResult_t allReduceChecked(loomComm_t comm, size_t count);
// The same in *buf, owned by the caller (for tests that keep or inspect the buffer).
loomResult_t allReduceChecked(loomComm_t comm, size_t count, std::vector<float>* buf);

// One buffer per rank for allReduceChecked, owned by the test body.
using RankBuffers = std::vector<std::vector<float>>;

int openDescriptors();
long residentKiB();
int threadCount();

}  // namespace loom::test
