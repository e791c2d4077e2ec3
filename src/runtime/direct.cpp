#include "runtime/direct.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "algorithms/schedule.h"
#include "base/fd.h"
#include "base/log.h"
#include "base/reduce.h"
#include "base/time.h"

namespace loom::runtime {
namespace {

constexpr size_t kHeaderBytes = (sizeof(WindowHeader) + 4095) / 4096 * 4096;
constexpr int64_t kLivenessEveryNs = 100'000'000;

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// "/loom-w-<comm hash>-<rank>-<pid of the creator>": the pid lets a later job (and the tests)
// tell a segment whose creator died before unlinking it from one that is being set up.
std::string segmentName(uint64_t commHash, int rank, int64_t pid) {
  char name[80];
  std::snprintf(name, sizeof name, "/loom-w-%016llx-%d-%lld",
                static_cast<unsigned long long>(commHash), rank, static_cast<long long>(pid));
  return name;
}

// Unlinks host-window segments left by processes that died between creating and unlinking them
// (a crash during init). Segments of live processes are left alone.
void removeOrphanedSegments() {
  DIR* d = ::opendir("/dev/shm");
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind("loom-w-", 0) != 0) continue;
    const size_t dash = name.rfind('-');
    const long long pid = std::atoll(name.c_str() + dash + 1);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      LOOM_LOG(kInfo, kShm) << "removing /dev/shm/" << name << " (its process is gone)";
      ::shm_unlink(("/" + name).c_str());
    }
  }
  ::closedir(d);
}

// What each rank tells the others at creation.
struct Offer {
  uint8_t ok = 0;  // eligible and its segment exists
  uint64_t capacity = 0;
  int64_t pid = 0;  // the segment's creator (its name)
};

bootstrap::Bytes encode(const Offer& o) {
  bootstrap::Bytes b(sizeof o);
  std::memcpy(b.data(), &o, sizeof o);
  return b;
}

Offer decode(const bootstrap::Bytes& b) {
  Offer o;
  if (b.size() == sizeof o) std::memcpy(&o, b.data(), sizeof o);
  return o;
}

