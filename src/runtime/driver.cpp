#include "runtime/driver.h"

#include <poll.h>
#include <sched.h>

#include "base/log.h"

namespace loom::runtime {

namespace {

constexpr int kMaxSleepMs = 100;
// How long a unit in the host window sleeps on a peer's futex before it looks again.
constexpr int kWindowSleepMs = 20;

struct Active {
  Stream* stream;
  std::unique_ptr<PreparedUnit> unit;
};

// Starts the next unit of a stream (preparing it); skips trivial ones. False when none left.
bool startNext(Active* a) {
  Stream* s = a->stream;
  while (s->next < s->units.size() && s->status.isOk()) {
    Unit u = std::move(s->units[s->next++]);
    Status err = s->comm->asyncError();
    if (!err.isOk()) {
      s->status = err;
      return false;
    }
    Result<std::unique_ptr<PreparedUnit>> p = s->comm->prepare(std::move(u));
    if (!p.isOk()) {
      s->status = p.status();
      return false;
    }
    if ((*p)->trivial) {
      s->comm->finish(**p, Status::ok());
      continue;
    }
    a->unit = std::move(p).value();
    return true;
  }
  return false;
}

Status timeoutStatus(Communicator* comm, const PreparedUnit& u) {
  const Execution& e = *u.execution;
  Engine* engine = &comm->engine();
  return timeoutError(e.params().label.toString() + " timed out after " +
                      std::to_string(comm->config().timeoutMs) + " ms on rank " +
                      std::to_string(comm->rank()) + " of " + std::to_string(comm->nranks()) +
                      " (" + comm->describe() + "): waiting at " +
                      e.stallReport([engine](int peer) { return engine->describePeer(peer); }) +
                      " (LOOM_TIMEOUT_MS or loomConfig_t.timeoutMs sets the deadline)");
}

// "rank 1 of 4 (communicator 0x...)", led by "allreduce #12 (...) on " unless the error already
// starts with the operation: what a transport error is prefixed with, so that every failure
// names the rank, communicator and operation that met it.
Status withFailureContext(const Status& s, Communicator* comm, const PreparedUnit& u) {
  const std::string label = u.execution->params().label.toString();
  std::string where = "rank " + std::to_string(comm->rank()) + " of " +
                      std::to_string(comm->nranks()) + " (" + comm->describe() + ")";
  if (s.message().rfind(label, 0) != 0) where = label + " on " + where;
  return s.withContext(where);
}

// Whether the unit has run past its deadline, which starts at the first check.
bool deadlinePassed(PreparedUnit* u) {
  if (!u->deadlineStarted) {
    u->deadline = Deadline::afterMs(u->timeoutMs);
    u->deadlineStarted = true;
    return false;
  }
  return u->deadline.expired();
}

// One look at a unit: the transports, its progress, then what ends it early (a failure, an
// abort, another unit's failure, its deadline; deadlines only when checkDeadlines is set: a
// clock read can cost more than a pass on a virtual machine, and a deadline of milliseconds
// does not need checking every microsecond). Failures come back with their context.
Status step(Communicator* comm, PreparedUnit* u, bool checkDeadlines, bool* moved) {
  Status s = comm->engine().progressTransports();
  if (s.isOk()) s = u->execution->progress(moved);
  if (!s.isOk()) s = withFailureContext(s, comm, *u);
  if (s.isOk() && comm->aborted())
    s = abortedError(u->execution->params().label.toString() + ": communicator aborted");
  // Another unit of this communicator failed and revoked its connections (finish()).
  if (s.isOk() && comm->failed() && !u->execution->done()) s = comm->asyncError();
  if (s.isOk() && checkDeadlines && !u->execution->done() && deadlinePassed(u))
    s = timeoutStatus(comm, *u);
  return s;
}

// One pass over every active unit. Returns true when anything moved.
bool pass(std::vector<Active>* active, bool checkDeadlines) {
  bool any = false;
  for (Active& a : *active) {
    if (!a.unit) continue;
    Communicator* comm = a.stream->comm;
    bool moved = false;
    const Status s = step(comm, a.unit.get(), checkDeadlines, &moved);
    if (!s.isOk() || a.unit->execution->done()) {
      if (!s.isOk()) {
        LOOM_LOG(kWarn, kColl) << s.toString();
        a.stream->status = s;
      }
      comm->finish(*a.unit, s);
      a.unit.reset();
      if (s.isOk()) startNext(&a);
      moved = true;
    }
    any = any || moved;
  }
  return any;
}

// What a driver does after a pass that moved nothing: it spins for LOOM_SPIN_US (pausing, or
// offering the CPU when ranks outnumber CPUs: the peer waited for may need it), then sleeps.
// The clock is read on every 8th idle pass only: on some virtual machines a clock read costs
// more than a pass, and reading it every time slowed noticing the peer (most waits of small
// calls end within 8 passes and read no clock at all). Without spinning (LOOM_SPIN_US=0) the
// first idle pass sleeps.
class Idler {
 public:
  Idler(int64_t spinNs, bool yield) : spinNs_(spinNs), yield_(yield) {}
  // After a pass that moved something, or a sleep.
  void reset() {
    idleSince_ = 0;
    idlePasses_ = 0;
  }
  // After a pass that moved nothing: true when it is time to sleep (then reset() after it).
  bool idle() {
    const bool look = spinNs_ == 0 || ++idlePasses_ % 8 == 0;
    const int64_t now = look ? nowNs() : idleSince_;
    if (idleSince_ == 0) idleSince_ = now;
    if (look && now - idleSince_ >= spinNs_) return true;
    if (yield_)
      sched_yield();
    else
      __builtin_ia32_pause();
    return false;
  }

