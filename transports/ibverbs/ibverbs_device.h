// One opened RDMA device port for the ibverbs transport: discovery (LOOM_IB_HCA, active ports,
// GID choice), the protection domain, the registration cache and the device's asynchronous
// events.
//
// open() walks ibv_get_device_list() in order and takes the first port that LOOM_IB_HCA
// allows and that is ACTIVE; it fails with a SystemError whose message starts with
// "no usable RDMA device" (and says why: no devices, all filtered, none active) so that the
// runtime can fall back to sockets with one log line.
//
// Asynchronous events (port down, device fatal) are read from the context's async fd, which
// the transport lists in addPollFds and drains in progress(). An event on this device's port
// becomes a sticky portError() that every connection turns into its RemoteError.
//
// Ownership: shared by the transport and its connections (shared_ptr), so either may go first.
// Thread-safety: none; driven by the transport's thread.
#pragma once

#include <infiniband/verbs.h>

#include <memory>
#include <string>

#include "base/config.h"
#include "base/status.h"
#include "transports/ibverbs/mr_cache.h"

namespace loom::transport::ibverbs {

struct PortInfo {
  std::string device;
  int port = 0;
  bool ethernet = false;  // RoCE: addressed by GID; InfiniBand: by LID
  int gidIndex = 0;
  ibv_gid gid{};
  uint16_t lid = 0;
  ibv_mtu mtu = IBV_MTU_1024;  // active MTU
  double bytesPerSec = 0;
  uint64_t maxMsgBytes = 0;
  int maxRdAtomic = 1;  // RDMA READs in flight per QP
};

class Device {
 public:
  static Result<std::shared_ptr<Device>> open(const Config& config);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  ibv_context* context() const { return context_; }
  ibv_pd* pd() const { return pd_; }
  const PortInfo& port() const { return port_; }
  // "mlx5_0:1"
  std::string where() const { return port_.device + ":" + std::to_string(port_.port); }
  MrCache& mrCache() { return *mrCache_; }
  const Config& config() const { return config_; }

  // ibv_reg_mr with errors as SystemError naming the size.
  Result<ibv_mr*> registerMemory(void* addr, size_t bytes, int access);

  int asyncFd() const { return context_->async_fd; }
  // Reads every pending asynchronous event without blocking.
  void pollAsyncEvents();
  const Status& portError() const { return portError_; }

 private:
  Device(ibv_context* context, const PortInfo& port, const Config& config);

  ibv_context* context_;
  ibv_pd* pd_ = nullptr;
  PortInfo port_;
  Config config_;
  std::unique_ptr<MrCache> mrCache_;
  Status portError_;
};

}  // namespace loom::transport::ibverbs
