#include "plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "json.h"

namespace loom::perf {
namespace {

constexpr double kWidth = 960, kHeight = 600;
constexpr double kLeft = 80, kRight = 30, kTop = 50, kBottom = 70;
const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string sizeLabel(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g %s", bytes, kUnits[unit]);
  return buf;
}

std::string escapeXml(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

// A "nice" step (1, 2 or 5 times a power of ten) giving about `ticks` intervals up to maxValue.
double niceStep(double maxValue, int ticks) {
  const double raw = maxValue / ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

using SeriesKey = std::tuple<std::string, std::string, int, std::string, std::string, int>;

}  // namespace

std::vector<PlotSeries> seriesOf(const std::vector<RunRecord>& runs) {
  std::map<SeriesKey, std::vector<std::pair<double, double>>> points;
  std::vector<SeriesKey> order;
  for (const RunRecord& run : runs) {
    for (const RowRecord& row : run.rows) {
      const Measurement& m = row.outOfPlace.present ? row.outOfPlace : row.inPlace;
      if (!m.present || row.bytes == 0) continue;
      SeriesKey key{run.label, run.collective, run.nranks, row.type, row.redop, row.root};
      if (points.find(key) == points.end()) order.push_back(key);
      points[key].emplace_back(static_cast<double>(row.bytes), m.busBw);
    }
  }
  // Name each series by the fields that differ between series.
  bool differs[6] = {};
  for (const SeriesKey& k : order) {
    const SeriesKey& f = order.front();
    differs[0] |= std::get<0>(k) != std::get<0>(f);
    differs[1] |= std::get<1>(k) != std::get<1>(f);
    differs[2] |= std::get<2>(k) != std::get<2>(f);
    differs[3] |= std::get<3>(k) != std::get<3>(f);
    differs[4] |= std::get<4>(k) != std::get<4>(f);
    differs[5] |= std::get<5>(k) != std::get<5>(f);
  }
  std::vector<PlotSeries> out;
  for (const SeriesKey& k : order) {
    std::string name;
    auto add = [&](bool use, const std::string& part) {
      if (use) name += (name.empty() ? "" : " ") + part;
    };
    add(differs[0] || order.size() == 1, std::get<0>(k));
    add(differs[1], std::get<1>(k));
    add(differs[2], "np=" + std::to_string(std::get<2>(k)));
    add(differs[3], std::get<3>(k));
    add(differs[4], std::get<4>(k));
    add(differs[5], "root " + std::to_string(std::get<5>(k)));
    if (name.empty()) name = std::get<0>(k);
    PlotSeries s{name, points[k]};
    std::sort(s.points.begin(), s.points.end());
    out.push_back(std::move(s));
  }
  return out;
}

std::string renderSvg(const std::vector<PlotSeries>& series, const std::string& title) {
  double xmin = 1e300, xmax = 0, ymax = 0;
  for (const PlotSeries& s : series)
    for (const auto& [x, y] : s.points) {
      xmin = std::min(xmin, x);
      xmax = std::max(xmax, x);
      ymax = std::max(ymax, y);
    }
  if (xmax <= 0) xmin = 1, xmax = 2;
  const double lx0 = std::floor(std::log2(xmin)),
               lx1 = std::max(std::ceil(std::log2(xmax)), lx0 + 1);
  const double ystep = niceStep(ymax > 0 ? ymax * 1.05 : 1.0, 6);
  const double ytop = ystep * std::ceil((ymax > 0 ? ymax * 1.05 : 1.0) / ystep);
  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto px = [&](double bytes) { return kLeft + (std::log2(bytes) - lx0) / (lx1 - lx0) * pw; };
  auto py = [&](double bw) { return kTop + ph - bw / ytop * ph; };

  std::ostringstream svg;
  svg.setf(std::ios::fixed);
  svg.precision(1);
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << kHeight
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << kWidth / 2 << "\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">"
      << escapeXml(title) << "</text>\n";
  // Grid and ticks: y every ystep, x every power of two (labelled every 2^k that fits).
  for (double y = 0; y <= ytop + ystep / 2; y += ystep) {
    svg << "<line x1=\"" << kLeft << "\" x2=\"" << kLeft + pw << "\" y1=\"" << py(y) << "\" y2=\""
        << py(y) << "\" stroke=\"#ddd\"/>\n<text x=\"" << kLeft - 6 << "\" y=\"" << py(y) + 4
        << "\" text-anchor=\"end\">" << y << "</text>\n";
  }
  const int labelEvery = std::max(1, static_cast<int>(std::ceil((lx1 - lx0) / 14)));
  for (int e = static_cast<int>(lx0); e <= static_cast<int>(lx1); ++e) {
    const double x = px(std::ldexp(1.0, e));
    svg << "<line x1=\"" << x << "\" x2=\"" << x << "\" y1=\"" << kTop << "\" y2=\"" << kTop + ph
        << "\" stroke=\"#eee\"/>\n";
    if ((e - static_cast<int>(lx0)) % labelEvery == 0)
      svg << "<text x=\"" << x << "\" y=\"" << kTop + ph + 18 << "\" text-anchor=\"middle\">"
          << sizeLabel(std::ldexp(1.0, e)) << "</text>\n";
  }
  svg << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << pw << "\" height=\"" << ph
      << "\" fill=\"none\" stroke=\"black\"/>\n"
      << "<text x=\"" << kLeft + pw / 2 << "\" y=\"" << kHeight - 20
      << "\" text-anchor=\"middle\">message size (log scale)</text>\n"
      << "<text transform=\"translate(20," << kTop + ph / 2
      << ") rotate(-90)\" text-anchor=\"middle\">bus bandwidth (GB/s)</text>\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const char* color = kColors[i % (sizeof(kColors) / sizeof(kColors[0]))];
    std::string path;
    for (const auto& [x, y] : series[i].points) {
      std::ostringstream p;
      p.setf(std::ios::fixed);
      p.precision(1);
      p << (path.empty() ? "M" : " L") << px(x) << "," << py(y);
      path += p.str();
      svg << "<circle cx=\"" << px(x) << "\" cy=\"" << py(y) << "\" r=\"2.5\" fill=\"" << color
          << "\"><title>" << escapeXml(series[i].name) << " " << sizeLabel(x) << ": " << y
          << " GB/s</title></circle>\n";
    }
    svg << "<path d=\"" << path << "\" fill=\"none\" stroke=\"" << color
        << "\" stroke-width=\"2\"/>\n";
    const double ly = kTop + 16 + 18 * static_cast<double>(i);
    svg << "<line x1=\"" << kLeft + 12 << "\" x2=\"" << kLeft + 36 << "\" y1=\"" << ly - 4
        << "\" y2=\"" << ly - 4 << "\" stroke=\"" << color << "\" stroke-width=\"3\"/>\n"
        << "<text x=\"" << kLeft + 42 << "\" y=\"" << ly << "\">" << escapeXml(series[i].name)
        << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

int plotFiles(const std::string& output, const std::vector<std::string>& inputs) {
  std::vector<RunRecord> runs;
  for (const std::string& path : inputs) {
    std::ifstream in(path);
    if (!in) {
      std::fprintf(stderr, "loom-perf --plot: cannot read %s\n", path.c_str());
      return 1;
    }
    std::stringstream text;
    text << in.rdbuf();
    std::string error;
    if (!readRunsJson(text.str(), &runs, &error)) {
      std::fprintf(stderr, "loom-perf --plot: %s: %s\n", path.c_str(), error.c_str());
      return 1;
    }
  }
  const std::vector<PlotSeries> series = seriesOf(runs);
  if (series.empty()) {
    std::fprintf(stderr, "loom-perf --plot: no rows with a size > 0 in the inputs\n");
    return 1;
  }
  std::set<std::string> colls;
  std::set<int> nranks;
  for (const RunRecord& r : runs) {
    colls.insert(r.collective);
    nranks.insert(r.nranks);
  }
  std::string title = "bus bandwidth vs size";
  if (colls.size() == 1) title = *colls.begin() + " " + title;
  if (nranks.size() == 1) title += ", " + std::to_string(*nranks.begin()) + " ranks";
  std::ofstream out(output);
  out << renderSvg(series, title);
  if (!out) {
    std::fprintf(stderr, "loom-perf --plot: cannot write %s\n", output.c_str());
    return 1;
  }
  std::printf("wrote %s (%zu series)\n", output.c_str(), series.size());
  return 0;
}

}  // namespace loom::perf