uint64_t pidNamespace() {
  struct stat st {};
  return ::stat("/proc/self/ns/pid", &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

Result<void*> mapSegment(const std::string& name, size_t bytes, bool create) {
  const int flags = create ? O_RDWR | O_CREAT | O_EXCL : O_RDWR;
  UniqueFd fd(::shm_open(name.c_str(), flags | O_CLOEXEC, 0600));
  if (!fd.valid()) return systemErrorFromErrno("shm_open(" + name + ")", errno);
  if (create && ::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) {
    const int err = errno;
    ::shm_unlink(name.c_str());
    return systemErrorFromErrno("ftruncate(" + name + ")", err);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || static_cast<size_t>(st.st_size) < bytes)
    return remoteError("host window segment " + name + " is smaller than expected");
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return systemErrorFromErrno("mmap(" + name + ")", errno);
  return p;
}

}  // namespace

Result<std::unique_ptr<HostWindow>> HostWindow::create(bootstrap::Bootstrap& bootstrap, int rank,
                                                       int nranks, uint64_t commHash, bool eligible,
                                                       size_t capacity) {
  std::unique_ptr<HostWindow> w(new HostWindow());
  w->rank_ = rank;
  capacity = capacity / 64 * 64;
  const std::string mine = segmentName(commHash, rank, ::getpid());
  Offer offer;
  offer.capacity = capacity;
  offer.pid = ::getpid();
  if (eligible && capacity > 0) {
    removeOrphanedSegments();
    // Created at the largest size asked for; everyone then uses the smallest.
    Result<void*> p = mapSegment(mine, kHeaderBytes + kWindowSlots * capacity, /*create=*/true);
    if (p.isOk()) {
      ::munmap(*p, kHeaderBytes + kWindowSlots * capacity);
      offer.ok = 1;
    } else {
      LOOM_LOG(kInfo, kShm) << "host window off: " << p.status().toString();
    }
  }
  LOOM_ASSIGN_OR_RETURN(std::vector<bootstrap::Bytes> all, bootstrap.allGather(encode(offer)));
  bool everyone = true;
  size_t agreed = capacity;
  std::vector<int64_t> pids;
  for (const bootstrap::Bytes& b : all) {
    const Offer o = decode(b);
    everyone = everyone && o.ok;
    agreed = std::min<size_t>(agreed, o.capacity);
    pids.push_back(o.pid);
  }
  w->capacity_ = agreed;
  w->segmentBytes_ = kHeaderBytes + kWindowSlots * agreed;
  Status mapped = Status::ok();
  if (everyone) {
    w->maps_.assign(static_cast<size_t>(nranks), nullptr);
    for (int r = 0; r < nranks && mapped.isOk(); ++r) {
      Result<void*> p = mapSegment(segmentName(commHash, r, pids[r]), w->segmentBytes_, false);
      if (p.isOk())
        w->maps_[r] = *p;
      else
        mapped = p.status();
    }
    if (mapped.isOk()) {
      w->header(rank).pid = static_cast<int32_t>(::getpid());
      w->header(rank).pidNamespace = pidNamespace();
    }
  }
  // Everyone has mapped (or given up) before the names go.
  Offer after;
  after.ok = everyone && mapped.isOk();
  Result<std::vector<bootstrap::Bytes>> second = bootstrap.allGather(encode(after));
  if (offer.ok) ::shm_unlink(mine.c_str());
  LOOM_RETURN_IF_ERROR(second.status());
  bool usable = true;
  for (const bootstrap::Bytes& b : *second)
    usable = usable && decode(b).ok;
  if (!usable) {
    if (everyone && !mapped.isOk())
      LOOM_LOG(kInfo, kShm) << "host window off: " << mapped.toString();
    return std::unique_ptr<HostWindow>();  // the destructor unmaps what was mapped
  }
  LOOM_LOG(kInfo, kShm) << "host window on: " << nranks << " ranks, " << kWindowSlots << " x "
                        << w->capacity_ << " bytes per rank";
  return w;
}

HostWindow::~HostWindow() {
  for (void* p : maps_)
    if (p != nullptr) ::munmap(p, segmentBytes_);
}

std::byte* HostWindow::buffer(int r, uint64_t seq) const {
  return static_cast<std::byte*>(maps_[r]) + kHeaderBytes + (seq % kWindowSlots) * capacity_;
}

void HostWindow::publish(std::atomic<uint64_t>& flag, uint64_t value) {
  WindowHeader& h = header(rank_);
  flag.store(value, std::memory_order_release);
  h.epoch.fetch_add(1, std::memory_order_seq_cst);
  if (h.sleepers.load(std::memory_order_seq_cst) > 0)
    ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&h.epoch), FUTEX_WAKE, INT_MAX, nullptr,
              nullptr, 0);
}

void HostWindow::wait(int peer, const std::atomic<uint64_t> WindowHeader::*flag, uint64_t value,
                      int timeoutMs) const {
  WindowHeader& h = header(peer);
  h.sleepers.fetch_add(1, std::memory_order_seq_cst);
  // The epoch is read before the last look at the flag: a publish after this read moves the
  // epoch, so the futex returns at once; one before it is seen by the look.
  const uint32_t seen = h.epoch.load(std::memory_order_seq_cst);
  if ((h.*flag).load(std::memory_order_seq_cst) < value &&
      h.gone.load(std::memory_order_acquire) == 0) {
    timespec ts{timeoutMs / 1000, static_cast<long>(timeoutMs % 1000) * 1'000'000};
    ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&h.epoch), FUTEX_WAIT, seen, &ts, nullptr, 0);
  }
  h.sleepers.fetch_sub(1, std::memory_order_seq_cst);
}

