#include "subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "launch/process_env.h"

namespace loom::test {
namespace {

int tempFd() {
  char name[] = "/tmp/loom_tools_test_XXXXXX";
  const int fd = mkstemp(name);
  if (fd >= 0) unlink(name);
  return fd;
}

std::string readBack(int fd) {
  std::string out;
  if (fd < 0) return out;
  lseek(fd, 0, SEEK_SET);
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0)
    out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

}  // namespace

double monotonicSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Subprocess::~Subprocess() {
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
  if (outFd_ >= 0) close(outFd_);
  if (errFd_ >= 0) close(errFd_);
}

bool Subprocess::start(const std::vector<std::string>& argv,
                       const std::map<std::string, std::string>& env) {
  launch::EnvMap all = launch::snapshotEnvironment();
  for (const auto& [k, v] : env) {
    if (v.empty())
      all.erase(k);
    else
      all[k] = v;
  }
  std::vector<std::string> envStrings = launch::toEnvStrings(all), args = argv;
  std::vector<char*> envp, cargv;
  for (std::string& s : envStrings)
    envp.push_back(s.data());
  envp.push_back(nullptr);
  for (std::string& s : args)
    cargv.push_back(s.data());
  cargv.push_back(nullptr);
  outFd_ = tempFd();
  errFd_ = tempFd();
  const int devNull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  startTime_ = monotonicSeconds();
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // a killed test leaves no tool running
    dup2(devNull, 0);
    dup2(outFd_, 1);
    dup2(errFd_, 2);
    execve(cargv[0], cargv.data(), envp.data());
    _exit(127);
  }
  if (devNull >= 0) close(devNull);
  if (pid_ > 0) setpgid(pid_, pid_);
  return pid_ > 0;
}

ProcessResult Subprocess::wait(double deadlineSec) {
  ProcessResult r;
  const double end = startTime_ + deadlineSec;
  int status = 0;
  for (;;) {
    const pid_t got = waitpid(pid_, &status, WNOHANG);
    if (got == pid_) break;
    if (monotonicSeconds() > end) {
      r.timedOut = true;
      kill(-pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  r.seconds = monotonicSeconds() - startTime_;
  if (WIFEXITED(status)) r.exitCode = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  kill(-pid_, SIGKILL);  // anything left in the group
  pid_ = -1;
  r.out = readBack(outFd_);
  r.err = readBack(errFd_);
  outFd_ = errFd_ = -1;
  return r;
}

ProcessResult runProcess(const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env, double deadlineSec) {
  Subprocess p;
  if (!p.start(argv, env)) {
    ProcessResult r;
    r.err = "cannot start " + argv[0];
    return r;
  }
  return p.wait(deadlineSec);
}

bool processGone(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

bool waitGone(pid_t pid, double deadlineSec) {
  const double end = monotonicSeconds() + deadlineSec;
  while (!processGone(pid)) {
    if (monotonicSeconds() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::string makeTempDir() {
  char name[] = "/tmp/loom_tools_test_dir_XXXXXX";
  const char* dir = mkdtemp(name);
  return dir ? dir : "";
}

void removeTree(const std::string& dir) {
  std::error_code ec;
  if (!dir.empty()) std::filesystem::remove_all(dir, ec);
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace loom::test
