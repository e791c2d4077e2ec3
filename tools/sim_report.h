// loom-sim's outputs beyond the table: the schedule listing (--explain) and the SVG timeline
// (--timeline). Both read a built schedule or simulation result and only format it.
//
// Thread-safety: pure functions.
#pragma once

#include <string>

#include "algorithms/algorithm.h"
#include "algorithms/simulate.h"

namespace loom::tools {

// The schedule of `algorithm` for args, rank by rank and channel by channel. Large schedules are
// summarised: at most `maxRanks` ranks are listed (the first ones and the last), and a channel
// longer than 48 steps shows its first 24 and last 8. Each rank is built on its own, so this
// works at any nranks (only the listed ranks are built). Also prints, over the listed ranks,
// per-kind step totals and the bytes each sends.
Result<std::string> explainSchedule(const algo::Algorithm& algorithm,
                                    const algo::CollectiveArgs& args,
                                    const algo::SimNetwork& network, uint64_t elementBytes,
                                    int maxRanks = 8);

// An SVG timeline of a recorded simulation (SimOptions::record): per rank an "out" lane (sends)
// and an "in" lane (receives, reductions, copies), idle where nothing runs; then the busiest
// links' busy spans. At most maxRanks ranks and maxLinks links are drawn (the SVG says so).
std::string timelineSvg(const algo::SimResult& result, const algo::SimNetwork& network,
                        const std::string& title, int maxRanks = 32, int maxLinks = 16);

}  // namespace loom::tools
