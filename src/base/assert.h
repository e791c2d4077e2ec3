// Assertions: for broken invariants, never for user input (user input gets a Status).
//
// LOOM_CHECK*  always on; use in cheap places (setup, planning, error paths).
// LOOM_DCHECK* debug builds only; use on hot paths (per element, per slice).
// A failed assertion prints the condition, both values for comparisons, the location and a
// message, then aborts: a broken invariant means the process state can no longer be trusted.
#pragma once

#include <sstream>
#include <string>

namespace loom::detail {

[[noreturn]] void assertFail(const char* file, int line, const char* cond, const std::string& msg);

template <typename A, typename B>
[[noreturn]] void assertCompareFail(const char* file, int line, const char* expr, const A& a,
                                    const B& b) {
  std::ostringstream os;
  os << "(" << a << " vs " << b << ")";
  assertFail(file, line, expr, os.str());
}

}  // namespace loom::detail

#define LOOM_CHECK(cond, ...)                                                             \
  do {                                                                                    \
    if (__builtin_expect(!(cond), 0))                                                     \
      ::loom::detail::assertFail(__FILE__, __LINE__, #cond, std::string("" __VA_ARGS__)); \
  } while (0)

#define LOOM_CHECK_OP(a, op, b)                                                                   \
  do {                                                                                            \
    const auto& loom_a_ = (a);                                                                    \
    const auto& loom_b_ = (b);                                                                    \
    if (__builtin_expect(!(loom_a_ op loom_b_), 0))                                               \
      ::loom::detail::assertCompareFail(__FILE__, __LINE__, #a " " #op " " #b, loom_a_, loom_b_); \
  } while (0)

#define LOOM_CHECK_EQ(a, b) LOOM_CHECK_OP(a, ==, b)
#define LOOM_CHECK_NE(a, b) LOOM_CHECK_OP(a, !=, b)
#define LOOM_CHECK_LT(a, b) LOOM_CHECK_OP(a, <, b)
#define LOOM_CHECK_LE(a, b) LOOM_CHECK_OP(a, <=, b)
#define LOOM_CHECK_GT(a, b) LOOM_CHECK_OP(a, >, b)
#define LOOM_CHECK_GE(a, b) LOOM_CHECK_OP(a, >=, b)

#ifdef NDEBUG
#define LOOM_DCHECK(cond, ...) \
  do {                         \
  } while (0)
#define LOOM_DCHECK_OP(a, op, b) \
  do {                           \
  } while (0)
#else
#define LOOM_DCHECK(cond, ...) LOOM_CHECK(cond, __VA_ARGS__)
#define LOOM_DCHECK_OP(a, op, b) LOOM_CHECK_OP(a, op, b)
#endif
#define LOOM_DCHECK_EQ(a, b) LOOM_DCHECK_OP(a, ==, b)
#define LOOM_DCHECK_LT(a, b) LOOM_DCHECK_OP(a, <, b)
#define LOOM_DCHECK_LE(a, b) LOOM_DCHECK_OP(a, <=, b)
