// Shared memory without names: a memfd mapping whose descriptor is handed to peers over a
// Unix socket. Nothing ever appears in /dev/shm, so a crash of any process leaves nothing
// behind; the memory is freed when the last process unmaps it.
//
// Thread-safety: a SharedMemory is owned by one object; the mapped bytes are shared and their
// users synchronise with atomics placed in them.
#pragma once

#include <cstddef>
#include <string>

#include "base/fd.h"
#include "base/status.h"

namespace loom {

class SharedMemory {
 public:
  SharedMemory() = default;
  SharedMemory(SharedMemory&& o) noexcept;
  SharedMemory& operator=(SharedMemory&& o) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  ~SharedMemory();

  // Creates bytes of zeroed shared memory (name is only a debugging label), sealed against
  // shrinking or growing so that no holder of the descriptor can pull it from under a mapping.
  static Result<SharedMemory> create(const std::string& name, size_t bytes);
  // Maps a descriptor received from a peer, checking first that it is sealed against shrinking
  // and large enough (a short or shrinkable file could SIGBUS on access).
  static Result<SharedMemory> attach(UniqueFd fd, size_t bytes);

  void* data() const { return data_; }
  size_t size() const { return size_; }
  int fd() const { return fd_.get(); }
  // Drops the descriptor but keeps the mapping (after it has been sent to every peer).
  void closeFd() { fd_.reset(); }

 private:
  UniqueFd fd_;
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace loom
