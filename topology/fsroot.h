// FsRoot: read-only access to sysfs and procfs under a configurable root, so that discovery
// runs unchanged against a fake tree in tests ("/tmp/x" holds sys/bus/pci/devices/..., with
// relative symlinks as the kernel makes them).
//
// Every read is bounded (a sysfs attribute is small; a hostile or broken tree must not make
// discovery allocate without limit), paths are absolute within the root ("/sys/..."), and a
// symlink that resolves outside the root is treated as missing.
//
// Thread-safety: immutable after construction; the functions may be called from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loom::topo {

class FsRoot {
 public:
  // root "" or "/" means the real file system.
  explicit FsRoot(std::string root);

  const std::string& root() const { return root_; }
  bool isRealRoot() const { return root_.empty(); }

  // The file's contents with trailing whitespace removed, or nullopt (missing, unreadable, a
  // directory, or longer than maxBytes).
  std::optional<std::string> read(std::string_view path, size_t maxBytes = 4096) const;
  // Names in a directory, sorted, without "." and ".."; at most maxEntries (more are dropped).
  std::vector<std::string> list(std::string_view dir, size_t maxEntries = 4096) const;
  bool exists(std::string_view path) const;
  // The canonical path (symlinks resolved) relative to the root, e.g. "/sys/devices/pci0000:00/
  // 0000:00:03.0"; nullopt if it does not exist or leaves the root.
  std::optional<std::string> resolve(std::string_view path) const;

 private:
  std::string full(std::string_view path) const;
  std::string root_;  // without a trailing '/'; "" for the real root
};

}  // namespace loom::topo
