// loom-train as a real job: 8 processes under loomrun (DP2 x TP2 x PP2, shared memory between
// processes) print a falling loss, write the same JSON twice (check 12 across processes), and
// match the same layout run as threads in one process bit for bit.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "trainer_test_util.h"

namespace loom::trainer::test {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs the command through the shell; returns its exit status and stdout+stderr.
int runCommand(const std::string& cmd, std::string* output) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0)
    output->append(buf, n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<double> lossesOf(const std::string& json) {
  std::vector<double> out;
  std::istringstream in(json);
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find("\"loss\":");
    if (at != std::string::npos) out.push_back(std::strtod(line.c_str() + at + 7, nullptr));
  }
  return out;
}

TEST(Launch, EightProcessesUnderLoomrunPrintAFallingLoss) {
  char dir[] = "/tmp/loom-train-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string flags = "--dp 2 --tp 2 --pp 2 --steps 12 --dtype f32";
  std::string jsons[2];
  for (int run = 0; run < 2; ++run) {
    const std::string json = std::string(dir) + "/run" + std::to_string(run) + ".jsonl";
    std::string out;
    const int rc = runCommand(std::string(LOOMRUN_BIN) + " -np 8 --timeout 240 " + LOOM_TRAIN_BIN +
                                  " " + flags + " --json " + json,
                              &out);
    ASSERT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("step  12  loss"), std::string::npos) << out;
    jsons[run] = readFile(json);
    std::remove(json.c_str());
    if (run == 0) std::printf("%s", out.c_str());
  }
  rmdir(dir);
  const std::vector<double> losses = lossesOf(jsons[0]);
  ASSERT_EQ(losses.size(), 12u) << jsons[0];
  EXPECT_LT(losses.back(), losses.front() - 0.1) << "the loss must fall";
  EXPECT_EQ(jsons[0], jsons[1]) << "same config twice: bit-identical JSON";
  // Threads in one process compute the same numbers.
  RunResult threads = runOrFail(configOf(flags, 12));
  EXPECT_EQ(threads.json, jsons[0]);
  std::printf(
      "RESULT launch loomrun -np 8: loss %.4f -> %.4f, runs identical %d, threads identical %d\n",
      losses.front(), losses.back(), jsons[0] == jsons[1], threads.json == jsons[0]);
}

}  // namespace
}  // namespace loom::trainer::test
