// Ranks as threads in a test: runs fn(rank) on one thread per rank and reports every rank's
// failures (the first five of each) as test failures.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace loom::test {

template <typename Fn>
void onEveryRank(int nranks, Fn fn) {
  std::vector<std::vector<std::string>> failures(nranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < nranks; ++r)
    threads.emplace_back([&, r] { failures[r] = fn(r); });
  for (std::thread& t : threads)
    t.join();
  for (int r = 0; r < nranks; ++r)
    for (size_t i = 0; i < failures[r].size() && i < 5; ++i)
      ADD_FAILURE() << "rank " << r << ": " << failures[r][i];
}

}  // namespace loom::test
