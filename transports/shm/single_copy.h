// Single-copy paths for large messages: the receiver copies straight from the sender's buffer.
//
// - Between processes: cross-memory attach (process_vm_readv). It can be forbidden (ptrace
//   restrictions, seccomp, different user namespaces), so it is probed at handshake by reading
//   a cookie from the peer, and a probe failure means the FIFO path is used.
// - Within one process (ranks as threads): plain memcpy from the sender's address. The address
//   is never taken from shared memory (where a corrupted value would be dereferenced): the
//   sender stores it in a DirectTable, private memory that both Connections of the pair hold,
//   found through a process-wide registry by a random token exchanged at handshake.
//
// Thread-safety: the registry functions may be called from any thread. A DirectTable entry is
// written by the producer before it publishes the slot of the same index and read by the
// consumer after it has seen that slot (the ring's release/acquire orders them).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "base/status.h"

namespace loom::transport::shm {

// Entries and the ack counter are atomics on private memory (one address in both threads):
// on x86 they cost nothing over plain accesses, and they carry the happens-before between the
// sender's writes to its buffer, the receiver's copy and the sender's reuse of the buffer in a
// form that ThreadSanitizer sees (it cannot see it through two mappings of the ring).
struct DirectEntry {
  std::atomic<const void*> data{nullptr};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> seq{0};  // seq + 1 of the slot it was posted for: a forged slot finds
                                 // a stale entry from an earlier lap and is rejected
};

class DirectTable {
 public:
  explicit DirectTable(uint32_t slotCount)
      : entries_(new DirectEntry[slotCount]), mask_(slotCount - 1) {}

  // Producer, before publishing slot `seq`.
  void post(uint64_t seq, const void* data, uint64_t bytes) {
    DirectEntry& e = entries_[seq & mask_];
    e.bytes.store(bytes, std::memory_order_relaxed);
    e.seq.store(seq + 1, std::memory_order_relaxed);
    e.data.store(data, std::memory_order_release);
  }
  // Consumer, after seeing slot `seq` published: nullptr unless it was posted for `seq`.
  const void* data(uint64_t seq, uint64_t* bytes) const {
    const DirectEntry& e = entries_[seq & mask_];
    const void* data = e.data.load(std::memory_order_acquire);
    *bytes = e.bytes.load(std::memory_order_relaxed);
    return e.seq.load(std::memory_order_relaxed) == seq + 1 ? data : nullptr;
  }
  // Consumer, once the message of slot `seq` is copied (before freeing the slot).
  void ack(uint64_t seq) { acked_.store(seq + 1, std::memory_order_release); }
  // Producer, when its connection closes (or is revoked after a failure): once this returns,
  // the consumer reads none of its buffers any more (a chunk being copied finishes first).
  void withdraw() {
    std::lock_guard<std::mutex> lock(mu_);
    withdrawn_ = true;
  }
  // Consumer: held across a lookup and the copy of one chunk; check withdrawn() under it.
  std::mutex& copyMutex() { return mu_; }
  bool withdrawn() const { return withdrawn_; }
  // Producer: slots below this are copied out.
  uint64_t acked() const { return acked_.load(std::memory_order_acquire); }

 private:
  std::unique_ptr<DirectEntry[]> entries_;
  uint64_t mask_;
  std::atomic<uint64_t> acked_{0};
  std::mutex mu_;
  bool withdrawn_ = false;  // guarded by mu_
};

// Registers a consumer's table; the token identifies it to the producer. Unregister it when
// the consumer goes away (the producer keeps its own reference).
Result<uint64_t> registerDirectTable(std::shared_ptr<DirectTable> table);
void unregisterDirectTable(uint64_t token);
// nullptr when no table with this token lives in this process.
std::shared_ptr<DirectTable> findDirectTable(uint64_t token);

// Reads 8 bytes at `address` in process `pid` and compares them with `cookie`.
bool probeCma(pid_t pid, uint64_t address, uint64_t cookie);

// Copies `bytes` from `remoteAddress` in process `pid` into `dest`. Returns the bytes copied
// (process_vm_readv may copy less than asked), or a SystemError carrying errno.
Result<size_t> cmaRead(pid_t pid, uint64_t remoteAddress, void* dest, size_t bytes);

}  // namespace loom::transport::shm
