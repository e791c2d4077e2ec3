#include "base/shm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <utility>

namespace loom {

SharedMemory::SharedMemory(SharedMemory&& o) noexcept
    : fd_(std::move(o.fd_)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(data_, size_);
    fd_ = std::move(o.fd_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

SharedMemory::~SharedMemory() {
  if (data_) ::munmap(data_, size_);
}

Result<SharedMemory> SharedMemory::create(const std::string& name, size_t bytes) {
  UniqueFd fd(::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return systemErrorFromErrno("memfd_create(" + name + ")", errno);
  if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0)
    return systemErrorFromErrno("ftruncate shared memory to " + std::to_string(bytes), errno);
  // Sealed against resizing: a peer holding the descriptor cannot shrink it under our mapping
  // (which would turn our next access into SIGBUS).
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
    return systemErrorFromErrno("sealing shared memory", errno);
  return attach(std::move(fd), bytes);
}

Result<SharedMemory> SharedMemory::attach(UniqueFd fd, size_t bytes) {
  int seals = ::fcntl(fd.get(), F_GET_SEALS);
  if (seals < 0 || !(seals & F_SEAL_SHRINK))
    return remoteError("shared memory from peer is not a memfd sealed against shrinking");
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return systemErrorFromErrno("fstat shared memory", errno);
  if (static_cast<size_t>(st.st_size) < bytes)
    return remoteError("shared memory from peer has " + std::to_string(st.st_size) +
                       " bytes, expected " + std::to_string(bytes));
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED)
    return systemErrorFromErrno("mmap " + std::to_string(bytes) + " bytes of shared memory", errno);
  SharedMemory m;
  m.fd_ = std::move(fd);
  m.data_ = p;
  m.size_ = bytes;
  return m;
}

}  // namespace loom