 private:
  int64_t spinNs_;
  bool yield_;
  int64_t idleSince_ = 0;
  uint32_t idlePasses_ = 0;
};

void sleepOnce(std::vector<Active>* active) {
  std::vector<pollfd> fds;
  int timeoutMs = kMaxSleepMs;
  // A unit in the host window (direct.h) is woken by its peers' futex, not the doorbell. Alone,
  // it sleeps there (briefly, so aborts and deadlines are seen); beside other units, the
  // doorbell sleep below is kept short so that it is polled often.
  Active* only = nullptr;
  int units = 0;
  for (Active& a : *active) {
    if (!a.unit) continue;
    ++units;
    only = &a;
  }
  if (units == 1 && only->unit->execution->sleepsInPlace() &&
      only->unit->execution->waitInPlace(
          std::min(kWindowSleepMs, std::max(0, only->unit->deadline.remainingMs()))))
    return;
  for (Active& a : *active) {
    if (!a.unit) continue;
    if (a.unit->execution->sleepsInPlace()) timeoutMs = std::min(timeoutMs, 1);
    a.stream->comm->engine().doorbell().arm();
  }
  // Last look after arming (see doorbell.h): anything published before the arm is seen here.
  if (!pass(active, true)) {
    for (Active& a : *active) {
      if (!a.unit) continue;
      a.stream->comm->engine().addPollFds(&fds);
      int left = a.unit->deadline.remainingMs();
      if (left < timeoutMs) timeoutMs = left;
    }
    if (!fds.empty()) ::poll(fds.data(), fds.size(), timeoutMs);
  }
  for (Active& a : *active)
    if (a.stream) a.stream->comm->engine().doorbell().disarm();
}

// Before returning, the zero-byte sends that completed early (engine.h, linger) must have left:
// the peer's matching receive needs nothing more from this rank, so this cannot deadlock, and a
// rank that goes quiet after the call would otherwise strand its peer.
void drainLingering(std::vector<Stream>* streams) {
  for (Stream& s : *streams) {
    Communicator* comm = s.comm;
    Engine& engine = comm->engine();
    if (!engine.lingering()) continue;
    const Deadline deadline = Deadline::afterMs(comm->config().timeoutMs);
    while (engine.lingering()) {
      Status st = engine.progressTransports();
      if (st.isOk() && comm->aborted()) st = abortedError("communicator aborted");
      if (st.isOk() && deadline.expired())
        st = timeoutError("delivering a zero-byte message on rank " + std::to_string(comm->rank()) +
                          " timed out after " + std::to_string(comm->config().timeoutMs) + " ms");
      if (!st.isOk()) {
        LOOM_LOG(kWarn, kColl) << st.toString();
        comm->setAsyncError(st);
        if (s.status.isOk()) s.status = st;
        break;
      }
      if (engine.lingering()) {
        std::vector<pollfd> fds;
        engine.addPollFds(&fds);
        ::poll(fds.data(), fds.size(), 1);
      }
    }
  }
}

}  // namespace

Status drive(std::vector<Stream>* streams) {
  std::vector<Active> active;
  for (Stream& s : *streams) {
    Active a{&s, nullptr};
    startNext(&a);
    active.push_back(std::move(a));
  }
  int64_t spinNs = 0;
  bool yield = false;
  for (Stream& s : *streams) {
    spinNs = std::max<int64_t>(spinNs, s.comm->config().spinUs * 1000);
    yield = yield || s.comm->engine().oversubscribed();
  }
  Idler idler(spinNs, yield);
  uint32_t passes = 0;
  for (;;) {
    bool anyActive = false;
    for (Active& a : active)
      anyActive = anyActive || a.unit != nullptr;
    if (!anyActive) break;
    // Deadlines are checked on every 16th pass and before every sleep.
    if (pass(&active, passes++ % 16 == 0)) {
      idler.reset();
      continue;
    }
    if (!idler.idle()) continue;
    sleepOnce(&active);
    idler.reset();
  }
  drainLingering(streams);
  for (Stream& s : *streams)
    if (!s.status.isOk()) return s.status;
  return Status::ok();
}

Status driveInPlace(Communicator* comm, PreparedUnit* unit) {
  Status s = comm->asyncError();
  if (s.isOk()) {
    Execution& e = *unit->execution;
    Idler idler(comm->config().spinUs * 1000, comm->engine().oversubscribed());
    // Deadlines are checked on every 16th pass and before every sleep (so a call that ends
    // within 16 passes reads no clock for them).
    uint32_t passes = 0;
    for (;;) {
      bool moved = false;
      s = step(comm, unit, ++passes % 16 == 0, &moved);
      if (!s.isOk() || e.done()) break;
      if (moved) {
        idler.reset();
        continue;
      }
      if (!idler.idle()) continue;
      if (deadlinePassed(unit)) {
        s = timeoutStatus(comm, *unit);
        break;
      }
      // On the peer's futex, briefly, so that aborts and deadlines are seen.
      e.waitInPlace(std::min(kWindowSleepMs, std::max(0, unit->deadline.remainingMs())));
      idler.reset();
    }
  }
  if (!s.isOk()) LOOM_LOG(kWarn, kColl) << s.toString();
  comm->finish(*unit, s);
  return s;
}

}  // namespace loom::runtime
