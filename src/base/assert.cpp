#include "base/assert.h"

#include <cstdio>
#include <cstdlib>

namespace loom::detail {

void assertFail(const char* file, int line, const char* cond, const std::string& msg) {
  std::fprintf(stderr, "loom: assertion failed at %s:%d: %s %s\n", file, line, cond, msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace loom::detail