void HostWindow::leave() {
  if (maps_.empty()) return;
  WindowHeader& h = header(rank_);
  h.gone.store(1, std::memory_order_release);
  h.epoch.fetch_add(1, std::memory_order_seq_cst);
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&h.epoch), FUTEX_WAKE, INT_MAX, nullptr, nullptr,
            0);
}

Status HostWindow::peerAlive(int peer) const {
  const WindowHeader& h = header(peer);
  if (h.gone.load(std::memory_order_acquire) != 0)
    return remoteError("rank " + std::to_string(peer) +
                       " left the communicator (aborted or destroyed) during a call in the host "
                       "window");
  const pid_t pid = h.pid;
  const WindowHeader& me = header(rank_);
  const bool comparable = h.pidNamespace != 0 && h.pidNamespace == me.pidNamespace;
  if (comparable && pid > 0 && pid != me.pid && ::kill(pid, 0) != 0 && errno == ESRCH)
    return remoteError("rank " + std::to_string(peer) + " (pid " + std::to_string(pid) +
                       ") exited during a call in the host window");
  return Status::ok();
}

DirectExecution::DirectExecution(ExecParams params, HostWindow* window, const DirectCall& call)
    : Execution(ExecParams{}, {}, nullptr), window_(window) {
  reset(std::move(params), call);
}

void DirectExecution::reset(ExecParams params, const DirectCall& call) {
  resetParams(std::move(params));
  call_ = call;
  twoShot_ = call.collective == algo::Collective::kAllReduce && call.twoShot;
  input_ = static_cast<const std::byte*>(call.input);
  output_ = static_cast<std::byte*>(call.output);
  count_ = call.count;
  const size_t e = this->params().elemBytes;
  const uint64_t blocks = static_cast<uint64_t>(stagedBlocks());
  pieceElems_ = std::max<uint64_t>(1, window_->capacity() / blocks / e);
  rounds_ = (count_ + pieceElems_ - 1) / pieceElems_;
  // Every round stages the same way (inline or in the buffer), decided by the largest piece;
  // every rank computes the same, so readers look where the stager wrote.
  stagedBytes_ = blocks * std::min<uint64_t>(count_, pieceElems_) * e;
  if (twoShot_) stagedBytes_ = std::max<size_t>(stagedBytes_, HostWindow::kInlineBytes + 1);
  // Bytes the peers read from this rank's buffer, and this rank from theirs (what the same
  // algorithm as messages would send and receive).
  const uint64_t n = static_cast<uint64_t>(window_->nranks());
  const uint64_t bytes = count_ * e;
  const bool root = window_->rank() == call_.root;
  switch (call_.collective) {
    case algo::Collective::kBroadcast:
      bytesSent_ = root ? (n - 1) * bytes : 0;
      bytesRecv_ = root ? 0 : bytes;
      break;
    case algo::Collective::kReduce:
      bytesSent_ = root ? 0 : bytes;
      bytesRecv_ = root ? (n - 1) * bytes : 0;
      break;
    default:  // AllGather, ReduceScatter, AllToAll: n-1 blocks each way; AllReduce below
      bytesSent_ = twoShot_ ? 2 * (n - 1) * bytes / n : (n - 1) * bytes;
      bytesRecv_ = bytesSent_;
      break;
  }
  restart(this->params().label.seq, call.tag);
}

void DirectExecution::restart(uint64_t seq, uint64_t tag) {
  setLabelSeq(seq);
  call_.tag = tag;
  round_ = 0;
  phase_ = Phase::kStage;
  waitingFor_ = -1;
  waitFlag_ = &WindowHeader::arrived;
  waitValue_ = 0;
  waitingWhat_ = "";
  // Peers are checked for life after 100 ms of waiting, not on every call (kill() is a system
  // call, and most waits last microseconds). The clock starts at the first long wait
  // (notReady), not here: most calls never read it.
  lastLivenessNs_ = 0;
  polls_ = 0;
  firstSeq_ = window_->takeRounds(rounds_);
  if (twoShot_) copied_.assign(static_cast<size_t>(window_->nranks()), false);
}

