// The exact simulator (simulate.h): a discrete-event loop over the step graph
// (simulate_graph.cpp) with fluid flows that share links.
//
// Events are a flow's latency having passed (it joins its links; a queue by time) and a flow's
// bytes having drained (it leaves them; an indexed heap by completion time). Whenever the set of
// flows on a link changes, every flow on that link gets its rate again (min over its links of
// capacity / flows there), its remaining bytes are brought up to date, and its completion moves
// in the heap.
#include <algorithm>
#include <limits>
#include <queue>
#include <unordered_map>

#include "algorithms/simulate.h"
#include "algorithms/simulate_internal.h"

namespace loom::algo {
namespace {

using sim::Graph;
using sim::Node;

constexpr double kBytesPerUsPerGbps = 1e3;  // 1 GB/s = 1e9 B/s = 1e3 B/us

struct Flow {
  double remaining = 0;  // bytes
  double rate = 0;       // bytes per microsecond
  double lastUs = 0;
  uint32_t version = 0;
  std::vector<int> links;
  int a = -1, b = -1;  // nodes whose current slice this flow is (b: the receive, or -1)
  int id = -1;
  uint64_t epoch = 0;  // Engine::rerate's marker
  double doneUs = 0;   // when its bytes drain at the current rate (drain heap key)
  int heapPos = -1;    // index in Engine::drains_, -1 when not there
  bool onLinks = false;
};

struct Event {
  double timeUs;
  int flow;
  uint32_t version;
  bool operator>(const Event& o) const {
    if (timeUs != o.timeUs) return timeUs > o.timeUs;
    return flow > o.flow;
  }
};

class Engine {
 public:
  Engine(const Graph& g, const SimNetwork& net, const SimOptions& opt)
      : g_(g), net_(net), opt_(opt), links_(net.links()) {
    const size_t n = g.nodes.size();
    started_.assign(n, 0);
    done_.assign(n, 0);
    waiting_.assign(n, 0);
    startUs_.assign(n, -1);
    endUs_.assign(n, 0);
    onLink_.resize(links_.size());
    result_.linkBytes.assign(links_.size(), 0);
    busySince_.assign(links_.size(), 0);
  }

  Result<SimResult> run() {
    for (int i = 0; i < static_cast<int>(g_.nodes.size()); ++i)
      LOOM_RETURN_IF_ERROR(tryStart(i));
    while (!events_.empty() || !drains_.empty()) {
      const bool drain =
          !drains_.empty() && (events_.empty() || doneUs(drains_.front()) <= events_.top().timeUs);
      if (drain) {
        const int id = drains_.front();
        now_ = doneUs(id);
        heapErase(id);
        LOOM_RETURN_IF_ERROR(finish(id));
        continue;
      }
      const Event e = events_.top();
      events_.pop();
      if (e.version != flows_[static_cast<size_t>(e.flow)].version) continue;
      now_ = e.timeUs;
      join(e.flow);
    }
    return collect();
  }

 private:
  // Whether node i's next slice may start: its previous slice is done and every node it waits
  // for has done the slices holding its elements.
  bool ready(int i) const {
    const Node& n = g_.nodes[static_cast<size_t>(i)];
    const int k = started_[static_cast<size_t>(i)];
    if (k >= n.slices || done_[static_cast<size_t>(i)] < k) return false;
    for (uint32_t d = n.depBegin; d < n.depEnd; ++d) {
      const int j = g_.deps[d];
      if (done_[static_cast<size_t>(j)] < sim::slicesNeeded(n, k, g_.nodes[static_cast<size_t>(j)]))
        return false;
    }
    return true;
  }

