#include "memory.h"

namespace loom::trainer {

const char* memTagName(MemTag t) {
  switch (t) {
    case MemTag::kParam:
      return "param";
    case MemTag::kGrad:
      return "grad";
    case MemTag::kOptimizer:
      return "optimizer";
    case MemTag::kActivation:
      return "activation";
    case MemTag::kCount:
      break;
  }
  return "?";
}

std::string MemoryAccount::toString() const {
  std::string s;
  for (int t = 0; t < kNumMemTags; ++t) {
    if (!s.empty()) s += ", ";
    s += std::string(memTagName(static_cast<MemTag>(t))) + " persistent " +
         std::to_string(persistent_[t]) + " B peak " + std::to_string(peak_[t]) + " B";
  }
  return s;
}

}  // namespace loom::trainer
