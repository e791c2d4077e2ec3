#include "config.h"

#include <cstdlib>
#include <cstring>
#include <string_view>

namespace loom::trainer {

namespace {

Status bad(const std::string& what) {
  return Status(loomInvalidArgument, "loom-train: " + what);
}

bool parseInt(const char* text, int* out) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < 0 || v > 1000000) return false;
  *out = static_cast<int>(v);
  return true;
}

bool divides(int a, int b) {
  return a > 0 && b % a == 0;
}

// Sequences of DP rank r: the contiguous slice [r*B/DP, (r+1)*B/DP).
int sliceCount(int r, int dp) {
  return (r + 1) * Dims::kBatch / dp - r * Dims::kBatch / dp;
}

}  // namespace

std::string usage() {
  return "usage: loom-train [options]\n"
         "  --dp N --tp N --pp N --ep N   layout (world = dp*tp*pp; ep divides dp)\n"
         "  --zero 0|1|2|3                ZeRO stage over the DP group\n"
         "  --schedule gpipe|1f1b         pipeline schedule (default 1f1b)\n"
         "  --mbs B                       sequences per micro-batch (default 2)\n"
         "  --accum K                     pipeline rounds per step (default 1)\n"
         "  --steps N                     optimizer steps (default 20)\n"
         "  --dtype f64|f32               scalar type (default f64)\n"
         "  --prec fp32|bf16|fp16         round matmul inputs and activations to half\n"
         "  --no-master                   with bf16: keep the weights in bf16 (no master)\n"
         "  --moe [--topk 1|2]            MoE FFN in layers 1 and 3\n"
         "  --sp                          sequence parallelism with --tp\n"
         "  --json PATH|-                 a JSON line per step\n"
         "  --dump-params PATH            the final parameters, canonical order (text)\n"
         "  --trace PATH                  the schedule trace (processes: PATH.<rank>)\n"
         "  --seed N                      init seed (default 1234)\n"
         "  --node-size N                 simulated ranks per node (group table)\n"
         "  --inject-overflow STEP:RANK   fp16 test hook: RANK sees an overflow at STEP\n"
         "  --threads                     all ranks as threads in this process\n"
         "  --quiet                       no group table, no per-step lines\n"
         "Without --threads and with more than one rank, start it with loomrun -np WORLD.\n";
}

Status parseArgs(int argc, const char* const* argv, TrainConfig* cfg) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    auto intFlag = [&](int* out) -> Status {
      if (!v || !parseInt(v, out)) return bad(std::string(a) + " needs a number");
      ++i;
      return Status();
    };
    Status s;
    if (a == "--dp") {
      s = intFlag(&cfg->dp);
    } else if (a == "--tp") {
      s = intFlag(&cfg->tp);
    } else if (a == "--pp") {
      s = intFlag(&cfg->pp);
    } else if (a == "--ep") {
      s = intFlag(&cfg->ep);
    } else if (a == "--zero") {
      s = intFlag(&cfg->zero);
    } else if (a == "--mbs") {
      s = intFlag(&cfg->mbs);
    } else if (a == "--accum") {
      s = intFlag(&cfg->accum);
    } else if (a == "--steps") {
      s = intFlag(&cfg->steps);
    } else if (a == "--topk") {
      s = intFlag(&cfg->topk);
    } else if (a == "--node-size") {
      s = intFlag(&cfg->nodeSize);
    } else if (a == "--seed") {
      int seed = 0;
      s = intFlag(&seed);
      cfg->seed = static_cast<uint64_t>(seed);
    } else if (a == "--schedule" && v) {
      ++i;
      if (std::strcmp(v, "gpipe") == 0)
        cfg->schedule = Schedule::kGpipe;
      else if (std::strcmp(v, "1f1b") == 0)
        cfg->schedule = Schedule::kOneFOneB;
      else
        s = bad("--schedule is gpipe or 1f1b, not " + std::string(v));
    } else if (a == "--dtype" && v) {
      ++i;
      if (std::strcmp(v, "f64") == 0)
        cfg->fp64 = true;
      else if (std::strcmp(v, "f32") == 0)
        cfg->fp64 = false;
      else
        s = bad("--dtype is f64 or f32, not " + std::string(v));
    } else if (a == "--prec" && v) {
      ++i;
      if (std::strcmp(v, "fp32") == 0)
        cfg->prec = Precision::kFp32;
      else if (std::strcmp(v, "bf16") == 0)
        cfg->prec = Precision::kBf16;
      else if (std::strcmp(v, "fp16") == 0)
        cfg->prec = Precision::kFp16;
      else
        s = bad("--prec is fp32, bf16 or fp16, not " + std::string(v));
    } else if (a == "--json" && v) {
      cfg->jsonPath = argv[++i];
    } else if (a == "--dump-params" && v) {
      cfg->dumpParamsPath = argv[++i];
    } else if (a == "--trace" && v) {
      cfg->tracePath = argv[++i];
    } else if (a == "--inject-overflow" && v) {
      ++i;
      const char* colon = std::strchr(v, ':');
      if (!colon || !parseInt(std::string(v, colon).c_str(), &cfg->injectStep) ||
          !parseInt(colon + 1, &cfg->injectRank))
        s = bad("--inject-overflow takes STEP:RANK");
    } else if (a == "--moe") {
      cfg->moe = true;
    } else if (a == "--sp") {
      cfg->sp = true;
    } else if (a == "--no-master") {
      cfg->masterWeights = false;
    } else if (a == "--threads") {
      cfg->threads = true;
    } else if (a == "--quiet") {
      cfg->quiet = true;
    } else {
      s = bad("unknown or incomplete option '" + std::string(a) + "'\n" + usage());
    }
    if (!s.ok()) return s;
  }
  return validate(*cfg);
}

