#include "launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <thread>

#include "bootstrap/unique_id.h"
#include "loom/loom.h"

extern char** environ;

namespace loom::test {

namespace {

std::string readAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

}  // namespace

std::string siblingBinary(const std::string& name) {
  char self[PATH_MAX] = {};
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string dir = n > 0 ? std::string(self, static_cast<size_t>(n)) : std::string(".");
  dir = dir.substr(0, dir.rfind('/'));
  return dir + "/" + name;
}

LaunchResult launchRanks(const std::string& program, const std::vector<std::string>& args,
                         int nranks, const std::map<std::string, std::string>& extraEnv,
                         int deadlineMs,
                         const std::vector<std::map<std::string, std::string>>& perRankEnv) {
  LaunchResult result;
  result.ranks.resize(nranks);
  loomUniqueId id;
  if (loomGetUniqueId(&id) != loomSuccess) {
    result.ranks[0].output = std::string("loomGetUniqueId failed: ") + loomGetLastError(nullptr);
    return result;
  }
  auto parsed = bootstrap::UniqueId::fromBytes(reinterpret_cast<const uint8_t*>(id.internal));
  const std::string idHex = parsed->toHex();
  std::vector<pid_t> pids(nranks, -1);
  std::vector<FILE*> outs(nranks, nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < nranks; ++r) {
    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
      const char* eq = std::strchr(*e, '=');
      if (eq) env[std::string(*e, eq - *e)] = eq + 1;
    }
    for (const auto& [k, v] : extraEnv)
      env[k] = v;
    if (r < static_cast<int>(perRankEnv.size()))
      for (const auto& [k, v] : perRankEnv[r])
        env[k] = v;
    env["LOOM_UNIQUE_ID"] = idHex;
    env["LOOM_RANK"] = std::to_string(r);
    env["LOOM_WORLD_SIZE"] = std::to_string(nranks);
    std::vector<std::string> envStrings;
    for (const auto& [k, v] : env)
      envStrings.push_back(k + "=" + v);
    std::vector<char*> envp, argv;
    for (std::string& s : envStrings)
      envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argStrings = {program};
    argStrings.insert(argStrings.end(), args.begin(), args.end());
    for (std::string& s : argStrings)
      argv.push_back(s.data());
    argv.push_back(nullptr);
    // Output goes to an unlinked temporary file (no pipe to fill up and block the child).
    FILE* tmp = tmpfile();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fileno(tmp), 1);
    posix_spawn_file_actions_adddup2(&fa, fileno(tmp), 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid;
    if (posix_spawn(&pid, program.c_str(), &fa, &attr, argv.data(), envp.data()) == 0)
      pids[r] = pid;
    else
      result.ranks[r].output = "posix_spawn failed for " + program;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    outs[r] = tmp;
  }
  int left = 0;
  for (pid_t p : pids)
    left += p > 0;
  const auto deadline = t0 + std::chrono::milliseconds(deadlineMs);
  while (left > 0) {
    bool any = false;
    for (int r = 0; r < nranks; ++r) {
      if (pids[r] <= 0) continue;
      int status;
      if (waitpid(pids[r], &status, WNOHANG) == pids[r]) {
        any = true;
        RankExit& e = result.ranks[r];
        e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (WIFEXITED(status)) e.exitCode = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
        pids[r] = -1;
        --left;
      }
    }
    if (left == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      result.timedOut = true;
      for (pid_t p : pids)
        if (p > 0) kill(p, SIGKILL);
      for (int r = 0; r < nranks; ++r)
        if (pids[r] > 0) {
          int status;
          waitpid(pids[r], &status, 0);
          result.ranks[r].signal = SIGKILL;
        }
      break;
    }
    if (!any) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (int r = 0; r < nranks; ++r) {
    if (!outs[r]) continue;
    fflush(outs[r]);
    lseek(fileno(outs[r]), 0, SEEK_SET);
    result.ranks[r].output += readAll(fileno(outs[r]));
    fclose(outs[r]);
  }
  return result;
}

}  // namespace loom::test
