#include "sim_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace loom::tools {
namespace {

using algo::StepKind;

std::string format(const char* fmt, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, a, b, c, d);
  return buf;
}

// The ranks --explain lists: all of them when few, else the first ones and the last.
std::vector<int> shownRanks(int n, int maxRanks) {
  std::vector<int> ranks;
  if (n <= maxRanks) {
    for (int r = 0; r < n; ++r)
      ranks.push_back(r);
    return ranks;
  }
  for (int r = 0; r + 1 < maxRanks; ++r)
    ranks.push_back(r);
  ranks.push_back(n - 1);
  return ranks;
}

void listChannel(const algo::Channel& ch, int rank, int c, std::string* out) {
  constexpr size_t kAll = 48, kHead = 24, kTail = 8;
  const size_t n = ch.steps.size();
  for (size_t s = 0; s < n; ++s) {
    if (n > kAll && s == kHead) {
      *out += "    ... " + std::to_string(n - kHead - kTail) + " more steps ...\n";
      s = n - kTail;
    }
    char head[48];
    std::snprintf(head, sizeof head, "  r%d c%d %4zu: ", rank, c, s);
    *out += head + algo::describeStep(ch.steps[s]) + "\n";
  }
}

}  // namespace

Result<std::string> explainSchedule(const algo::Algorithm& algorithm,
                                    const algo::CollectiveArgs& args,
                                    const algo::SimNetwork& network, uint64_t elementBytes,
                                    int maxRanks) {
  const int n = args.nranks;
  const std::vector<int> shown = shownRanks(n, maxRanks);
  uint64_t kinds[5] = {0, 0, 0, 0, 0};
  uint64_t steps = 0, maxSent = 0, minSent = UINT64_MAX;
  int busiest = 0;
  std::string listing;
  algo::RankSchedule rs;
  for (int r : shown) {  // only these are built: a 16,384-rank ring has 5e8 steps
    LOOM_RETURN_IF_ERROR(algorithm.build(args, r, &rs));
    uint64_t sent = 0;
    for (const algo::Channel& ch : rs.channels) {
      for (const algo::Step& s : ch.steps) {
        ++kinds[static_cast<int>(s.kind)];
        ++steps;
        if (s.kind == StepKind::kSend) sent += s.count() * elementBytes;
      }
    }
    if (sent > maxSent) busiest = r;
    maxSent = std::max(maxSent, sent);
    minSent = std::min(minSent, sent);
    {
      listing += "rank " + std::to_string(r) + " (" + network.rankName(r) +
                 "): " + std::to_string(rs.channels.size()) + " channel(s)\n";
      for (size_t c = 0; c < rs.channels.size(); ++c)
        listChannel(rs.channels[c], r, static_cast<int>(c), &listing);
    }
  }
  std::string out = "schedule: " + std::string(algo::collectiveName(args.collective)) + ":" +
                    std::string(algorithm.name()) + ", " + std::to_string(n) + " ranks, count " +
                    std::to_string(args.count) + "; the listed ranks have " +
                    std::to_string(steps) + " steps (";
  for (int k = 0; k < 5; ++k) {
    if (kinds[k] == 0) continue;
    out += std::string(out.back() == '(' ? "" : ", ") +
           algo::stepKindName(static_cast<StepKind>(k)) + " " + std::to_string(kinds[k]);
  }
  out += ")\n";
  out += "bytes sent per listed rank: " + std::to_string(minSent) + " .. " +
         std::to_string(maxSent) + " (most: rank " + std::to_string(busiest) + ")\n";
  if (static_cast<int>(shown.size()) < n) {
    out += "listing ranks 0-" + std::to_string(maxRanks - 2) + " and " + std::to_string(n - 1) +
           " of " + std::to_string(n) + "\n";
  }
  return out + listing;
}