  Status tryStart(int i) {
    if (!ready(i)) return Status::ok();
    const Node& n = g_.nodes[static_cast<size_t>(i)];
    if (n.match < 0) {  // a local copy or reduce
      const bool self = n.kind == StepKind::kCopy && !n.writes;
      const double bytes = self ? 0 : sliceBytes(n, started_[static_cast<size_t>(i)]);
      const double latency = firstSliceUs(i);
      begin(i);
      Flow& f = newFlow(bytes, i, -1);
      f.links.assign(1, net_.computeLink(n.rank));
      schedule(f, latency);
      return Status::ok();
    }
    waiting_[static_cast<size_t>(i)] = 1;
    const int m = n.match;
    if (!waiting_[static_cast<size_t>(m)]) return Status::ok();
    waiting_[static_cast<size_t>(i)] = waiting_[static_cast<size_t>(m)] = 0;
    const int send = n.kind == StepKind::kSend ? i : m;
    const int recv = send == i ? m : i;
    const Node& s = g_.nodes[static_cast<size_t>(send)];
    const Node& r = g_.nodes[static_cast<size_t>(recv)];
    const SimRoute* route = nullptr;
    LOOM_RETURN_IF_ERROR(routeOf(s.rank, r.rank, &route));
    // A step's message streams: its first slice pays the latency, later ones follow it.
    const bool first = started_[static_cast<size_t>(send)] == 0;
    const double latency = first ? route->latencyUs + opt_.stepUs : 0;
    const double bytes = sliceBytes(s, started_[static_cast<size_t>(send)]);
    begin(send);
    begin(recv);
    Flow& f = newFlow(bytes, send, recv);
    f.links.assign(route->links.begin(), route->links.end());
    if (r.kind == StepKind::kRecvReduce) f.links.push_back(net_.computeLink(r.rank));
    schedule(f, latency);
    return Status::ok();
  }

  double firstSliceUs(int i) const {
    return started_[static_cast<size_t>(i)] == 0 ? opt_.stepUs : 0;
  }

  double sliceBytes(const Node& n, int k) const {
    const uint64_t s = static_cast<uint64_t>(n.slices);
    const uint64_t lo = n.count * static_cast<uint64_t>(k) / s;
    const uint64_t hi = n.count * static_cast<uint64_t>(k + 1) / s;
    return static_cast<double>((hi - lo) * opt_.elementBytes);
  }

  void begin(int i) {
    if (started_[static_cast<size_t>(i)] == 0) startUs_[static_cast<size_t>(i)] = now_;
    ++started_[static_cast<size_t>(i)];
  }

  Status routeOf(int src, int dst, const SimRoute** out) {
    const uint64_t key = static_cast<uint64_t>(src) << 32 | static_cast<uint32_t>(dst);
    auto it = routes_.find(key);
    if (it == routes_.end()) {
      SimRoute r;
      LOOM_RETURN_IF_ERROR(net_.route(src, dst, &r));
      it = routes_.emplace(key, std::move(r)).first;
    }
    *out = &it->second;  // unordered_map nodes stay put
    return Status::ok();
  }

  // A flow of `bytes` for the current slices of nodes a and b (-1: none); the caller sets its
  // links, then schedules it.
  Flow& newFlow(double bytes, int a, int b) {
    int id;
    if (!free_.empty()) {
      id = free_.back();
      free_.pop_back();
    } else {
      id = static_cast<int>(flows_.size());
      flows_.emplace_back();
    }
    Flow& f = flows_[static_cast<size_t>(id)];
    f.id = id;
    f.remaining = bytes;
    f.rate = 0;
    f.lastUs = now_;
    f.a = a;
    f.b = b;
    f.onLinks = false;
    ++result_.flows;
    return f;
  }

  void schedule(Flow& f, double latencyUs) {
    ++f.version;
    events_.push({now_ + latencyUs, f.id, f.version});
  }

  void join(int id) {
    Flow& f = flows_[static_cast<size_t>(id)];
    if (f.remaining <= 0 || f.links.empty()) {
      heapSet(id, now_);
      return;
    }
    f.onLinks = true;
    for (int l : f.links) {
      auto& on = onLink_[static_cast<size_t>(l)];
      if (on.empty()) busySince_[static_cast<size_t>(l)] = now_;
      on.push_back(id);
      result_.linkBytes[static_cast<size_t>(l)] += f.remaining;
    }
    rerate(f.links);
  }