int DirectExecution::stagedBlocks() const {
  return call_.collective == algo::Collective::kReduceScatter ||
                 call_.collective == algo::Collective::kAllToAll
             ? window_->nranks()
             : 1;
}

void DirectExecution::stage(uint64_t seq, uint64_t offset, uint64_t elems) {
  const size_t e = params().elemBytes;
  std::byte* to = window_->stage(window_->rank(), seq, stagedBytes_);
  const int blocks = stagedBlocks();
  if (blocks > 1) {  // piece b of the round is block b's [offset, offset + elems)
    for (int b = 0; b < blocks; ++b)
      std::memcpy(to + b * elems * e, input_ + (b * count_ + offset) * e, elems * e);
  } else if (readByPeers()) {
    std::memcpy(to, input_ + offset * e, elems * e);
  }
}

void DirectExecution::readStaged(uint64_t seq, uint64_t offset, uint64_t elems) {
  const ExecParams& p = params();
  const size_t e = p.elemBytes;
  const int n = window_->nranks();
  const int r = window_->rank();
  switch (call_.collective) {
    case algo::Collective::kAllGather:
      for (int q = 0; q < n; ++q) {
        std::byte* to = output_ + (q * count_ + offset) * e;
        const std::byte* from = q == r ? input_ + offset * e : window_->stage(q, seq, stagedBytes_);
        if (to != from) std::memcpy(to, from, elems * e);
      }
      break;
    case algo::Collective::kAllToAll:
      for (int q = 0; q < n; ++q)
        std::memcpy(output_ + (q * count_ + offset) * e,
                    window_->stage(q, seq, stagedBytes_) + r * elems * e, elems * e);
      break;
    case algo::Collective::kReduceScatter:
      srcs_.resize(static_cast<size_t>(n));
      for (int q = 0; q < n; ++q)
        srcs_[q] = window_->stage(q, seq, stagedBytes_) + r * elems * e;
      combine(output_ + offset * e, elems);
      break;
    case algo::Collective::kBroadcast: {
      std::byte* to = output_ + offset * e;
      const std::byte* from =
          r == call_.root ? input_ + offset * e : window_->stage(call_.root, seq, stagedBytes_);
      if (to != from) std::memcpy(to, from, elems * e);
      break;
    }
    case algo::Collective::kReduce:
      if (r != call_.root) break;
      srcs_.resize(static_cast<size_t>(n));
      for (int q = 0; q < n; ++q)  // the root's own input is read where it lies
        srcs_[q] = q == r ? input_ + offset * e : window_->stage(q, seq, stagedBytes_);
      combine(output_ + offset * e, elems);
      break;
    default:
      break;
  }
}

Status DirectExecution::waitFor(const std::atomic<uint64_t> WindowHeader::*flag, uint64_t value,
                                bool* ready, int only) {
  *ready = true;
  const bool all = only == kAllRanks;
  if (all && flag == &WindowHeader::arrived && window_->allArrived() >= value) {
    waitingFor_ = -1;  // seen before (a round's arrival is also the next round's permission)
    return Status::ok();
  }
  for (int q = all ? 0 : only; q < (all ? window_->nranks() : only + 1); ++q) {
    if (q == window_->rank()) continue;
    if ((window_->header(q).*flag).load(std::memory_order_acquire) >= value) continue;
    *ready = false;
    return notReady(q, flag, value);
  }
  if (all && flag == &WindowHeader::arrived) window_->noteAllArrived(value);
  waitingFor_ = -1;
  return Status::ok();
}

