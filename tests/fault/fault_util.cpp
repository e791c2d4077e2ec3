#include "fault_util.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "runtime/testing.h"
#include "transports/testing/fault_transport.h"

namespace loom::test {

FaultScope::FaultScope(const std::string& plan) {
  Result<transport::fault::FaultPlan> p = transport::fault::FaultPlan::parse(plan);
  EXPECT_TRUE(p.isOk()) << p.status().toString();
  if (p.isOk()) plan_ = std::move(p).value();
  transport::fault::FaultPlan copy = plan_;  // shares the counters
  runtime::setTransportDecoratorForTesting([copy](std::unique_ptr<transport::Transport> inner,
                                                  const transport::TransportContext& context) {
    return transport::fault::wrapWithFaults(std::move(inner), context, copy);
  });
}

FaultScope::~FaultScope() {
  runtime::setTransportDecoratorForTesting(nullptr);
}

std::vector<loomComm_t> initAll(const char* transport, int nranks, int timeoutMs, int checkMode,
                                const char* algo) {
  loomConfig_t cfg = LOOM_CONFIG_INITIALIZER;
  cfg.transport = transport;
  cfg.timeoutMs = timeoutMs;
  cfg.checkMode = checkMode;
  cfg.algo = algo;
  cfg.commName = "fault-test";
  std::vector<loomComm_t> comms(nranks);
  loomResult_t r = loomCommInitAll(comms.data(), nranks, nullptr, &cfg);
  EXPECT_EQ(r, loomSuccess) << loomGetLastError(nullptr);
  if (r != loomSuccess) comms.clear();
  return comms;
}

void destroyAll(std::vector<loomComm_t>* comms) {
  // A failed communicator may refuse a clean destroy (its peers are gone); abort frees it.
  for (loomComm_t c : *comms)
    if (loomCommDestroy(c) != loomSuccess) loomCommAbort(c);
  comms->clear();
}

std::vector<RankOutcome> onEveryRank(const std::vector<loomComm_t>& comms,
                                     const std::function<loomResult_t(int)>& fn) {
  std::vector<RankOutcome> out(comms.size());
  std::vector<std::thread> threads;
  for (size_t r = 0; r < comms.size(); ++r)
    threads.emplace_back([&, r] {
      auto t0 = std::chrono::steady_clock::now();
      out[r].result = fn(static_cast<int>(r));
      out[r].seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (out[r].result != loomSuccess) out[r].message = loomGetLastError(comms[r]);
    });
  for (std::thread& t : threads)
    t.join();
  return out;
}

loomResult_t allReduceChecked(loomComm_t comm, size_t count) {
  std::vector<float> buf;
  return allReduceChecked(comm, count, &buf);
}

loomResult_t allReduceChecked(loomComm_t comm, size_t count, std::vector<float>* buf) {
  int rank = 0, n = 0;
  loomCommUserRank(comm, &rank);
  loomCommCount(comm, &n);
  buf->assign(count, static_cast<float>(rank + 1));
  loomResult_t r =
      loomAllReduce(buf->data(), buf->data(), count, loomFloat32, loomSum, comm, nullptr);
  if (r != loomSuccess) return r;
  const float want = static_cast<float>(n * (n + 1) / 2);
  for (float v : *buf)
    if (v != want) return loomInternalError;
  return loomSuccess;
}

int openDescriptors() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the directory's own descriptor
}

int threadCount() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  int n = -1;
  while (std::fgets(line, sizeof(line), f))
    if (std::strncmp(line, "Threads:", 8) == 0) n = std::atoi(line + 8);
  std::fclose(f);
  return n;
}

long residentKiB() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof(line), f))
    if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::strtol(line + 6, nullptr, 10);
  std::fclose(f);
  return kib;
}

}  // namespace loom::test