  // Brings every flow on these links to `now_` and gives it its new rate.
  void rerate(const std::vector<int>& links) {
    touched_.clear();
    ++epoch_;
    for (int l : links) {
      for (int id : onLink_[static_cast<size_t>(l)]) {
        Flow& f = flows_[static_cast<size_t>(id)];
        if (f.epoch == epoch_) continue;
        f.epoch = epoch_;
        touched_.push_back(id);
      }
    }
    for (int id : touched_) {
      Flow& f = flows_[static_cast<size_t>(id)];
      f.remaining = std::max(0.0, f.remaining - f.rate * (now_ - f.lastUs));
      f.lastUs = now_;
      double rate = std::numeric_limits<double>::infinity();
      for (int l : f.links) {
        const double share = links_[static_cast<size_t>(l)].gbps * kBytesPerUsPerGbps /
                             static_cast<double>(onLink_[static_cast<size_t>(l)].size());
        rate = std::min(rate, share);
      }
      // Unchanged rate (held back by another link): its pending event still holds.
      if (rate == f.rate) continue;
      f.rate = rate;
      heapSet(id, now_ + f.remaining / rate);
    }
  }

  // The drain events: an indexed binary min-heap of flows by (doneUs, id), so that a new rate
  // moves a flow's one entry instead of leaving stale ones behind.
  double doneUs(int id) const { return flows_[static_cast<size_t>(id)].doneUs; }
  bool before(int a, int b) const {
    const double ta = doneUs(a), tb = doneUs(b);
    return ta < tb || (ta == tb && a < b);
  }
  void heapPlace(size_t at, int id) {
    drains_[at] = id;
    flows_[static_cast<size_t>(id)].heapPos = static_cast<int>(at);
  }
  void siftUp(size_t at) {
    const int id = drains_[at];
    while (at > 0 && before(id, drains_[(at - 1) / 2])) {
      heapPlace(at, drains_[(at - 1) / 2]);
      at = (at - 1) / 2;
    }
    heapPlace(at, id);
  }
  void siftDown(size_t at) {
    const int id = drains_[at];
    const size_t n = drains_.size();
    for (;;) {
      size_t child = 2 * at + 1;
      if (child >= n) break;
      if (child + 1 < n && before(drains_[child + 1], drains_[child])) ++child;
      if (!before(drains_[child], id)) break;
      heapPlace(at, drains_[child]);
      at = child;
    }
    heapPlace(at, id);
  }
  void heapSet(int id, double t) {
    Flow& f = flows_[static_cast<size_t>(id)];
    f.doneUs = t;
    if (f.heapPos < 0) {
      drains_.push_back(id);
      f.heapPos = static_cast<int>(drains_.size() - 1);
    }
    const size_t at = static_cast<size_t>(f.heapPos);
    siftUp(at);
    siftDown(static_cast<size_t>(flows_[static_cast<size_t>(id)].heapPos));
  }
  void heapErase(int id) {
    Flow& f = flows_[static_cast<size_t>(id)];
    const size_t at = static_cast<size_t>(f.heapPos);
    f.heapPos = -1;
    const int last = drains_.back();
    drains_.pop_back();
    if (last == id) return;
    heapPlace(at, last);
    siftUp(at);
    siftDown(static_cast<size_t>(flows_[static_cast<size_t>(last)].heapPos));
  }

  Status finish(int id) {
    Flow& f = flows_[static_cast<size_t>(id)];
    if (f.onLinks) {
      for (int l : f.links) {
        auto& on = onLink_[static_cast<size_t>(l)];
        on.erase(std::find(on.begin(), on.end(), id));
        if (on.empty() && opt_.record)
          result_.linkBusy.push_back({l, busySince_[static_cast<size_t>(l)], now_});
      }
      f.onLinks = false;
      rerate(f.links);
    }
    ++f.version;  // nothing pending for this id any more
    const int a = f.a, b = f.b;
    free_.push_back(id);
    complete(a);
    if (b >= 0) complete(b);
    LOOM_RETURN_IF_ERROR(advance(a));
    if (b >= 0) LOOM_RETURN_IF_ERROR(advance(b));
    return Status::ok();
  }

