// GPUs from NVML (discover.h), loaded with dlopen so that loom runs, and reports "no NVML",
// where no NVIDIA driver is installed. Only the few entry points below are used; their
// prototypes and structures are declared here from NVML's stable ABI (nvml.h), so building loom
// needs no CUDA toolkit.
#include <dlfcn.h>

#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "topology/discover_sources.h"

namespace loom::topo::detail {

namespace {

using nvmlReturn_t = int;  // NVML_SUCCESS = 0
using nvmlDevice_t = struct nvmlDeviceOpaque*;
constexpr nvmlReturn_t kNvmlSuccess = 0;
constexpr unsigned kMaxNvLinks = 18;  // NVML_NVLINK_MAX_LINKS
constexpr int kRemoteGpu = 0;         // nvmlIntNvLinkDeviceType_t
constexpr int kRemoteSwitch = 2;

struct NvmlPciInfo {  // nvmlPciInfo_t (v3 layout, NVML 11 and later)
  char busIdLegacy[16];
  unsigned domain, bus, device, pciDeviceId, pciSubSystemId;
  char busId[32];
};

// The entry points, resolved by name; a missing optional one is nullptr.
struct NvmlApi {
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  const char* (*errorString)(nvmlReturn_t) = nullptr;
  nvmlReturn_t (*getCount)(unsigned*) = nullptr;
  nvmlReturn_t (*getHandle)(unsigned, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*getPciInfo)(nvmlDevice_t, NvmlPciInfo*) = nullptr;
  nvmlReturn_t (*getName)(nvmlDevice_t, char*, unsigned) = nullptr;
  nvmlReturn_t (*getCapability)(nvmlDevice_t, int*, int*) = nullptr;
  nvmlReturn_t (*linkState)(nvmlDevice_t, unsigned, int*) = nullptr;
  nvmlReturn_t (*remotePci)(nvmlDevice_t, unsigned, NvmlPciInfo*) = nullptr;
  nvmlReturn_t (*remoteType)(nvmlDevice_t, unsigned, int*) = nullptr;  // optional

  std::string load(void* lib) {
    auto sym = [lib](auto* fn, const char* name) {
      *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(dlsym(lib, name));
      return *fn != nullptr;
    };
    if (!sym(&init, "nvmlInit_v2")) return "nvmlInit_v2";
    if (!sym(&shutdown, "nvmlShutdown")) return "nvmlShutdown";
    if (!sym(&errorString, "nvmlErrorString")) return "nvmlErrorString";
    if (!sym(&getCount, "nvmlDeviceGetCount_v2")) return "nvmlDeviceGetCount_v2";
    if (!sym(&getHandle, "nvmlDeviceGetHandleByIndex_v2")) return "nvmlDeviceGetHandleByIndex_v2";
    if (!sym(&getPciInfo, "nvmlDeviceGetPciInfo_v3")) return "nvmlDeviceGetPciInfo_v3";
    if (!sym(&getName, "nvmlDeviceGetName")) return "nvmlDeviceGetName";
    if (!sym(&getCapability, "nvmlDeviceGetCudaComputeCapability"))
      return "nvmlDeviceGetCudaComputeCapability";
    if (!sym(&linkState, "nvmlDeviceGetNvLinkState")) return "nvmlDeviceGetNvLinkState";
    if (!sym(&remotePci, "nvmlDeviceGetNvLinkRemotePciInfo_v2"))
      return "nvmlDeviceGetNvLinkRemotePciInfo_v2";
    sym(&remoteType, "nvmlDeviceGetNvLinkRemoteDeviceType");
    return "";
  }
};

// One GPU's NVLinks, bonded per remote device: <nvlink target tclass count>.
void addNvlinks(const NvmlApi& api, nvmlDevice_t dev, XmlNode* gpu) {
  std::vector<std::pair<std::string, std::string>> order;  // (target, tclass), first-seen order
  std::vector<int> counts;
  for (unsigned link = 0; link < kMaxNvLinks; ++link) {
    int active = 0;
    if (api.linkState(dev, link, &active) != kNvmlSuccess || active != 1) continue;
    NvmlPciInfo remote{};
    if (api.remotePci(dev, link, &remote) != kNvmlSuccess) continue;
    int type = kRemoteGpu;
    if (api.remoteType && api.remoteType(dev, link, &type) != kNvmlSuccess) type = kRemoteGpu;
    const std::string target = normalizeBusId(remote.busId);
    if (target.empty()) continue;
    // NCCL's target classes: a GPU peer is 0x030200, an NVSwitch 0x068000, a CPU 0x068001.
    const std::string tclass = type == kRemoteSwitch ? "0x068000"
                               : type == kRemoteGpu  ? "0x030200"
                                                     : "0x068001";
    size_t i = 0;
    while (i < order.size() && order[i].first != target)
      ++i;
    if (i == order.size()) {
      order.emplace_back(target, tclass);
      counts.push_back(0);
    }
    ++counts[i];
  }
  for (size_t i = 0; i < order.size(); ++i) {
    XmlNode l("nvlink");
    l.set("target", order[i].first);
    l.set("count", std::to_string(counts[i]));
    l.set("tclass", order[i].second);
    gpu->add(std::move(l));
  }
}

int readGpus(const NvmlApi& api, HostFacts* facts) {
  unsigned count = 0;
  if (api.getCount(&count) != kNvmlSuccess) return 0;
  int found = 0;
  for (unsigned i = 0; i < count && i < 1024; ++i) {
    nvmlDevice_t dev = nullptr;
    NvmlPciInfo pci{};
    if (api.getHandle(i, &dev) != kNvmlSuccess || api.getPciInfo(dev, &pci) != kNvmlSuccess)
      continue;
    const std::string bus = normalizeBusId(pci.busId);
    if (bus.empty()) continue;
    char name[96] = {};
    int major = 0, minor = 0;
    api.getName(dev, name, sizeof(name) - 1);
    api.getCapability(dev, &major, &minor);
    XmlNode gpu("gpu");
    gpu.set("dev", std::to_string(i));
    gpu.set("sm", std::to_string(major * 10 + minor));
    if (name[0] != '\0') gpu.set("name", name);
    addNvlinks(api, dev, &gpu);
    facts->gpus[bus] = std::move(gpu);
    ++found;
  }
  return found;
}

}  // namespace

void gpusFromNvml(const std::string& library, HostFacts* facts) {
  if (library.empty()) {
    facts->notes.push_back("NVML: not used (no library configured): no NVIDIA GPU information");
    return;
  }
  // NVML is not thread-safe to initialise concurrently from two loads; discovery is rare.
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  void* lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    facts->notes.push_back("NVML: " + library +
                           " not found (no NVIDIA driver): no NVIDIA GPU, no NVLink");
    return;
  }
  NvmlApi api;
  if (std::string missing = api.load(lib); !missing.empty()) {
    facts->notes.push_back("NVML: " + library + " lacks " + missing + " (driver too old)");
    dlclose(lib);
    return;
  }
  if (const nvmlReturn_t r = api.init(); r != kNvmlSuccess) {
    facts->notes.push_back(std::string("NVML: nvmlInit failed: ") + api.errorString(r) +
                           ": no NVIDIA GPU information");
    dlclose(lib);
    return;
  }
  const int found = readGpus(api, facts);
  api.shutdown();
  dlclose(lib);
  facts->notes.push_back("NVML: " + std::to_string(found) + " GPU(s)");
}

}  // namespace loom::topo::detail
