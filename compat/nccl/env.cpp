// NCCL_* environment variables (docs/NCCL.md has the table).
//
// loom reads its settings only through its Config table (LOOM_* variables, src/base/config.cpp),
// and compat may use only loom's public API, so compat does not pass settings around loom:
// when libnccl.so.2 is loaded, before main() and before any thread of the program exists, each
// NCCL_* variable that loom has a concept for is translated to its LOOM_* name, unless that
// LOOM_* variable is already set (an explicit loom setting wins). loom then reads it as usual,
// once per communicator, and loom-info shows it. This file is the only place in compat that
// reads the environment (tests/lint/lint.py allows it and nothing else).
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

std::string lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string upper(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> splitOn(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

void note(const char* var, const std::string& value, const std::string& why) {
  std::fprintf(stderr, "loom (libnccl.so.2): %s=%s: %s\n", var, value.c_str(), why.c_str());
}

// NCCL_DEBUG: the levels are loom's, except NCCL's ABORT (log warnings and abort on error).
bool debugLevel(const std::string& v, std::string* out) {
  std::string u = upper(trim(v));
  if (u == "ABORT") u = "WARN";
  *out = u;
  return true;
}

// NCCL_DEBUG_SUBSYS: the subsystems loom has (GRAPH is loom's TOPO, CALL its API); others are
// dropped. A list left empty logs nothing of what was asked, so it falls back to ALL.
bool debugSubsys(const std::string& v, std::string* out) {
  std::string s = upper(trim(v));
  const bool exclude = !s.empty() && s[0] == '^';
  if (exclude) s.erase(0, 1);
  std::string kept;
  for (std::string name : splitOn(s, ',')) {
    name = trim(name);
    if (name == "GRAPH") name = "TOPO";
    if (name == "CALL") name = "API";
    if (name == "INIT" || name == "BOOTSTRAP" || name == "NET" || name == "SHM" || name == "COLL" ||
        name == "TUNING" || name == "TOPO" || name == "API" || name == "ALL")
      kept += (kept.empty() ? "" : ",") + name;
  }
  if (kept.empty()) {
    *out = "ALL";
    return !exclude;
  }
  *out = (exclude ? "^" : "") + kept;
  return true;
}

// NCCL_ALGO: "Ring", "Tree,Ring", "^NVLS" or "allreduce:tree;allgather:ring". For each
// collective the first algorithm loom has is used: Ring is ring AllReduce, AllGather and
// ReduceScatter and chain (pipelined) Broadcast; Tree is double-binary-tree AllReduce. NCCL's
// CollNet, NVLS and PAT need hardware or kernels loom does not have; exclusions ('^') have no
// LOOM_ALGO form. What cannot be translated is reported on stderr and ignored.
std::string loomAlgo(const std::string& coll, const std::string& algo) {
  if (algo == "ring") {
    if (coll == "allreduce" || coll == "allgather" || coll == "reducescatter") return "ring";
    if (coll == "broadcast") return "chain";
  }
  if (algo == "tree" && coll == "allreduce") return "double_binary_tree";
  return "";
}

bool algoSpec(const std::string& v, std::string* out) {
  static const char* kColls[] = {"allreduce", "broadcast", "reduce", "allgather", "reducescatter"};
  if (trim(v).rfind('^', 0) == 0) {
    note("NCCL_ALGO", v, "exclusions ('^') have no loom form; ignored (loom's planner chooses)");
    return false;
  }
  std::string spec;
  for (const std::string& entry : splitOn(lower(v), ';')) {
    std::string e = trim(entry);
    if (e.empty()) continue;
    std::vector<std::string> colls;
    std::string list = e;
    size_t colon = e.find(':');
    if (colon != std::string::npos) {
      colls.push_back(trim(e.substr(0, colon)));
      list = e.substr(colon + 1);
    } else {
      colls.assign(std::begin(kColls), std::end(kColls));
    }
    for (const std::string& coll : colls) {
      for (const std::string& a : splitOn(list, ',')) {
        std::string mapped = loomAlgo(coll, trim(a));
        if (mapped.empty()) continue;
        spec += (spec.empty() ? "" : ";") + coll + ":" + mapped;
        break;
      }
    }
  }
  if (spec.empty()) {
    note("NCCL_ALGO", v, "no algorithm loom has (Ring, Tree); ignored (loom's planner chooses)");
    return false;
  }
  *out = spec;
  return true;
}

bool same(const std::string& v, std::string* out) {
  *out = v;
  return true;
}

struct Mapping {
  const char* nccl;
  const char* loom;
  bool (*translate)(const std::string& value, std::string* out);
};

constexpr Mapping kMappings[] = {
    {"NCCL_DEBUG", "LOOM_DEBUG", debugLevel},
    {"NCCL_DEBUG_SUBSYS", "LOOM_DEBUG_SUBSYS", debugSubsys},
    {"NCCL_DEBUG_FILE", "LOOM_DEBUG_FILE", same},
    {"NCCL_ALGO", "LOOM_ALGO", algoSpec},
    {"NCCL_SOCKET_IFNAME", "LOOM_SOCKET_IFNAME", same},
    {"NCCL_COMM_ID", "LOOM_COMM_ID", same},
    {"NCCL_TOPO_FILE", "LOOM_TOPO_FILE", same},
    {"NCCL_TOPO_DUMP_FILE", "LOOM_TOPO_DUMP_FILE", same},
    {"NCCL_SHM_DISABLE", "LOOM_SHM_DISABLE", same},
};

__attribute__((constructor)) void translateNcclEnvironment() {
  for (const Mapping& m : kMappings) {
    const char* value = std::getenv(m.nccl);
    if (value == nullptr || std::getenv(m.loom) != nullptr) continue;
    std::string translated;
    if (m.translate(value, &translated)) setenv(m.loom, translated.c_str(), 0);
  }
}

}  // namespace