  void complete(int i) {
    ++done_[static_cast<size_t>(i)];
    endUs_[static_cast<size_t>(i)] = now_;
  }

  // After a slice of node i finished: its own next slice and the nodes that wait for it.
  Status advance(int i) {
    LOOM_RETURN_IF_ERROR(tryStart(i));
    for (uint32_t k = g_.revBegin[static_cast<size_t>(i)];
         k < g_.revBegin[static_cast<size_t>(i) + 1]; ++k)
      LOOM_RETURN_IF_ERROR(tryStart(g_.rev[k]));
    return Status::ok();
  }

  Result<SimResult> collect() {
    const int nranks = net_.nranks();
    result_.method = "exact";
    result_.rankEndUs.assign(static_cast<size_t>(nranks), 0);
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const Node& n = g_.nodes[i];
      if (done_[i] < n.slices) {
        return invalidArgument("simulate: deadlock: rank " + std::to_string(n.rank) + " channel " +
                               std::to_string(n.channel) + " step " + std::to_string(n.index) +
                               " (" + stepKindName(n.kind) + " peer " + std::to_string(n.peer) +
                               ") never finished");
      }
      double& end = result_.rankEndUs[static_cast<size_t>(n.rank)];
      end = std::max(end, endUs_[i]);
      result_.timeUs = std::max(result_.timeUs, endUs_[i]);
      result_.slices += static_cast<uint64_t>(n.slices);
      if (opt_.record) {
        result_.records.push_back({n.rank, n.channel, n.index, n.kind, n.peer,
                                   n.count * opt_.elementBytes, startUs_[i], endUs_[i]});
      }
    }
    result_.stepCount = g_.nodes.size();
    if (opt_.record) {
      std::stable_sort(result_.linkBusy.begin(), result_.linkBusy.end(),
                       [](const SimLinkBusy& x, const SimLinkBusy& y) { return x.link < y.link; });
    }
    return std::move(result_);
  }

  const Graph& g_;
  const SimNetwork& net_;
  const SimOptions& opt_;
  const std::vector<SimLink>& links_;
  double now_ = 0;
  std::vector<int> started_, done_;
  std::vector<char> waiting_;
  std::vector<double> startUs_, endUs_;
  std::vector<Flow> flows_;
  std::vector<int> free_;
  std::vector<std::vector<int>> onLink_;
  std::vector<double> busySince_;
  std::vector<int> touched_;
  std::vector<int> drains_;
  uint64_t epoch_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  std::unordered_map<uint64_t, SimRoute> routes_;
  SimResult result_;
};

}  // namespace

UniformNetwork::UniformNetwork(int nranks, double alphaUs, double gbps, double computeGbps)
    : nranks_(nranks), alphaUs_(alphaUs) {
  links_.reserve(static_cast<size_t>(nranks) * 3);
  for (int r = 0; r < nranks; ++r) {
    const std::string name = "r" + std::to_string(r);
    links_.push_back({name + " send", gbps});
    links_.push_back({name + " recv", gbps});
    links_.push_back({name + " compute", computeGbps});
  }
}

Status UniformNetwork::route(int src, int dst, SimRoute* out) const {
  if (src < 0 || dst < 0 || src >= nranks_ || dst >= nranks_ || src == dst) {
    return invalidArgument("uniform network: no route " + std::to_string(src) + " -> " +
                           std::to_string(dst) + " among " + std::to_string(nranks_) + " ranks");
  }
  out->latencyUs = alphaUs_;
  out->links = {3 * src, 3 * dst + 1};
  return Status::ok();
}

Result<SimResult> simulate(const Schedule& schedule, const SimNetwork& network,
                           const SimOptions& options) {
  if (static_cast<int>(schedule.ranks.size()) != network.nranks()) {
    return invalidArgument("simulate: the schedule has " + std::to_string(schedule.ranks.size()) +
                           " ranks but the network " + std::to_string(network.nranks()));
  }
  Graph graph;
  LOOM_RETURN_IF_ERROR(sim::buildGraph(schedule, options, &graph));
  Engine engine(graph, network, options);
  return engine.run();
}

}  // namespace loom::algo