Status DirectExecution::notReady(int q, const std::atomic<uint64_t> WindowHeader::*flag,
                                 uint64_t value) {
  waitingFor_ = q;
  waitFlag_ = flag;
  waitValue_ = value;
  if (window_->header(q).gone.load(std::memory_order_acquire) != 0) return window_->peerAlive(q);
  // The clock is read every 64th unsuccessful look only (a clock read costs more than a look on
  // some virtual machines).
  if (++polls_ % 64 == 0) {
    const int64_t now = nowNs();
    if (lastLivenessNs_ == 0) lastLivenessNs_ = now;
    if (now - lastLivenessNs_ >= kLivenessEveryNs) {
      lastLivenessNs_ = now;
      return window_->peerAlive(q);
    }
  }
  return Status::ok();
}

Status DirectExecution::checkTags(uint64_t seq, int only) const {
  for (int q = 0; q < window_->nranks(); ++q) {
    if ((only != kAllRanks && q != only) || q == window_->rank()) continue;
    const uint64_t theirs = window_->header(q).slot(seq).tag;
    if (theirs != call_.tag)
      return remoteError("rank " + std::to_string(q) +
                         " staged a different call in the host window (tag 0x" + hex(theirs) +
                         ", this rank's 0x" + hex(call_.tag) +
                         "): mismatched collectives on the two ranks?");
  }
  return Status::ok();
}

bool DirectExecution::readByPeers() const {
  const bool root = window_->rank() == call_.root;
  switch (call_.collective) {
    case algo::Collective::kBroadcast:
      return root;
    case algo::Collective::kReduce:
      return !root;
    default:
      return true;
  }
}

int DirectExecution::readsFrom() const {
  const bool root = window_->rank() == call_.root;
  switch (call_.collective) {
    case algo::Collective::kBroadcast:
      return root ? kNoRank : call_.root;
    case algo::Collective::kReduce:
      return root ? kAllRanks : kNoRank;
    default:
      return kAllRanks;
  }
}

void DirectExecution::reduceChunk(uint64_t pieceOffset, uint64_t chunkOffset, uint64_t chunkCount) {
  const ExecParams& p = params();
  const int n = window_->nranks();
  const uint64_t seq = firstSeq_ + round_;
  srcs_.resize(static_cast<size_t>(n));
  for (int q = 0; q < n; ++q)
    srcs_[q] = window_->stage(q, seq, stagedBytes_) + chunkOffset * p.elemBytes;
  combine(output_ + (pieceOffset + chunkOffset) * p.elemBytes, chunkCount);
}

void DirectExecution::combine(std::byte* dst, uint64_t count) {
  const ExecParams& p = params();
  const RedOpKind op = p.op == RedOpKind::kAvg ? RedOpKind::kSum : p.op;
  reduceN(p.dtype, op, dst, srcs_.data(), window_->nranks(), count);
  if (p.op == RedOpKind::kAvg) divideInPlace(p.dtype, dst, count, p.divisor);
}

void DirectExecution::finishRound(bool* progressed) {
  WindowHeader& me = window_->header(window_->rank());
  me.done.store(firstSeq_ + round_, std::memory_order_release);  // nobody waits for it
  ++round_;
  phase_ = Phase::kStage;
  if (twoShot_) copied_.assign(copied_.size(), false);
  *progressed = true;
}

