// runJob: rendezvous environment, spawning, and the supervision loop (launch.h).
#include "launch.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "loom/loom.h"
#include "output.h"
#include "process_env.h"
#include "spawn.h"

namespace loom::launch {
namespace {

using Clock = std::chrono::steady_clock;

struct RankProcess {
  int rank = 0;
  pid_t pid = -1;
  bool running = false;
  int status = 0;         // waitpid status once it has exited
  int fds[2] = {-1, -1};  // stdout, stderr pipes (tagged output only)
  std::unique_ptr<LineTagger> taggers[2];
};

std::string signalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  std::string out = "signal " + std::to_string(sig);
  if (abbrev) out += std::string(" (SIG") + abbrev + ": " + strsignal(sig) + ")";
  return out;
}

std::string describeStatus(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by " + signalName(WTERMSIG(status));
  return "stopped with status " + std::to_string(status);
}

int exitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

bool failed(int status) {
  return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

std::string seconds(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

class Job {
 public:
  explicit Job(const JobSpec& spec) : spec_(spec) {}
  int run();

 private:
  bool prepareEnvironment(EnvMap* env);
  bool startRanks(const EnvMap& env, const std::string& path);
  void supervise();
  void handleSignals();
  void reapChildren();
  void onExit(RankProcess& r, int status);
  void stopJob(Clock::time_point now, int64_t graceMs, const std::string& reason);
  void signalRunning(int sig, const std::string& why);
  void pollOnce();
  void finishOutput();
  int runningCount() const;
  std::string runningList() const;
  void message(const std::string& text) const;

  const JobSpec& spec_;
  std::vector<RankProcess> ranks_;
  int signalFd_ = -1;
  sigset_t origMask_{};
  // Failure and shutdown state.
  std::optional<int> firstFailure_;  // index into ranks_
  int interruptSignal_ = 0;
  bool timedOut_ = false;
  bool stopping_ = false;
  bool termSent_ = false, killSent_ = false;
  std::string stopReason_;  // why the job is being stopped, for the SIGTERM message
  int64_t stopGraceMs_ = 0;
  Clock::time_point start_, graceEnd_, killAt_;
};

void Job::message(const std::string& text) const {
  const std::string line = spec_.name + ": " + text + "\n";
  writeAll(STDERR_FILENO, line.data(), line.size());
}

int Job::runningCount() const {
  int n = 0;
  for (const RankProcess& r : ranks_)
    n += r.running;
  return n;
}

std::string Job::runningList() const {
  std::string out;
  int n = 0;
  for (const RankProcess& r : ranks_) {
    if (!r.running) continue;
    out += (n++ ? ", " : "") + std::to_string(r.rank);
  }
  return (n == 1 ? "rank " : "ranks ") + out;
}

bool Job::prepareEnvironment(EnvMap* env) {
  *env = snapshotEnvironment();
  if (spec_.nnodes == 1) {
    if (env->find("LOOM_SOCKET_IFNAME") == env->end()) {
      setenv("LOOM_SOCKET_IFNAME", "lo", 1);  // before the first loom call (Config snapshot)
      (*env)["LOOM_SOCKET_IFNAME"] = "lo";
    }
    loomUniqueId id;
    if (loomGetUniqueId(&id) != loomSuccess) {
      message(std::string("cannot start the rendezvous root: ") + loomGetLastError(nullptr));
      return false;
    }
    (*env)["LOOM_UNIQUE_ID"] = toHex(id.internal, sizeof(id.internal));
  } else {
    env->erase("LOOM_UNIQUE_ID");  // it would take priority over LOOM_COMM_ID
    (*env)["LOOM_COMM_ID"] = spec_.master;
    if (env->find("LOOM_SECRET") == env->end() && spec_.nodeRank == 0) {
      message(
          "warning: LOOM_SECRET is not set; the ranks derive the job's secret from public facts, "
          "which keeps strays out but is no protection against an attacker. Set LOOM_SECRET to "
          "the same 32 random hex digits on every host (e.g. $(openssl rand -hex 16)).");
    }
  }
  for (const auto& [name, value] : spec_.extraEnv)
    (*env)[name] = value;
  (*env)["LOOM_WORLD_SIZE"] = std::to_string(spec_.nnodes * spec_.localRanks);
  (*env)["LOOM_LOCAL_SIZE"] = std::to_string(spec_.localRanks);
  return true;
}

bool Job::startRanks(const EnvMap& baseEnv, const std::string& path) {
  ranks_.resize(static_cast<size_t>(spec_.localRanks));
  for (int local = 0; local < spec_.localRanks; ++local) {
    RankProcess& r = ranks_[static_cast<size_t>(local)];
    r.rank = spec_.nodeRank * spec_.localRanks + local;
    EnvMap env = baseEnv;
    env["LOOM_RANK"] = std::to_string(r.rank);
    env["LOOM_LOCAL_RANK"] = std::to_string(local);
    SpawnRequest request;
    request.path = path;
    request.argv = spec_.command;
    request.envp = toEnvStrings(env);
    request.pipeOutput = spec_.tagOutput;
    request.childMask = origMask_;
    SpawnedProcess child;
    std::string error;
    if (!spawnProcess(request, &child, &error)) {
      message("rank " + std::to_string(r.rank) + ": " + error);
      if (local > 0) stopJob(Clock::now(), 0, "a rank could not be started");
      return false;
    }
    r.pid = child.pid;
    r.running = true;
    r.fds[0] = child.stdoutFd;
    r.fds[1] = child.stderrFd;
    if (spec_.tagOutput) {
      const std::string prefix = "[rank" + std::to_string(r.rank) + "]: ";
      r.taggers[0] = std::make_unique<LineTagger>(prefix, STDOUT_FILENO);
      r.taggers[1] = std::make_unique<LineTagger>(prefix, STDERR_FILENO);
    }
  }
  return true;
}

void Job::signalRunning(int sig, const std::string& why) {
  if (runningCount() == 0) return;
  if (!why.empty()) message(why + ": sending " + signalName(sig) + " to " + runningList());
  for (const RankProcess& r : ranks_)
    if (r.running) kill(-r.pid, sig);
}

void Job::stopJob(Clock::time_point now, int64_t graceMs, const std::string& reason) {
  if (stopping_) return;
  stopping_ = true;
  stopReason_ = reason;
  stopGraceMs_ = graceMs;
  graceEnd_ = now + std::chrono::milliseconds(graceMs);
}

void Job::onExit(RankProcess& r, int status) {
  r.running = false;
  r.status = status;
  if (!failed(status) || firstFailure_ || interruptSignal_ || timedOut_) return;
  firstFailure_ = static_cast<int>(&r - ranks_.data());
  std::string text = "rank " + std::to_string(r.rank) + " (pid " + std::to_string(r.pid) + ") " +
                     describeStatus(status);
  const int others = runningCount();
  if (others > 0) {
    text += "; stopping the job: " + runningList() + (others == 1 ? " gets " : " get ") +
            seconds(spec_.graceMs) + " to exit, then SIGTERM";
  }
  message(text);
  stopJob(Clock::now(), spec_.graceMs, "rank " + std::to_string(r.rank) + " failed");
}

void Job::reapChildren() {
  for (RankProcess& r : ranks_) {
    if (!r.running) continue;
    int status;
    pid_t got;
    do {
      got = waitpid(r.pid, &status, WNOHANG);
    } while (got < 0 && errno == EINTR);
    if (got == r.pid) onExit(r, status);
  }
}

void Job::handleSignals() {
  signalfd_siginfo info;
  while (read(signalFd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
    const int sig = static_cast<int>(info.ssi_signo);
    if (sig == SIGCHLD) continue;  // reaped below
    if (interruptSignal_ != 0 && sig == SIGINT) {
      signalRunning(SIGKILL, "second SIGINT");
      killSent_ = termSent_ = true;
      continue;
    }
    if (interruptSignal_ == 0) interruptSignal_ = sig;
    signalRunning(sig, "got " + signalName(sig) + ", forwarding it");
    stopJob(Clock::now(), spec_.graceMs, "the signal");
  }
  reapChildren();
}

void Job::pollOnce() {
  std::vector<pollfd> fds;
  std::vector<std::pair<size_t, int>> owners;  // (rank index, stream) per pipe entry
  fds.push_back({signalFd_, POLLIN, 0});
  for (size_t i = 0; i < ranks_.size(); ++i) {
    for (int s = 0; s < 2; ++s) {
      if (ranks_[i].fds[s] < 0) continue;
      fds.push_back({ranks_[i].fds[s], POLLIN, 0});
      owners.emplace_back(i, s);
    }
  }
  // Sleep until the next deadline (grace end, kill time, job timeout), at most 1 s.
  const auto now = Clock::now();
  auto next = now + std::chrono::seconds(1);
  if (stopping_ && !termSent_ && graceEnd_ < next) next = graceEnd_;
  if (termSent_ && !killSent_ && killAt_ < next) next = killAt_;
  if (spec_.timeoutMs > 0 && !timedOut_) {
    const auto end = start_ + std::chrono::milliseconds(spec_.timeoutMs);
    if (end < next) next = end;
  }
  const auto waitMs = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count();
  const int n = poll(fds.data(), fds.size(), static_cast<int>(waitMs > 0 ? waitMs : 0));
  if (n <= 0) return;
  for (size_t k = 1; k < fds.size(); ++k) {
    if (fds[k].revents == 0) continue;
    RankProcess& r = ranks_[owners[k - 1].first];
    const int s = owners[k - 1].second;
    if (!r.taggers[s]->drain(r.fds[s])) {
      r.taggers[s]->finish();
      close(r.fds[s]);
      r.fds[s] = -1;
    }
  }
}

void Job::supervise() {
  reapChildren();
  while (runningCount() > 0) {
    pollOnce();
    handleSignals();
    const auto now = Clock::now();
    if (spec_.timeoutMs > 0 && !timedOut_ &&
        now >= start_ + std::chrono::milliseconds(spec_.timeoutMs) && runningCount() > 0) {
      timedOut_ = true;
      stopping_ = true;  // overrides a grace period in progress
      stopReason_ = "the job timed out after " + seconds(spec_.timeoutMs);
      stopGraceMs_ = 0;
      graceEnd_ = now;
    }
    if (stopping_ && !termSent_ && now >= graceEnd_ && runningCount() > 0) {
      const std::string why =
          stopGraceMs_ == 0
              ? stopReason_
              : runningList() + " still running " + seconds(stopGraceMs_) + " after " + stopReason_;
      signalRunning(SIGTERM, why);
      termSent_ = true;
      killAt_ = now + std::chrono::milliseconds(spec_.killAfterMs);
    }
    if (termSent_ && !killSent_ && now >= killAt_ && runningCount() > 0) {
      signalRunning(SIGKILL, runningList() + " still running " + seconds(spec_.killAfterMs) +
                                 " after SIGTERM");
      killSent_ = true;
    }
  }
}

void Job::finishOutput() {
  // Whatever a rank started is in its process group: nothing outlives the job.
  for (const RankProcess& r : ranks_)
    if (r.pid > 0) kill(-r.pid, SIGKILL);
  // Drain the pipes to end of file (the killed grandchildren held them open), bounded.
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<std::pair<size_t, int>> owners;
    for (size_t i = 0; i < ranks_.size(); ++i)
      for (int s = 0; s < 2; ++s)
        if (ranks_[i].fds[s] >= 0) {
          fds.push_back({ranks_[i].fds[s], POLLIN, 0});
          owners.emplace_back(i, s);
        }
    if (fds.empty() || Clock::now() >= deadline) break;
    if (poll(fds.data(), fds.size(), 100) <= 0) continue;
    for (size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      RankProcess& r = ranks_[owners[k].first];
      const int s = owners[k].second;
      if (!r.taggers[s]->drain(r.fds[s])) {
        r.taggers[s]->finish();
        close(r.fds[s]);
        r.fds[s] = -1;
      }
    }
  }
  for (RankProcess& r : ranks_)
    for (int s = 0; s < 2; ++s)
      if (r.fds[s] >= 0) {
        r.taggers[s]->finish();
        close(r.fds[s]);
        r.fds[s] = -1;
      }
}

int Job::run() {
  start_ = Clock::now();
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGINT, SIGTERM, SIGHUP})
    sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, &origMask_);
  signal(SIGPIPE, SIG_IGN);
  signalFd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signalFd_ < 0) {
    message(std::string("signalfd failed: ") + std::strerror(errno));
    return 1;
  }
  EnvMap env;
  if (!prepareEnvironment(&env)) return 1;
  const std::string path = resolveProgram(spec_.command[0], env);
  if (path.empty()) {
    message("cannot execute " + spec_.command[0] + ": not found in PATH");
    return 127;
  }
  const bool started = startRanks(env, path);
  supervise();
  finishOutput();
  close(signalFd_);
  if (!started) return 127;
  if (interruptSignal_) return 128 + interruptSignal_;
  if (firstFailure_) {
    const RankProcess& r = ranks_[static_cast<size_t>(*firstFailure_)];
    message("job failed: rank " + std::to_string(r.rank) + " " + describeStatus(r.status) +
            " (first failure)");
    return exitCodeOf(r.status);
  }
  if (timedOut_) return 124;
  return 0;
}

}  // namespace

std::string validate(const JobSpec& spec) {
  if (spec.command.empty()) return "no program given";
  if (spec.localRanks < 1) return "-np must be at least 1";
  if (spec.nnodes < 1) return "--nnodes must be at least 1";
  if (spec.nodeRank < 0 || spec.nodeRank >= spec.nnodes)
    return "--node-rank must be in [0, " + std::to_string(spec.nnodes) + ")";
  if (spec.nnodes > 1 && spec.master.find(':') == std::string::npos)
    return "--master host:port is required with --nnodes > 1";
  if (spec.graceMs < 0 || spec.killAfterMs < 0 || spec.timeoutMs < 0)
    return "times must not be negative";
  return "";
}

int runJob(const JobSpec& spec) {
  const std::string problem = validate(spec);
  if (!problem.empty()) {
    const std::string line = spec.name + ": " + problem + "\n";
    writeAll(STDERR_FILENO, line.data(), line.size());
    return 2;
  }
  Job job(spec);
  return job.run();
}

}  // namespace loom::launch