Status validate(const TrainConfig& c) {
  if (c.dp < 1 || c.tp < 1 || c.pp < 1 || c.ep < 1) return bad("dp, tp, pp, ep must be >= 1");
  if (!divides(c.tp, Dims::kHeads)) return bad("tp must divide the 4 heads (1, 2 or 4)");
  if (!divides(c.pp, Dims::kLayers)) return bad("pp must divide the 4 layers (1, 2 or 4)");
  if (!divides(c.ep, c.dp)) return bad("ep must divide dp");
  if (!divides(c.ep, Dims::kExperts)) return bad("ep must divide the 4 experts");
  if (c.ep > 1 && !c.moe) return bad("--ep needs --moe");
  if (c.zero < 0 || c.zero > 3) return bad("--zero is 0, 1, 2 or 3");
  if (c.moe && c.zero > 0) return bad("ZeRO with --moe is not implemented");
  if (c.moe && c.sp) return bad("--sp with --moe is not implemented");
  if (c.sp && c.tp == 1) return bad("--sp needs --tp > 1");
  if (c.topk < 1 || c.topk > 2) return bad("--topk is 1 or 2");
  if (c.dp > Dims::kBatch) return bad("dp must be <= 16 (the global batch)");
  if (c.mbs < 1 || c.accum < 1) return bad("--mbs and --accum must be >= 1");
  if (!c.masterWeights && c.prec != Precision::kBf16) return bad("--no-master needs --prec bf16");
  int m0 = -1;
  for (int r = 0; r < c.dp; ++r) {
    const int count = sliceCount(r, c.dp);
    const int m = (count + c.mbs - 1) / c.mbs;
    if (m % c.accum != 0)
      return bad("--accum " + std::to_string(c.accum) + " must divide the " + std::to_string(m) +
                 " micro-batches of dp rank " + std::to_string(r));
    if (m0 >= 0 && m != m0 && (c.zero == 3 || c.ep > 1))
      return bad("ZeRO-3 and EP need the same number of micro-batches on every dp rank");
    m0 = m;
  }
  if (c.ep > 1 && Dims::kBatch % (c.dp * c.mbs) != 0)
    return bad("EP needs equal micro-batches: dp*mbs must divide 16");
  return Status();
}

std::string describe(const TrainConfig& c) {
  std::string s =
      "dp" + std::to_string(c.dp) + " tp" + std::to_string(c.tp) + " pp" + std::to_string(c.pp);
  if (c.ep > 1) s += " ep" + std::to_string(c.ep);
  if (c.zero) s += " zero" + std::to_string(c.zero);
  if (c.pp > 1) s += c.schedule == Schedule::kGpipe ? " gpipe" : " 1f1b";
  if (c.sp) s += " sp";
  if (c.moe) s += " moe-top" + std::to_string(c.topk);
  s += " mbs" + std::to_string(c.mbs) + " accum" + std::to_string(c.accum);
  s += c.fp64 ? " f64" : " f32";
  if (c.prec != Precision::kFp32) s += std::string(" ") + precisionName(c.prec);
  if (!c.masterWeights) s += " no-master";
  return s;
}

}  // namespace loom::trainer
