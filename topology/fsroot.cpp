#include "topology/fsroot.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/fd.h"

namespace loom::topo {

FsRoot::FsRoot(std::string root) : root_(std::move(root)) {
  while (!root_.empty() && root_.back() == '/')
    root_.pop_back();
  if (!root_.empty()) {
    char buf[PATH_MAX];
    if (::realpath(root_.c_str(), buf) != nullptr) root_ = buf;
    if (root_ == "/") root_.clear();
  }
}

std::string FsRoot::full(std::string_view path) const {
  return root_ + std::string(path);
}

std::optional<std::string> FsRoot::read(std::string_view path, size_t maxBytes) const {
  UniqueFd fd(::open(full(path).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return std::nullopt;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  // sysfs files report a size of 4096 whatever they hold; read until EOF, bounded.
  std::string out(maxBytes + 1, '\0');
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;  // e.g. EIO from an attribute the device cannot report
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > maxBytes) return std::nullopt;
  out.resize(got);
  while (!out.empty() &&
         (out.back() == '\n' || out.back() == ' ' || out.back() == '\t' || out.back() == '\0'))
    out.pop_back();
  return out;
}

std::vector<std::string> FsRoot::list(std::string_view dir, size_t maxEntries) const {
  std::vector<std::string> names;
  DIR* d = ::opendir(full(dir).c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    const std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    if (names.size() >= maxEntries) break;
    names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

bool FsRoot::exists(std::string_view path) const {
  struct stat st {};
  return ::stat(full(path).c_str(), &st) == 0;
}

std::optional<std::string> FsRoot::resolve(std::string_view path) const {
  char buf[PATH_MAX];
  if (::realpath(full(path).c_str(), buf) == nullptr) return std::nullopt;
  std::string real = buf;
  if (root_.empty()) return real;
  if (real.size() < root_.size() || real.compare(0, root_.size(), root_) != 0 ||
      (real.size() > root_.size() && real[root_.size()] != '/'))
    return std::nullopt;  // escapes the fake tree
  real.erase(0, root_.size());
  return real.empty() ? std::string("/") : real;
}

}  // namespace loom::topo
