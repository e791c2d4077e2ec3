#include "runtime/communicator.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/host.h"
#include "base/log.h"
#include "base/random.h"
#include "base/wire.h"
#include "runtime/driver.h"
#include "runtime/testing.h"
#include "runtime/topo_fusion.h"

namespace loom::runtime {

namespace {

std::string storePrefix(uint64_t commHash) {
  return "loom/" + toHex(&commHash, sizeof(commHash)) + "/";
}

}  // namespace

namespace {

// The profile LOOM_TUNING_FILE names, checked by parsing it and written back as its canonical
// text ("" when unset).
Result<std::string> loadTuningText(const Config& config) {
  if (config.tuningFile.empty()) return std::string();
  std::ifstream in(config.tuningFile);
  if (!in)
    return invalidArgument("LOOM_TUNING_FILE: cannot read '" + config.tuningFile +
                           "': " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  Result<algo::CostModel> model = algo::CostModel::parse(text.str());
  if (!model.isOk()) return model.status().withContext("LOOM_TUNING_FILE " + config.tuningFile);
  std::string canonical = model->format();  // without comments: every rank sends it at init
  if (canonical.size() > PeerInfo::kMaxTuningBytes)
    return invalidArgument("LOOM_TUNING_FILE " + config.tuningFile + ": the profile is " +
                           std::to_string(canonical.size()) + " bytes without comments; at most " +
                           std::to_string(PeerInfo::kMaxTuningBytes) +
                           " (fewer measured.np<N> lines)");
  return canonical;
}

}  // namespace

Result<std::unique_ptr<Communicator>> Communicator::create(Init init) {
  if (init.nranks <= 0)
    return invalidArgument("nranks must be positive, got " + std::to_string(init.nranks));
  if (init.rank < 0 || init.rank >= init.nranks)
    return invalidArgument("rank " + std::to_string(init.rank) + " is out of range for nranks " +
                           std::to_string(init.nranks));
  std::unique_ptr<Communicator> c(new Communicator(std::move(init)));
  log::RankScope scope(c->rank());
  LOOM_ASSIGN_OR_RETURN(c->overrides_, algo::parseAlgoOverrides(c->init_.config.algo));
  Engine::Params ep;
  ep.rank = c->rank();
  ep.nranks = c->nranks();
  ep.commHash = c->init_.commHash;
  ep.secret = c->init_.secret;
  ep.config = c->init_.config;
  LOOM_ASSIGN_OR_RETURN(ep.tuning, loadTuningText(c->init_.config));
  LOOM_ASSIGN_OR_RETURN(c->engine_, Engine::create(std::move(ep)));
  c->bootstrap_ = std::make_unique<bootstrap::Bootstrap>(
      c->init_.store, storePrefix(c->init_.commHash), c->rank(), c->nranks(),
      c->init_.config.timeoutMs, &c->engine_->abortFlag());
  Result<std::vector<bootstrap::Bytes>> all =
      c->bootstrap_->allGather(c->engine_->localInfo().serialize());
  if (!all.isOk()) return all.status().withContext("exchanging peer information at init");
  std::vector<PeerInfo> peers;
  for (int r = 0; r < c->nranks(); ++r) {
    LOOM_ASSIGN_OR_RETURN(PeerInfo p, PeerInfo::parse((*all)[r], r));
    peers.push_back(std::move(p));
  }
  const std::string peers0Tuning = peers[0].tuning;
  LOOM_RETURN_IF_ERROR(c->engine_->setPeers(std::move(peers)));
  LOOM_ASSIGN_OR_RETURN(
      c->topo_, fuseTopology(*c->bootstrap_, c->init_.config, c->rank(), c->engine_->hostMap()));
  // Every rank must plan alike (or their schedules would not match): all use rank 0's profile
  // and the communicator-wide oversubscription.
  LOOM_ASSIGN_OR_RETURN(c->costModel_, algo::CostModel::parse(peers0Tuning));
  const topo::HostMap& hosts = c->engine_->hostMap();
  c->planTopology_.nhosts = hosts.nhosts();
  for (int h = 0; h < hosts.nhosts(); ++h)
    c->planTopology_.maxRanksPerHost =
        std::max(c->planTopology_.maxRanksPerHost, static_cast<int>(hosts.ranksOn(h).size()));
  c->planTopology_.oversubscribed = c->engine_->anyOversubscribed();
  std::vector<int> hostOf(static_cast<size_t>(c->nranks()));
  for (int r = 0; r < c->nranks(); ++r)
    hostOf[r] = hosts.hostOf(r);
  c->hostLayout_ = algo::HostLayout::fromHostOf(hostOf);
  if (hosts.nhosts() == 1 && c->nranks() > 1) {
    // Every rank takes part (HostWindow::create is collective); a rank whose peers are not all
    // other processes reached over shm (threads, a forced transport, the fault-injection
    // wrapper) turns the window off for everyone.
    bool eligible = c->config().directBytes > 0 && !transportDecoratorForTesting();
    for (int r = 0; r < c->nranks() && eligible; ++r)
      eligible = r == c->rank() || (c->engine_->transportOf(r) == "shm" &&
                                    c->engine_->peerInfo(r).pid != c->engine_->localInfo().pid);
    LOOM_ASSIGN_OR_RETURN(
        c->window_,
        HostWindow::create(*c->bootstrap_, c->rank(), c->nranks(), c->init_.commHash, eligible,
                           static_cast<size_t>(std::max<int64_t>(0, c->config().directBytes))));
  }
  Engine* engine = c->engine_.get();
  c->lanes_ = std::make_unique<LaneTable>(
      [engine](int peer, int lane) { return engine->connection(peer, lane); });
  c->p2pSendSeq_.assign(c->nranks(), 0);
  c->p2pRecvSeq_.assign(c->nranks(), 0);
  return c;
}

Communicator::~Communicator() {
  if (window_) window_->leave();
  {
    std::lock_guard<std::mutex> lock(queueMu_);
    stopWorker_ = true;
  }
  queueCv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

Result<std::unique_ptr<Communicator>> Communicator::split(int color, int key,
                                                          const Config& config) {
  ByteWriter w;
  w.u32(static_cast<uint32_t>(color));
  w.u32(static_cast<uint32_t>(key));
  Result<std::vector<bootstrap::Bytes>> all = bootstrap_->allGather(w.take());
  if (!all.isOk()) return all.status().withContext("comm split: exchanging colors");
  const uint64_t seq = splitSeq_++;
  if (color < 0) return std::unique_ptr<Communicator>();
  struct Member {
    int key, rank;
  };
  std::vector<Member> members;
  for (int r = 0; r < nranks(); ++r) {
    ByteReader rd((*all)[r].data(), (*all)[r].size(), "split color of rank " + std::to_string(r));
    uint32_t c, k;
    LOOM_RETURN_IF_ERROR(rd.u32(&c));
    LOOM_RETURN_IF_ERROR(rd.u32(&k));
    if (static_cast<int>(c) == color) members.push_back({static_cast<int>(k), r});
  }
  std::stable_sort(members.begin(), members.end(), [](const Member& a, const Member& b) {
    return a.key != b.key ? a.key < b.key : a.rank < b.rank;
  });
  Init child;
  child.store = init_.store;
  child.nranks = static_cast<int>(members.size());
  for (int i = 0; i < child.nranks; ++i)
    if (members[i].rank == rank()) child.rank = i;
  uint64_t material[3] = {init_.commHash, seq, static_cast<uint64_t>(static_cast<uint32_t>(color))};
  child.commHash = hash64(material, sizeof(material));
  child.secret = init_.secret;
  child.config = config;
  child.name = init_.name.empty() ? "" : init_.name + "/" + std::to_string(color);
  return create(std::move(child));
}

std::string Communicator::describe() const {
  const uint64_t h = init_.commHash;
  return "communicator " + (init_.name.empty() ? std::string() : init_.name + " ") + "0x" +
         toHex(&h, sizeof(h));
}

Status Communicator::asyncError() const {
  // Every call asks: the common answer needs no lock (setAsyncError sets failed_ last).
  if (!failed_.load(std::memory_order_acquire) && !aborted()) return Status::ok();
  std::lock_guard<std::mutex> lock(errorMu_);
  // An abort from a signal handler sets only the flag (abortSignalSafe()).
  if (asyncError_.isOk() && aborted()) return abortedError("communicator aborted");
  return asyncError_;
}

void Communicator::setAsyncError(const Status& status) {
  std::lock_guard<std::mutex> lock(errorMu_);
  if (asyncError_.isOk()) asyncError_ = status;
  failed_.store(true, std::memory_order_release);
}

Counters Communicator::counters() const {
  std::lock_guard<std::mutex> lock(countersMu_);
  return counters_;
}

void Communicator::abort() {
  setAsyncError(abortedError("communicator aborted"));
  if (window_) window_->leave();
  engine_->abort();
  queueCv_.notify_all();
}

uint64_t Communicator::nextP2pSeq(int peer, bool send) {
  return send ? p2pSendSeq_[peer]++ : p2pRecvSeq_[peer]++;
}

std::byte* Communicator::scratch(size_t bytes) {
  if (bytes > scratchBytes_) {
    scratch_.reset(new std::byte[bytes]);
    scratchBytes_ = bytes;
  }
  return scratch_.get();
}

void Communicator::finish(const PreparedUnit& pu, const Status& status) {
  // A zero-byte send completes without waiting for delivery (schedule.h); if its connection
  // still holds it (e.g. mid-handshake), the engine keeps progressing that connection.
  if (status.isOk() && pu.execution)
    for (const LaneState* lane : pu.execution->lanes())
      if (lane->send && lane->conn->sendsCompleted() < lane->conn->sendsPosted())
        engine_->linger(lane->conn);
  if (!status.isOk()) {
    Code c = status.code();
    if (c != Code::kInvalidArgument && c != Code::kInvalidUsage) {
      setAsyncError(status);
      // The error is sticky, so these connections carry nothing more. Closing them now (without
      // waiting) withdraws what the failed operation had posted: between threads a peer copies
      // straight from our send buffers, which the caller may free as soon as we return. The
      // peers hear of it at once instead of at their deadline.
      engine_->revokeAll();
    }
    return;
  }
  if (pu.unit.ops[0].internal) return;
  std::lock_guard<std::mutex> lock(countersMu_);
  for (const OpDesc& op : pu.unit.ops)
    ++counters_.calls[static_cast<int>(op.collective)];
  if (!pu.execution) return;
  const int first = static_cast<int>(pu.unit.ops[0].collective);
  if (pu.unit.isP2p()) {
    counters_.bytesSent[static_cast<int>(algo::Collective::kSend)] += pu.execution->bytesSent();
    counters_.bytesRecv[static_cast<int>(algo::Collective::kRecv)] += pu.execution->bytesReceived();
  } else {
    counters_.bytesSent[first] += pu.execution->bytesSent();
    counters_.bytesRecv[first] += pu.execution->bytesReceived();
  }
}

LaneProvider Communicator::laneProvider() {
  LaneTable* lanes = lanes_.get();
  return [lanes](int peer, int lane, bool send) { return lanes->get(peer, lane, send); };
}

DeviceDirect* Communicator::deviceDirect() {
  if (deviceDirectChecked_) return deviceDirect_.get();
  deviceDirectChecked_ = true;
  if (!config().cudaDirect) return nullptr;
  for (int p = 0; p < nranks(); ++p)
    if (engine_->peerInfo(p).pid != engine_->peerInfo(rank()).pid) return nullptr;
  deviceDirect_ = DeviceDirect::create(commHash(), rank(), nranks());
  return deviceDirect_.get();
}

DeviceIpc* Communicator::deviceIpc() {
  if (deviceIpcChecked_) return deviceIpc_.get();
  deviceIpcChecked_ = true;
  if (!config().cudaIpc) return nullptr;
  for (int p = 0; p < nranks(); ++p)
    if (engine_->peerInfo(p).hostId != engine_->peerInfo(rank()).hostId) return nullptr;
  deviceIpc_ = std::make_unique<DeviceIpc>(
      rank(), nranks(), static_cast<size_t>(std::max<int64_t>(config().cudaIpcBytes, 0)));
  return deviceIpc_.get();
}

void Communicator::enqueueDeviceIpc(const OpDesc& op, int device,
                                    std::shared_ptr<cuda::StreamStage> stage,
                                    std::shared_ptr<WorkState> work) {
  Task task;
  task.work = std::move(work);
  task.stages.push_back(std::move(stage));
  task.ipc = true;
  task.ipcOp = op;
  task.ipcDevice = device;
  push(std::move(task));
}

Status Communicator::runNow(const OpDesc& op) {
  std::lock_guard<std::mutex> engine(engineMu_);
  // A collective through the host window: its reused unit, no stream, no allocation.
  if (PreparedUnit* unit = prepareInWindow(op)) return driveInPlace(this, unit);
  std::vector<Stream> stream(1);
  stream[0].comm = this;
  stream[0].units.emplace_back();
  stream[0].units[0].ops.push_back(op);
  return drive(&stream);
}

const std::shared_ptr<cuda::StageBudget>& Communicator::stageBudget() {
  if (!stageBudget_)
    stageBudget_ = std::make_shared<cuda::StageBudget>(
        static_cast<size_t>(std::max<int64_t>(config().cudaStageBytes, 0)));
  return stageBudget_;
}

void Communicator::countCall(algo::Collective collective, uint64_t bytesSent, uint64_t bytesRecv) {
  std::lock_guard<std::mutex> lock(countersMu_);
  const int c = static_cast<int>(collective);
  ++counters_.calls[c];
  counters_.bytesSent[c] += bytesSent;
  counters_.bytesRecv[c] += bytesRecv;
}

void Communicator::enqueue(std::vector<std::vector<Unit>> streams, std::shared_ptr<WorkState> work,
                           std::vector<std::shared_ptr<cuda::StreamStage>> stages) {
  Task task;
  task.streams = std::move(streams);
  task.work = std::move(work);
  task.stages = std::move(stages);
  push(std::move(task));
}

void Communicator::push(Task task) {
  std::lock_guard<std::mutex> lock(queueMu_);
  queue_.push_back(std::move(task));
  ++outstanding_;
  if (!worker_.joinable()) worker_ = std::thread([this] { workerLoop(); });
  queueCv_.notify_all();
}

bool Communicator::idle() {
  std::lock_guard<std::mutex> lock(queueMu_);
  return outstanding_ == 0;
}

void Communicator::workerLoop() {
  log::RankScope scope(rank());
  for (;;) {
    Task task;
    {
      std::unique_lock<std::mutex> lock(queueMu_);
      queueCv_.wait(lock, [this] { return stopWorker_ || !queue_.empty(); });
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    Status status;
    // Device operations: their streams must have copied the inputs out first.
    const Deadline deadline = Deadline::afterMs(config().timeoutMs);
    for (const auto& stage : task.stages) {
      status = stage->waitInputs(deadline, &engine_->abortFlag());
      if (!status.isOk()) {
        setAsyncError(status);
        break;
      }
    }
    if (status.isOk() && task.ipc) {
      status = deviceIpc_->run(task.ipcOp, task.ipcDevice, deadline, &engine_->abortFlag(),
                               [this](const OpDesc& op) { return runNow(op); });
      if (!status.isOk()) setAsyncError(status);
    } else if (status.isOk()) {
      std::lock_guard<std::mutex> engine(engineMu_);
      std::vector<Stream> streams;
      for (std::vector<Unit>& units : task.streams) {
        streams.emplace_back();
        streams.back().comm = this;
        streams.back().units = std::move(units);
      }
      status = drive(&streams);
    }
    for (const auto& stage : task.stages)
      stage->complete();
    task.work->complete(status);
    {
      std::lock_guard<std::mutex> lock(queueMu_);
      --outstanding_;
    }
    queueCv_.notify_all();
  }
}

Status Communicator::quiesce() {
  Deadline deadline = Deadline::afterMs(config().timeoutMs);
  std::unique_lock<std::mutex> lock(queueMu_);
  while (outstanding_ > 0) {
    if (deadline.expired())
      return timeoutError(std::to_string(outstanding_) +
                          " asynchronous operation(s) still running at destroy after " +
                          std::to_string(config().timeoutMs) + " ms");
    queueCv_.wait_for(lock, std::chrono::milliseconds(100));
  }
  return Status::ok();
}

}  // namespace loom::runtime
