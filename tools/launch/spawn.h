// Starting one rank process: fork + execve with the rank in its own process group, SIGKILL on
// the launcher's death, stdin from /dev/null, and stdout/stderr either inherited or sent to
// pipes (for tagged output).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace loom::launch {

struct SpawnRequest {
  std::string path;               // resolved executable
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> envp;  // NAME=VALUE
  bool pipeOutput = false;        // stdout/stderr to pipes returned in SpawnedProcess
  sigset_t childMask;             // signal mask the program starts with
};

struct SpawnedProcess {
  pid_t pid = -1;     // also the process group id
  int stdoutFd = -1;  // read ends (pipeOutput only), O_CLOEXEC | O_NONBLOCK; caller closes
  int stderrFd = -1;
};

// Starts the process. Returns false with *error set when fork or exec failed (exec errors are
// reported back through a close-on-exec pipe, so a missing or non-executable program is seen
// here, not as an exit code). Must be called from the thread that stays alive for the job:
// PR_SET_PDEATHSIG fires when the forking thread exits.
bool spawnProcess(const SpawnRequest& request, SpawnedProcess* out, std::string* error);

}  // namespace loom::launch