Status DirectExecution::progress(bool* progressed) {
  const ExecParams& p = params();
  const int n = window_->nranks();
  const int r = window_->rank();
  WindowHeader& me = window_->header(r);
  while (round_ < rounds_) {
    const uint64_t seq = firstSeq_ + round_;
    const uint64_t offset = round_ * pieceElems_;
    const uint64_t elems = std::min<uint64_t>(pieceElems_, count_ - offset);
    bool ready = false;
    if (phase_ == Phase::kStage) {
      // A peer that has left fails this call only where it is waited for (notReady): what it
      // staged before leaving stays readable (this rank's mapping keeps it), so the last
      // Broadcast of a root that finished and destroyed its communicator still completes here.
      // Buffer seq % kWindowSlots (and its tag) may be rewritten once every rank has finished
      // round seq - kWindowSlots, which it has when it arrived for seq - kWindowSlots + 1
      // (usually seen already). A rank whose staging nobody reads this round writes neither
      // and need not wait: it runs ahead of the others, up to the rank it reads from.
      if (readByPeers()) {
        waitingWhat_ = "to finish reading an earlier round";
        const uint64_t slotFree = seq >= kWindowSlots ? seq - (kWindowSlots - 1) : 0;
        LOOM_RETURN_IF_ERROR(waitFor(&WindowHeader::arrived, slotFree, &ready, kAllRanks));
        if (!ready) return Status::ok();
        stage(seq, offset, elems);
        me.slot(seq).tag = call_.tag;
      }
      window_->publish(me.arrived, seq);
      phase_ = Phase::kWaitArrived;
      *progressed = true;
    }
    if (phase_ == Phase::kWaitArrived) {
      waitingWhat_ = "to stage its input";
      const int from = readsFrom();
      if (from != kNoRank) {
        LOOM_RETURN_IF_ERROR(waitFor(&WindowHeader::arrived, seq, &ready, from));
        if (!ready) return Status::ok();
        LOOM_RETURN_IF_ERROR(checkTags(seq, from));
      }
      *progressed = true;
      if (call_.collective != algo::Collective::kAllReduce) {
        readStaged(seq, offset, elems);
        finishRound(progressed);
        continue;
      }
      if (!twoShot_) {
        reduceChunk(offset, 0, elems);
        finishRound(progressed);
        continue;
      }
      const uint64_t mineOffset = algo::chunkOffset(elems, n, r);
      const uint64_t mineCount = algo::chunkCount(elems, n, r);
      if (mineCount > 0) {
        reduceChunk(offset, mineOffset, mineCount);
        std::memcpy(window_->buffer(r, seq) + mineOffset * p.elemBytes,
                    output_ + (offset + mineOffset) * p.elemBytes, mineCount * p.elemBytes);
      }
      window_->publish(me.reduced, seq);
      copied_[r] = true;
      phase_ = Phase::kGather;
    }
    // two_shot: copy each peer's finished chunk as it becomes ready.
    waitingWhat_ = "to finish its chunk";
    int first = -1;  // the first peer whose chunk is not final yet
    for (int q = 0; q < n; ++q) {
      if (copied_[q]) continue;
      if (window_->header(q).reduced.load(std::memory_order_acquire) < seq) {
        if (first < 0) first = q;
        continue;
      }
      const uint64_t o = algo::chunkOffset(elems, n, q);
      const uint64_t c = algo::chunkCount(elems, n, q);
      std::memcpy(output_ + (offset + o) * p.elemBytes, window_->buffer(q, seq) + o * p.elemBytes,
                  c * p.elemBytes);
      copied_[q] = true;
      *progressed = true;
    }
    if (first >= 0) return notReady(first, &WindowHeader::reduced, seq);
    finishRound(progressed);
  }
  return Status::ok();
}

bool DirectExecution::waitInPlace(int timeoutMs) {
  if (waitingFor_ < 0 || done()) return false;
  window_->wait(waitingFor_, waitFlag_, waitValue_, timeoutMs);
  return true;
}

std::string DirectExecution::stallReport(
    const std::function<std::string(int)>& describePeer) const {
  std::string s = std::string(algo::collectiveName(call_.collective)) + " " +
                  (twoShot_ ? "two_shot" : "one_shot") + " in the host window, round " +
                  std::to_string(round_ + 1) + " of " + std::to_string(rounds_);
  if (waitingFor_ >= 0)
    s += ": waiting for " +
         (describePeer ? describePeer(waitingFor_) : "rank " + std::to_string(waitingFor_)) + " " +
         waitingWhat_;
  return s;
}

}  // namespace loom::runtime
