// The process environment as the tools see it. loom's rule (DESIGN.md section 3) is that only
// src/base/config.cpp calls getenv; the tools read `environ` through this snapshot instead.
//
// Thread-safety: a snapshot is a plain value. Taking one reads `environ`, so do it while no
// other thread calls setenv.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loom::launch {

using EnvMap = std::map<std::string, std::string>;

// Every NAME=VALUE of `environ` now.
EnvMap snapshotEnvironment();

// Value of `name` in the current environment, or nullopt.
std::optional<std::string> environmentValue(std::string_view name);

// "NAME=VALUE" strings in name order (storage for an envp array).
std::vector<std::string> toEnvStrings(const EnvMap& env);

// The executable `program` names: itself when it contains a '/', else the first executable
// file of that name in the directories of PATH (from `env`). "" when none is found.
std::string resolveProgram(const std::string& program, const EnvMap& env);

// Lower-case hex of `size` bytes.
std::string toHex(const void* data, size_t size);

}  // namespace loom::launch