namespace {

const char* kindColor(StepKind k) {
  switch (k) {
    case StepKind::kSend:
      return "#4878d0";
    case StepKind::kRecv:
      return "#6acc64";
    case StepKind::kRecvReduce:
      return "#ee854a";
    case StepKind::kCopy:
      return "#956cb4";
    case StepKind::kReduce:
      return "#d65f5f";
  }
  return "#888888";
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

// A round tick step for a span of `total` microseconds: 1, 2 or 5 times a power of ten, so
// that 4 to 10 ticks fit.
double tickStep(double total) {
  double step = std::pow(10.0, std::floor(std::log10(total)));
  if (total / step < 2)
    step /= 5;
  else if (total / step < 5)
    step /= 2;
  return step;
}

}  // namespace

std::string timelineSvg(const algo::SimResult& result, const algo::SimNetwork& network,
                        const std::string& title, int maxRanks, int maxLinks) {
  const int n = network.nranks();
  const int ranks = std::min(n, maxRanks);
  // The busiest links by bytes.
  std::vector<int> links(result.linkBytes.size());
  std::iota(links.begin(), links.end(), 0);
  std::stable_sort(links.begin(), links.end(), [&](int a, int b) {
    return result.linkBytes[static_cast<size_t>(a)] > result.linkBytes[static_cast<size_t>(b)];
  });
  while (!links.empty() && result.linkBytes[static_cast<size_t>(links.back())] <= 0)
    links.pop_back();
  if (static_cast<int>(links.size()) > maxLinks) links.resize(static_cast<size_t>(maxLinks));
  constexpr double kLeft = 170, kWidth = 900, kLane = 9, kRankGap = 4, kTop = 70;
  const double total = std::max(result.timeUs, 1e-9);
  const double rankRow = 2 * kLane + kRankGap;
  const double linksTop = kTop + ranks * rankRow + 30;
  const double height = linksTop + static_cast<double>(links.size()) * (kLane + 3) + 40;
  auto x = [&](double us) { return kLeft + us / total * kWidth; };
  std::string svg = format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "font-family=\"monospace\" font-size=\"10\">\n",
      kLeft + kWidth + 20, height);
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"10\" y=\"16\" font-size=\"13\">" + escape(title) + "</text>\n";
  std::string shown = "ranks 0-" + std::to_string(ranks - 1) + " of " + std::to_string(n) +
                      " shown" +
                      (ranks < n ? " (capped at " + std::to_string(maxRanks) + ")" : "") +
                      "; per rank: out lane (send), in lane (recv, recv+reduce, copy, reduce); "
                      "grey: idle";
  svg += "<text x=\"10\" y=\"32\">" + escape(shown) + "</text>\n";
  const StepKind legend[] = {StepKind::kSend, StepKind::kRecv, StepKind::kRecvReduce,
                             StepKind::kCopy, StepKind::kReduce};
  for (int i = 0; i < 5; ++i) {
    svg += format("<rect x=\"%.0f\" y=\"40\" width=\"10\" height=\"10\" fill=\"", 10 + i * 120.0) +
           kindColor(legend[i]) + "\"/>";
    svg += format("<text x=\"%.0f\" y=\"49\">", 24 + i * 120.0) + algo::stepKindName(legend[i]) +
           "</text>\n";
  }
  // Time axis.
  const double tick = tickStep(total);
  for (double t = 0; t <= total * 1.0001; t += tick) {
    svg += format("<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#ddd\"/>", x(t),
                  kTop - 6, x(t), height - 30);
    svg += format("<text x=\"%.1f\" y=\"%.0f\">%.4g us</text>\n", x(t), height - 18, t);
  }
  for (int r = 0; r < ranks; ++r) {
    const double y = kTop + r * rankRow;
    svg += format("<rect x=\"%.0f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"#eee\"/>",
                  kLeft, y, kWidth, 2 * kLane);
    svg += format("<text x=\"4\" y=\"%.1f\">", y + 1.5 * kLane) +
           escape(network.rankName(r).substr(0, 26)) + "</text>\n";
  }
  for (const algo::SimStepRecord& s : result.records) {
    if (s.rank >= ranks) continue;
    const double y = kTop + s.rank * rankRow + (s.kind == StepKind::kSend ? 0 : kLane);
    const double w = std::max(0.5, x(s.endUs) - x(s.startUs));
    svg += format("<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.0f\" fill=\"",
                  x(s.startUs), y + 0.5, w, kLane - 1) +
           kindColor(s.kind) + "\" stroke=\"white\" stroke-width=\"0.3\"><title>" +
           escape("r" + std::to_string(s.rank) + " c" + std::to_string(s.channel) + " step " +
                  std::to_string(s.step) + " " + algo::stepKindName(s.kind) +
                  (s.peer >= 0 ? " peer r" + std::to_string(s.peer) : "") + " " +
                  std::to_string(s.bytes) + " B") +
           format(" %.3f-%.3f us", s.startUs, s.endUs) + "</title></rect>\n";
  }
  svg += format("<text x=\"10\" y=\"%.0f\">", linksTop - 8) +
         escape("busiest " + std::to_string(links.size()) + " of " +
                std::to_string(result.linkBytes.size()) + " links (busy: carrying a flow)") +
         "</text>\n";
  for (size_t i = 0; i < links.size(); ++i) {
    const int l = links[i];
    const double y = linksTop + static_cast<double>(i) * (kLane + 3);
    svg += format("<rect x=\"%.0f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"#eee\"/>",
                  kLeft, y, kWidth, kLane);
    svg += format("<text x=\"4\" y=\"%.1f\">", y + kLane - 1) +
           escape(network.links()[static_cast<size_t>(l)].name.substr(0, 27)) + "</text>\n";
    for (const algo::SimLinkBusy& b : result.linkBusy) {
      if (b.link != l) continue;
      svg += format("<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.0f\" fill=\"#555\"/>\n",
                    x(b.startUs), y + 0.5, std::max(0.5, x(b.endUs) - x(b.startUs)), kLane - 1);
    }
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace loom::tools
