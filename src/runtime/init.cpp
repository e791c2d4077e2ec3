#include "runtime/init.h"

#include <thread>

#include "base/host.h"
#include "base/log.h"
#include "base/random.h"
#include "bootstrap/launcher.h"
#include "bootstrap/tcp_store.h"

namespace loom::runtime {

Result<bootstrap::UniqueId> createUniqueId(const Config& config) {
  if (config.commId.empty()) return bootstrap::createUniqueId(config.socketIfname);
  bootstrap::UniqueId id;
  LOOM_ASSIGN_OR_RETURN(id.root, SocketAddress::parse(config.commId));
  LOOM_RETURN_IF_ERROR(secureRandom(id.secret.data(), id.secret.size()));
  LOOM_ASSIGN_OR_RETURN(id.root, bootstrap::startDetachedRoot(id.root, id.secret));
  return id;
}

Result<std::unique_ptr<Communicator>> initRank(const bootstrap::UniqueId& id, int rank, int nranks,
                                               const Config& config, const std::string& name) {
  if (nranks <= 0) return invalidArgument("nranks must be positive, got " + std::to_string(nranks));
  if (rank < 0 || rank >= nranks)
    return invalidArgument("rank " + std::to_string(rank) + " is out of range [0, " +
                           std::to_string(nranks) + ")");
  log::RankScope scope(rank);
  Deadline deadline = Deadline::afterMs(config.timeoutMs);
  LOOM_ASSIGN_OR_RETURN(std::shared_ptr<bootstrap::TcpStoreClient> store,
                        bootstrap::TcpStoreClient::connect(id, rank, nranks, deadline, nullptr));
  Communicator::Init init;
  init.store = std::move(store);
  init.rank = rank;
  init.nranks = nranks;
  init.commHash = id.hash();
  init.secret = id.secret;
  init.config = config;
  init.name = name;
  return Communicator::create(std::move(init));
}

Result<std::vector<std::unique_ptr<Communicator>>> initAll(int nranks, const Config& config,
                                                           const std::string& name) {
  if (nranks <= 0) return invalidArgument("nranks must be positive, got " + std::to_string(nranks));
  auto store = std::make_shared<bootstrap::InMemoryStore>();
  uint64_t commHash;
  std::array<uint8_t, 16> secret;
  LOOM_RETURN_IF_ERROR(secureRandom(&commHash, sizeof(commHash)));
  LOOM_RETURN_IF_ERROR(secureRandom(secret.data(), secret.size()));
  std::vector<Status> statuses(nranks);
  std::vector<std::unique_ptr<Communicator>> comms(nranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < nranks; ++r) {
    threads.emplace_back([&, r] {
      Communicator::Init init;
      init.store = store;
      init.rank = r;
      init.nranks = nranks;
      init.commHash = commHash;
      init.secret = secret;
      init.config = config;
      init.name = name;
      Result<std::unique_ptr<Communicator>> c = Communicator::create(std::move(init));
      if (c.isOk())
        comms[r] = std::move(c).value();
      else
        statuses[r] = c.status();
    });
  }
  for (std::thread& t : threads)
    t.join();
  for (int r = 0; r < nranks; ++r)
    if (!statuses[r].isOk()) return statuses[r].withContext("creating rank " + std::to_string(r));
  return comms;
}

Result<std::unique_ptr<Communicator>> initFromEnvironment(const Environment& env,
                                                          const Config& config,
                                                          const std::string& name) {
  LOOM_ASSIGN_OR_RETURN(bootstrap::LaunchInfo launch, bootstrap::detectLaunch(env, config));
  log::RankScope scope(launch.rank);
  Deadline deadline = Deadline::afterMs(config.timeoutMs);
  LOOM_ASSIGN_OR_RETURN(std::shared_ptr<bootstrap::TcpStoreClient> store,
                        bootstrap::connectLaunchStore(launch, deadline));
  const bootstrap::UniqueId id = launch.rendezvousId();
  LOOM_LOG(kInfo, kInit) << "launched by " << launch.launcher << ": rank " << launch.rank << "/"
                         << launch.worldSize << ", rendezvous at " << id.root.toString();
  // Every rank makes the same sequence of environment inits, so the n-th one of each rank
  // forms the same communicator, distinct from the others sharing this job's store.
  static std::atomic<uint64_t> inits{0};
  uint64_t material[2] = {id.hash(), inits.fetch_add(1)};
  Communicator::Init init;
  init.store = std::move(store);
  init.rank = launch.rank;
  init.nranks = launch.worldSize;
  init.commHash = hash64(material, sizeof(material));
  init.secret = id.secret;
  init.config = config;
  init.name = name;
  return Communicator::create(std::move(init));
}

}  // namespace loom::runtime
