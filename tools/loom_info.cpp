// loom-info - what this build of loom is and what it can do here: version, build features,
// the transports built in and whether each works on this machine, and the Config table (every
// LOOM_* variable with its default, current value and help).
//
// It reads internal tables (Config, transport names, kernel ISA), so it links loom_internal.
// Exit status 0, or 1 when the environment holds an invalid LOOM_* value (it is shown).
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "base/config.h"
#include "base/doorbell.h"
#include "base/host.h"
#include "base/reduce.h"
#include "base/shm.h"
#include "base/socket.h"
#include "loom/loom.h"
#include "loom_features.h"
#include "transports/transport.h"

namespace {

const char* yesNo(int v) {
  return v ? "yes" : "no";
}

const char* typeName(loom::ConfigType t) {
  switch (t) {
    case loom::ConfigType::kString:
      return "string";
    case loom::ConfigType::kInt:
      return "int";
    case loom::ConfigType::kBool:
      return "bool";
  }
  return "?";
}

// Word-wraps text to `width` columns, each line indented by `indent` spaces.
void printWrapped(std::string_view text, size_t indent, size_t width) {
  size_t col = 0;
  std::string line(indent, ' ');
  while (!text.empty()) {
    const size_t space = text.find(' ');
    const std::string_view word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    if (col > 0 && indent + col + 1 + word.size() > width) {
      std::printf("%s\n", line.c_str());
      line.assign(indent, ' ');
      col = 0;
    }
    if (col > 0) {
      line += ' ';
      ++col;
    }
    line += word;
    col += word.size();
  }
  if (col > 0) std::printf("%s\n", line.c_str());
}

void printVersion() {
  int code = 0;
  loomGetVersion(&code);
  utsname un{};
  uname(&un);
  std::printf("loom %s (git %s), library version code %d\n", LOOM_VERSION_STRING, LOOM_GIT_REV,
              code);
  std::printf("host %s: %ld CPUs, %s %s %s\n", loom::hostName().c_str(),
              sysconf(_SC_NPROCESSORS_ONLN), un.sysname, un.release, un.machine);
}

void printFeatures() {
  std::printf("\nBuild features\n");
  std::printf("  %-22s %s\n", "CUDA (GPU path)", yesNo(LOOM_HAVE_CUDA));
  std::printf("  %-22s %s\n", "ibverbs (RDMA)", yesNo(LOOM_HAVE_IBVERBS));
  std::printf("  %-22s %s\n", "hwloc (topology)", yesNo(LOOM_HAVE_HWLOC));
  std::printf("  %-22s %s\n", "reduction kernels", loom::reduceKernelIsa());
  std::printf("  %-22s %s\n", "compiler", __VERSION__);
}

// Whether a transport can work on this machine, probed without starting a communicator.
std::string probeTransport(const std::string& name, const loom::Config& config) {
  if (name == "loopback") return "available (ranks that are threads of one process)";
  if (name == "shm") {
    if (config.shmDisable) return "disabled by LOOM_SHM_DISABLE=1";
    auto probe = loom::SharedMemory::create("loom-info-probe", 4096);
    if (!probe.isOk()) return "NOT available: " + probe.status().toString();
    return "available (memfd shared memory between processes of this host)";
  }
  if (name == "socket") {
    auto addr = loom::findInterfaceAddress(config.socketIfname);
    if (!addr.isOk()) return "NOT available: " + addr.status().toString();
    return "available (TCP; this host advertises " + addr.value().host() +
           (config.socketIfname.empty() ? "" : ", LOOM_SOCKET_IFNAME=" + config.socketIfname) + ")";
  }
  if (name == "ibverbs") {
    if (config.ibDisable) return "disabled by LOOM_IB_DISABLE=1";
    auto doorbell = loom::Doorbell::create();
    if (!doorbell.isOk()) return "NOT probed: " + doorbell.status().toString();
    loom::transport::TransportContext ctx;
    ctx.nranks = 2;
    ctx.config = &config;
    ctx.doorbell = doorbell.value();
    auto t = loom::transport::createTransport("ibverbs", ctx);
    if (!t.isOk()) return "NOT available: " + t.status().message() + " (sockets are used)";
    char rate[64];
    std::snprintf(rate, sizeof(rate), "%.1f", t.value()->capabilities().bandwidthBytesPerSec / 1e9);
    return std::string("available (RDMA port at ") + rate + " GB/s; between hosts)";
  }
  return "built in (no probe)";
}

void printTransports(const loom::Config& config) {
  std::printf("\nTransports (LOOM_TRANSPORT=%s)\n", config.transport.c_str());
  for (const std::string& name : loom::transport::transportNames())
    std::printf("  %-10s %s\n", name.c_str(), probeTransport(name, config).c_str());
}

void printConfig(const loom::Config& config, const loom::Environment& env) {
  std::printf("\nConfig: LOOM_* environment variables (* = set in the environment)\n");
  std::printf("  %-21s %-7s %-12s %s\n", "NAME", "TYPE", "DEFAULT", "CURRENT");
  for (const loom::ConfigVar& var : loom::configTable()) {
    const bool set = env.get(var.name).has_value();
    std::string current = config.valueOf(var.name).value_or("?");
    // The unique id carries the job's secret: show only that it is there.
    if (std::string_view(var.name) == "LOOM_UNIQUE_ID" ||
        std::string_view(var.name) == "LOOM_SECRET")
      if (!current.empty()) current = "(set, " + std::to_string(current.size()) + " hex digits)";
    std::string def = var.defaultValue;
    std::printf("%c %-21s %-7s %-12s %s\n", set ? '*' : ' ', var.name, typeName(var.type),
                def.empty() ? "\"\"" : def.c_str(), current.empty() ? "\"\"" : current.c_str());
    printWrapped(var.help, 6, 100);
  }
  std::vector<std::string> unknown;
  for (const auto& [name, value] : env.all()) {
    if (name.rfind("LOOM_", 0) != 0) continue;
    bool known = false;
    for (const loom::ConfigVar& var : loom::configTable())
      known |= name == var.name;
    if (!known) unknown.push_back(name);
  }
  for (const std::string& name : unknown)
    std::printf("  warning: %s is set but is not a loom variable (ignored)\n", name.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    const bool help = std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0;
    std::fprintf(help ? stdout : stderr,
                 "usage: loom-info\n  Prints loom's version, build features, the transports "
                 "usable on this machine\n  and every LOOM_* variable with its default, current "
                 "value and help.\n");
    return help ? 0 : 2;
  }
  const loom::Environment& env = loom::Environment::process();
  auto parsed = loom::Config::fromEnvironment(env);
  int status = 0;
  loom::Config config;
  if (parsed.isOk()) {
    config = parsed.value();
  } else {
    std::printf("error in the environment: %s (showing defaults)\n",
                parsed.status().toString().c_str());
    status = 1;
  }
  printVersion();
  printFeatures();
  printTransports(config);
  printConfig(config, env);
  return status;
}
