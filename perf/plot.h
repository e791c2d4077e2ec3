// `loom-perf --plot OUT.svg RESULT.json...`: bus bandwidth against message size, one line per
// series, as a self-contained SVG (no external dependencies). The x axis is log2 of the size
// in bytes, the y axis linear GB/s from 0.
//
// A series is one (label, collective, nranks, type, redop, root) of the input files' runs;
// its points are the out-of-place busbw (in-place where a row has no out-of-place half). The
// legend names each series by the fields that differ between series, so a comparison of
// libraries on one collective reads "loom", "ompi", "mpich".
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "report.h"

namespace loom::perf {

struct PlotSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (bytes, busbw GB/s), sorted by bytes
};

// Splits runs into series and names them.
std::vector<PlotSeries> seriesOf(const std::vector<RunRecord>& runs);

// The SVG document for the series; title goes on top.
std::string renderSvg(const std::vector<PlotSeries>& series, const std::string& title);

// Reads the files, draws, writes `output`. Returns 0, or 1 with a message on stderr.
int plotFiles(const std::string& output, const std::vector<std::string>& inputs);

}  // namespace loom::perf
