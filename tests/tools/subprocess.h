// Running a tool under test as a child process: extra environment, separate stdout and
// stderr captured in unlinked temporary files (no pipe to fill up), a deadline after which the
// child's whole process group is killed, and the exit status and wall time.
//
// Thread-safety: one Subprocess per thread.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace loom::test {

struct ProcessResult {
  int exitCode = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timedOut = false;
  double seconds = 0;
  std::string out, err;
};

class Subprocess {
 public:
  Subprocess() = default;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();  // kills the process group if still running

  // Starts argv[0] (a path) with the current environment plus `env` ("" values unset). The
  // child leads a new process group. Returns false if it cannot be started.
  bool start(const std::vector<std::string>& argv,
             const std::map<std::string, std::string>& env = {});
  pid_t pid() const { return pid_; }
  // Waits up to deadlineSec; on expiry SIGKILLs the process group (timedOut = true).
  ProcessResult wait(double deadlineSec);

 private:
  pid_t pid_ = -1;
  int outFd_ = -1, errFd_ = -1;
  double startTime_ = 0;
};

// start + wait.
ProcessResult runProcess(const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env, double deadlineSec);

// Whether pid is gone (no such process, or a zombie nobody has reaped yet).
bool processGone(pid_t pid);

// Waits up to deadlineSec for processGone(pid).
bool waitGone(pid_t pid, double deadlineSec);

// A fresh empty directory under /tmp (removed by the caller with removeTree).
std::string makeTempDir();
void removeTree(const std::string& dir);
std::string readFile(const std::string& path);

// Monotonic seconds.
double monotonicSeconds();

}  // namespace loom::test
