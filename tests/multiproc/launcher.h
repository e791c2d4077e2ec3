// Starts N rank processes of a test worker with the rendezvous set up through the environment
// (LOOM_UNIQUE_ID, LOOM_RANK, LOOM_WORLD_SIZE - what loomrun does), waits for them with a
// deadline, and kills whatever is left, so a test never hangs or leaks processes.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace loom::test {

struct RankExit {
  int exitCode = -1;  // -1 when killed by a signal
  int signal = 0;
  double seconds = 0;  // time from launch to exit
  std::string output;  // stdout + stderr
};

struct LaunchResult {
  std::vector<RankExit> ranks;
  bool timedOut = false;
};

// Runs `program args...` as nranks processes. extraEnv applies to every rank; perRankEnv[r] to
// rank r only. The rendezvous root lives in the calling process.
LaunchResult launchRanks(const std::string& program, const std::vector<std::string>& args,
                         int nranks, const std::map<std::string, std::string>& extraEnv,
                         int deadlineMs,
                         const std::vector<std::map<std::string, std::string>>& perRankEnv = {});

// Path of a binary next to the running test (argv[0]'s directory).
std::string siblingBinary(const std::string& name);

}  // namespace loom::test
