#include "runtime/driver.h"

#include <poll.h>
#include <sched.h>

#include "base/log.h"

namespace loom::runtime {

namespace {

constexpr int kMaxSleepMs = 100;

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
  return timeoutError(e.params().label.toString() + " timed out after " +
                      std::to_string(comm->config().timeoutMs) + " ms on rank " +
                      std::to_string(comm->rank()) + " of " + std::to_string(comm->nranks()) +
                      (comm->name().empty() ? "" : " (communicator " + comm->name() + ")") +
                      ": waiting at " + e.stallReport() + " (LOOM_TIMEOUT_MS sets the deadline)");
}

// One pass over every active unit. Returns true when anything moved.
bool pass(std::vector<Active>* active) {
  bool any = false;
  for (Active& a : *active) {
    if (!a.unit) continue;
    Communicator* comm = a.stream->comm;
    Status s = comm->engine().progressTransports();
    bool moved = false;
    if (s.isOk()) s = a.unit->execution->progress(&moved);
    if (s.isOk() && comm->aborted())
      s = abortedError(a.unit->execution->params().label.toString() + ": communicator aborted");
    if (s.isOk() && !a.unit->execution->done() && a.unit->deadline.expired())
      s = timeoutStatus(comm, *a.unit);
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

void sleepOnce(std::vector<Active>* active) {
  std::vector<pollfd> fds;
  int timeoutMs = kMaxSleepMs;
  for (Active& a : *active) {
    if (!a.unit) continue;
    a.stream->comm->engine().doorbell().arm();
  }
  // Last look after arming (see doorbell.h): anything published before the arm is seen here.
  if (!pass(active)) {
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

}  // namespace

Status drive(std::vector<Stream>* streams) {
  std::vector<Active> active;
  for (Stream& s : *streams) {
    Active a{&s, nullptr};
    startNext(&a);
    active.push_back(std::move(a));
  }
  int64_t spinNs = 0;
  for (Stream& s : *streams)
    spinNs = std::max<int64_t>(spinNs, s.comm->config().spinUs * 1000);
  int64_t idleSince = 0;
  for (;;) {
    bool anyActive = false;
    for (Active& a : active)
      anyActive = anyActive || a.unit != nullptr;
    if (!anyActive) break;
    if (pass(&active)) {
      idleSince = 0;
      continue;
    }
    const int64_t now = nowNs();
    if (idleSince == 0) idleSince = now;
    if (now - idleSince < spinNs) {
      __builtin_ia32_pause();
      continue;
    }
    sleepOnce(&active);
    idleSince = 0;
  }
  for (Stream& s : *streams)
    if (!s.status.isOk()) return s.status;
  return Status::ok();
}

}  // namespace loom::runtime
