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
const Algorithm& allReduceRecursiveDoubling();
const Algorithm& allReduceRabenseifner();
const Algorithm& allReduceDoubleBinaryTree();
const Algorithm& broadcastDoubleBinaryTree();
const Algorithm& broadcastScatterAllGather();
const Algorithm& allGatherBruck();
const Algorithm& allGatherRecursiveDoubling();
const Algorithm& reduceScatterRecursiveHalving();
const Algorithm& allToAllBruck();
const Algorithm& allReduceHierarchical();
const Algorithm& allGatherHierarchical();
const Algorithm& reduceScatterHierarchical();
const Algorithm& broadcastHierarchical();
const Algorithm& reduceHierarchical();
const Algorithm& allReduceOneShot();
const Algorithm& allReduceTwoShot();
const Algorithm& allGatherOneShot();
const Algorithm& reduceScatterOneShot();
const Algorithm& broadcastOneShot();
const Algorithm& reduceOneShot();
const Algorithm& allToAllOneShot();

}  // namespace loom::algo::builtin
