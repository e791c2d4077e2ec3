// The built-in algorithms, one per file (<collective>_<method>.cpp). Each function returns the
// file's one stateless instance, which lives for the whole process; registry.cpp lists them.
#pragma once

#include "algorithms/algorithm.h"

namespace loom::algo::builtin {

const Algorithm& allReduceRing();
const Algorithm& allGatherRing();
const Algorithm& reduceScatterRing();
const Algorithm& broadcastChain();
const Algorithm& broadcastBinomial();
const Algorithm& reduceBinomial();
const Algorithm& allToAllPairwise();
const Algorithm& gatherLinear();
const Algorithm& scatterLinear();
const Algorithm& sendDirect();
const Algorithm& recvDirect();
const Algorithm& barrierDissemination();

}  // namespace loom::algo::builtin
