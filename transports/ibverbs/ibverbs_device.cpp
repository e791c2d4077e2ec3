#include "transports/ibverbs/ibverbs_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/log.h"
#include "transports/ibverbs/hca_list.h"

namespace loom::transport::ibverbs {

namespace {

constexpr size_t kMrCacheCapacity = 256;

// The port's GID table in the form selectGidIndex takes. ibv_query_gid_table returns the
// valid entries of every port, so the buffer has room for all of them.
std::vector<GidEntry> gidTable(ibv_context* ctx, int port, int tableLen, int ports) {
  std::vector<ibv_gid_entry> raw(static_cast<size_t>(tableLen) * static_cast<size_t>(ports));
  ssize_t n = ibv_query_gid_table(ctx, raw.data(), raw.size(), 0);
  std::vector<GidEntry> out;
  for (ssize_t i = 0; i < n; ++i) {
    if (raw[i].port_num != static_cast<uint32_t>(port)) continue;
    GidEntry e;
    e.index = static_cast<int>(raw[i].gid_index);
    e.type = raw[i].gid_type == IBV_GID_TYPE_ROCE_V2   ? GidType::kRoceV2
             : raw[i].gid_type == IBV_GID_TYPE_ROCE_V1 ? GidType::kRoceV1
                                                       : GidType::kIb;
    std::memcpy(e.gid.data(), raw[i].gid.raw, 16);
    out.push_back(e);
  }
  return out;
}

// Fills the port part of PortInfo for an ACTIVE port; false when the port is not active.
Result<bool> describePort(ibv_context* ctx, const ibv_device_attr& dev, int port,
                          const Config& config, PortInfo* info) {
  ibv_port_attr pa{};
  if (ibv_query_port(ctx, static_cast<uint8_t>(port), &pa) != 0)
    return systemErrorFromErrno("ibv_query_port", errno);
  if (pa.state != IBV_PORT_ACTIVE) return false;
  info->port = port;
  info->ethernet = pa.link_layer == IBV_LINK_LAYER_ETHERNET;
  info->lid = pa.lid;
  info->mtu = pa.active_mtu;
  info->bytesPerSec = portBytesPerSec(pa.active_speed, pa.active_width);
  info->maxMsgBytes = pa.max_msg_sz;
  info->maxRdAtomic = std::max(1, std::min(dev.max_qp_rd_atom, 16));
  // InfiniBand addresses by LID and needs no GID choice; RoCE does.
  const std::vector<GidEntry> table = gidTable(ctx, port, pa.gid_tbl_len, dev.phys_port_cnt);
  if (info->ethernet || !table.empty()) {
    LOOM_ASSIGN_OR_RETURN(info->gidIndex, selectGidIndex(table, config.ibGidIndex));
  }
  if (ibv_query_gid(ctx, static_cast<uint8_t>(port), info->gidIndex, &info->gid) != 0)
    return systemErrorFromErrno("ibv_query_gid", errno);
  return true;
}

}  // namespace

Result<std::shared_ptr<Device>> Device::open(const Config& config) {
  if (config.ibDisable) return systemError("no usable RDMA device: disabled by LOOM_IB_DISABLE=1");
  LOOM_ASSIGN_OR_RETURN(HcaFilter filter, parseHcaList(config.ibHca));
  int n = 0;
  ibv_device** list = ibv_get_device_list(&n);
  if (list == nullptr || n == 0) {
    if (list) ibv_free_device_list(list);
    return systemError("no usable RDMA device: ibv_get_device_list found none");
  }
  std::string seen;
  for (int d = 0; d < n; ++d) {
    const std::string name = ibv_get_device_name(list[d]);
    ibv_context* ctx = ibv_open_device(list[d]);
    if (ctx == nullptr) {
      seen += " " + name + " (ibv_open_device: " + std::strerror(errno) + ")";
      continue;
    }
    ibv_device_attr dev{};
    bool found = false;
    PortInfo info;
    info.device = name;
    if (ibv_query_device(ctx, &dev) == 0) {
      for (int p = 1; p <= dev.phys_port_cnt && !found; ++p) {
        if (!filter.allows(name, p)) continue;
        Result<bool> active = describePort(ctx, dev, p, config, &info);
        if (!active.isOk())
          seen += " " + name + ":" + std::to_string(p) + " (" + active.status().message() + ")";
        found = active.isOk() && active.value();
        if (active.isOk() && !found) seen += " " + name + ":" + std::to_string(p) + " (not active)";
      }
    }
    if (!found) {
      ibv_close_device(ctx);
      continue;
    }
    ibv_free_device_list(list);
    std::shared_ptr<Device> device(new Device(ctx, info, config));
    device->pd_ = ibv_alloc_pd(ctx);
    if (device->pd_ == nullptr) return systemErrorFromErrno("ibv_alloc_pd", errno);
    const int flags = fcntl(ctx->async_fd, F_GETFL);
    if (flags < 0 || fcntl(ctx->async_fd, F_SETFL, flags | O_NONBLOCK) < 0)
      return systemErrorFromErrno("fcntl(async_fd, O_NONBLOCK)", errno);
    return device;
  }
  ibv_free_device_list(list);
  return systemError("no usable RDMA device: " + std::to_string(n) + " device(s), no ACTIVE port" +
                     (config.ibHca.empty() ? "" : " allowed by LOOM_IB_HCA=" + config.ibHca) +
                     (seen.empty() ? "" : ";" + seen));
}

Device::Device(ibv_context* context, const PortInfo& port, const Config& config)
    : context_(context), port_(port), config_(config) {
  mrCache_ = std::make_unique<MrCache>(
      kMrCacheCapacity, static_cast<size_t>(sysconf(_SC_PAGESIZE)),
      [this](uintptr_t addr, size_t bytes) -> Result<MrKeys> {
        LOOM_ASSIGN_OR_RETURN(ibv_mr * mr,
                              registerMemory(reinterpret_cast<void*>(addr), bytes,
                                             IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ));
        return MrKeys{mr->lkey, mr->rkey, mr};
      },
      [](const MrKeys& keys) { ibv_dereg_mr(static_cast<ibv_mr*>(keys.handle)); });
}

Device::~Device() {
  mrCache_.reset();  // deregisters before the PD goes
  if (pd_) ibv_dealloc_pd(pd_);
  ibv_close_device(context_);
}

Result<ibv_mr*> Device::registerMemory(void* addr, size_t bytes, int access) {
  ibv_mr* mr = ibv_reg_mr(pd_, addr, bytes, access);
  if (mr == nullptr)
    return systemErrorFromErrno("ibv_reg_mr(" + std::to_string(bytes) + " bytes) on " + where(),
                                errno);
  return mr;
}

void Device::pollAsyncEvents() {
  ibv_async_event ev{};
  while (ibv_get_async_event(context_, &ev) == 0) {
    const bool ours = (ev.event_type == IBV_EVENT_PORT_ERR &&
                       ev.element.port_num == static_cast<int>(port_.port)) ||
                      ev.event_type == IBV_EVENT_DEVICE_FATAL;
    if (ours) {
      LOOM_LOG(kWarn, kNet) << "ibverbs: " << where() << ": " << ibv_event_type_str(ev.event_type);
    } else {
      LOOM_LOG(kInfo, kNet) << "ibverbs: " << where() << ": " << ibv_event_type_str(ev.event_type);
    }
    if (ours && portError_.isOk())
      portError_ =
          remoteError("port " + where() + " went down (" + ibv_event_type_str(ev.event_type) + ")");
    ibv_ack_async_event(&ev);
  }
}

}  // namespace loom::transport::ibverbs
