#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

namespace loom::launch {
namespace {

void closeIfOpen(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// Runs in the forked child: only async-signal-safe calls until execve.
[[noreturn]] void childExec(const SpawnRequest& request, char* const* argv, char* const* envp,
                            pid_t launcher, int devNull, int outFd, int errFd, int reportFd) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != launcher) _exit(127);  // the launcher died before prctl took effect
  dup2(devNull, STDIN_FILENO);
  if (outFd >= 0) dup2(outFd, STDOUT_FILENO);
  if (errFd >= 0) dup2(errFd, STDERR_FILENO);
  signal(SIGPIPE, SIG_DFL);
  sigprocmask(SIG_SETMASK, &request.childMask, nullptr);
  execve(request.path.c_str(), argv, envp);
  const int err = errno;
  ssize_t ignored = write(reportFd, &err, sizeof(err));
  (void)ignored;
  _exit(127);
}

}  // namespace

bool spawnProcess(const SpawnRequest& request, SpawnedProcess* out, std::string* error) {
  std::vector<std::string> argStrings = request.argv, envStrings = request.envp;
  std::vector<char*> argv, envp;
  for (std::string& s : argStrings)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  for (std::string& s : envStrings)
    envp.push_back(s.data());
  envp.push_back(nullptr);

  int outPipe[2] = {-1, -1}, errPipe[2] = {-1, -1}, report[2] = {-1, -1};
  const int devNull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  bool ok = devNull >= 0 && pipe2(report, O_CLOEXEC) == 0;
  if (ok && request.pipeOutput) {
    ok = pipe2(outPipe, O_CLOEXEC) == 0 && pipe2(errPipe, O_CLOEXEC) == 0;
  }
  if (!ok) {
    *error = std::string("cannot create pipes: ") + std::strerror(errno);
  } else {
    const pid_t launcher = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
      childExec(request, argv.data(), envp.data(), launcher, devNull, outPipe[1], errPipe[1],
                report[1]);
    }
    if (pid < 0) {
      *error = std::string("fork failed: ") + std::strerror(errno);
      ok = false;
    } else {
      setpgid(pid, pid);  // also here, so the group exists before we might signal it
      closeIfOpen(&report[1]);
      int err = 0;
      ssize_t n;
      do {
        n = read(report[0], &err, sizeof(err));
      } while (n < 0 && errno == EINTR);
      if (n == static_cast<ssize_t>(sizeof(err))) {
        *error = "cannot execute " + request.path + ": " + std::strerror(err);
        int status;
        waitpid(pid, &status, 0);
        ok = false;
      } else {
        out->pid = pid;
        out->stdoutFd = outPipe[0];
        out->stderrFd = errPipe[0];
        outPipe[0] = errPipe[0] = -1;
        if (out->stdoutFd >= 0) fcntl(out->stdoutFd, F_SETFL, O_NONBLOCK);
        if (out->stderrFd >= 0) fcntl(out->stderrFd, F_SETFL, O_NONBLOCK);
      }
    }
  }
  for (int* fd : {&outPipe[0], &outPipe[1], &errPipe[0], &errPipe[1], &report[0], &report[1]})
    closeIfOpen(fd);
  if (devNull >= 0) close(devNull);
  return ok;
}

}  // namespace loom::launch
