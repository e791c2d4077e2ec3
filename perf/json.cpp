#include "json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string_view>

#include "loom/loom.h"

namespace loom::perf {
namespace {

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

std::string measurementJson(const Measurement& m) {
  if (!m.present) return "null";
  return "{\"time\": " + number(m.timeUs) + ", \"alg_bw\": " + number(m.algBw) +
         ", \"bus_bw\": " + number(m.busBw) +
         ", \"nwrong\": " + (m.wrong < 0 ? std::string("null") : std::to_string(m.wrong)) +
         ", \"iters\": " + std::to_string(m.iters) + "}";
}

std::string configJson(const Options& o) {
  std::string s = "{\"nthreads\": " + std::to_string(o.nThreads) +
                  ", \"ngpus\": " + std::to_string(o.nGpus) +
                  ", \"minimum_bytes\": " + std::to_string(o.minBytes) +
                  ", \"maximum_bytes\": " + std::to_string(o.maxBytes);
  if (o.stepFactor > 1)
    s += ", \"step_factor\": " + std::to_string(o.stepFactor);
  else
    s += ", \"step_bytes\": " + std::to_string(o.stepBytes);
  s += ", \"warmup_iters\": " + std::to_string(o.warmupIters) +
       ", \"iterations\": " + std::to_string(o.iters) +
       ", \"aggregated_iterations\": " + std::to_string(o.aggIters) +
       ", \"validation\": " + std::to_string(o.check) +
       ", \"blocking_collectives\": " + std::to_string(o.blocking) +
       ", \"average\": " + std::to_string(o.average) + ", \"budget_s\": " + number(o.budgetSec) +
       "}";
  return s;
}

std::string runJson(const RunRecord& run) {
  std::string s = "    {\"collective\": " + quote(run.collective) +
                  ", \"label\": " + quote(run.label) +
                  ", \"nranks\": " + std::to_string(run.nranks) +
                  ", \"nprocs\": " + std::to_string(run.nprocs) +
                  ", \"nthreads\": " + std::to_string(run.nthreads) +
                  ", \"transport\": " + quote(run.transport) + ", \"algo\": " + quote(run.algo) +
                  ",\n     \"results\": [";
  for (size_t i = 0; i < run.rows.size(); ++i) {
    const RowRecord& r = run.rows[i];
    s += std::string(i ? "," : "") + "\n       {\"size\": " + std::to_string(r.bytes) +
         ", \"count\": " + std::to_string(r.count) + ", \"type\": " + quote(r.type) +
         ", \"redop\": " + quote(r.redop) + ", \"root\": " + std::to_string(r.root) +
         ", \"algorithm\": " + quote(r.algorithm) +
         ", \"out_of_place\": " + measurementJson(r.outOfPlace) +
         ", \"in_place\": " + measurementJson(r.inPlace) + "}";
  }
  s += "],\n     \"out_of_bounds\": {\"count\": " + std::to_string(run.outOfBounds) +
       ", \"okay\": " + (run.outOfBounds == 0 ? "true" : "false") +
       "},\n     \"average_bus_bandwidth\": {\"bandwidth\": " + number(run.avgBusBw) + "}}";
  return s;
}

class Parser {
 public:
  explicit Parser(const std::string& text) : s_(text) {}
  bool parse(JsonValue* out, std::string* error) {
    *out = JsonValue();
    if (!value(out, 0) || (skip(), pos_ != s_.size())) {
      *error = "JSON error at offset " + std::to_string(pos_) + ": " +
               (why_.empty() ? "trailing characters" : why_);
      return false;
    }
    return true;
  }

 private:
  void skip() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t'))
      ++pos_;
  }
  bool fail(const char* why) {
    why_ = why;
    return false;
  }
  bool literal(std::string_view word) {
    if (s_.compare(pos_, word.size(), word) != 0) return fail("bad literal");
    pos_ += word.size();
    return true;
  }
  bool str(std::string* out) {
    ++pos_;  // opening quote
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c == '\\' && pos_ < s_.size()) {
        const char e = s_[pos_++];
        if (e == 'n')
          c = '\n';
        else if (e == 't')
          c = '\t';
        else if (e == 'u' && pos_ + 4 <= s_.size()) {
          c = static_cast<char>(std::strtol(s_.substr(pos_, 4).c_str(), nullptr, 16) & 0x7f);
          pos_ += 4;
        } else
          c = e;
      }
      out->push_back(c);
    }
    if (pos_ >= s_.size()) return fail("unterminated string");
    ++pos_;
    return true;
  }
  bool value(JsonValue* v, int depth) {
    if (depth > 64) return fail("nested too deep");
    skip();
    if (pos_ >= s_.size()) return fail("unexpected end");
    const char c = s_[pos_];
    if (c == '{') return object(v, depth);
    if (c == '[') return array(v, depth);
    if (c == '"') {
      v->kind = JsonValue::Kind::kString;
      return str(&v->string);
    }
    if (c == 't' || c == 'f') {
      v->kind = JsonValue::Kind::kBool;
      v->boolean = c == 't';
      return literal(c == 't' ? "true" : "false");
    }
    if (c == 'n') return literal("null");
    const char* begin = s_.c_str() + pos_;
    char* end = nullptr;
    v->number = std::strtod(begin, &end);
    if (end == begin) return fail("unexpected character");
    v->kind = JsonValue::Kind::kNumber;
    pos_ += static_cast<size_t>(end - begin);
    return true;
  }
  bool array(JsonValue* v, int depth) {
    v->kind = JsonValue::Kind::kArray;
    ++pos_;
    skip();
    if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
    for (;;) {
      v->array.emplace_back();
      if (!value(&v->array.back(), depth + 1)) return false;
      skip();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
      return fail("expected , or ]");
    }
  }
  bool object(JsonValue* v, int depth) {
    v->kind = JsonValue::Kind::kObject;
    ++pos_;
    skip();
    if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
    for (;;) {
      skip();
      std::string key;
      if (pos_ >= s_.size() || s_[pos_] != '"' || !str(&key)) return fail("expected a key");
      skip();
      if (pos_ >= s_.size() || s_[pos_] != ':') return fail("expected :");
      ++pos_;
      if (!value(&v->object[key], depth + 1)) return false;
      skip();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
      return fail("expected , or }");
    }
  }

  const std::string& s_;
  size_t pos_ = 0;
  std::string why_;
};

Measurement readMeasurement(const JsonValue& v) {
  Measurement m;
  if (v.kind != JsonValue::Kind::kObject) return m;
  m.present = true;
  m.timeUs = v["time"].number;
  m.algBw = v["alg_bw"].number;
  m.busBw = v["bus_bw"].number;
  m.wrong = v["nwrong"].isNull() ? -1 : static_cast<int64_t>(v["nwrong"].number);
  m.iters = static_cast<int>(v["iters"].number);
  return m;
}

}  // namespace

const JsonValue& JsonValue::operator[](const std::string& key) const {
  static const JsonValue kNull;
  if (kind != Kind::kObject) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : it->second;
}

std::string nowString() {
  char buf[64];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

bool writeResultsJson(const std::string& path, const Options& options, const std::string& startTime,
                      const std::vector<RunRecord>& runs, std::string* error) {
  std::string s = "{\"version\": 1, \"tool\": \"loom-perf\", \"loom_version\": \"" +
                  std::to_string(LOOM_MAJOR) + "." + std::to_string(LOOM_MINOR) + "." +
                  std::to_string(LOOM_PATCH) + "\", \"start_time\": " + quote(startTime) +
                  ", \"end_time\": " + quote(nowString()) + ",\n \"args\": [";
  for (size_t i = 0; i < options.args.size(); ++i)
    s += (i ? ", " : "") + quote(options.args[i]);
  s += "],\n \"config\": " + configJson(options) + ",\n \"runs\": [\n";
  for (size_t i = 0; i < runs.size(); ++i)
    s += (i ? ",\n" : "") + runJson(runs[i]);
  s += "\n ]}\n";
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    *error = "cannot write " + path;
    return false;
  }
  const bool ok = std::fwrite(s.data(), 1, s.size(), f) == s.size();
  if (std::fclose(f) != 0 || !ok) {
    *error = "error writing " + path;
    return false;
  }
  return true;
}

bool parseJson(const std::string& text, JsonValue* out, std::string* error) {
  return Parser(text).parse(out, error);
}

bool readRunsJson(const std::string& text, std::vector<RunRecord>* runs, std::string* error) {
  JsonValue doc;
  if (!parseJson(text, &doc, error)) return false;
  const JsonValue& list = doc["runs"];
  if (list.kind != JsonValue::Kind::kArray) {
    *error = "no \"runs\" array (not a loom-perf --json file)";
    return false;
  }
  for (const JsonValue& r : list.array) {
    RunRecord run;
    run.collective = r["collective"].string;
    run.label = r["label"].string.empty() ? "loom" : r["label"].string;
    run.nranks = static_cast<int>(r["nranks"].number);
    run.nprocs = static_cast<int>(r["nprocs"].number);
    run.nthreads = static_cast<int>(r["nthreads"].number);
    run.transport = r["transport"].string;
    run.algo = r["algo"].string;
    for (const JsonValue& row : r["results"].array) {
      RowRecord rec;
      rec.bytes = static_cast<size_t>(row["size"].number);
      rec.count = static_cast<size_t>(row["count"].number);
      rec.type = row["type"].string;
      rec.redop = row["redop"].string;
      rec.root = static_cast<int>(row["root"].number);
      rec.algorithm = row["algorithm"].string;
      rec.outOfPlace = readMeasurement(row["out_of_place"]);
      rec.inPlace = readMeasurement(row["in_place"]);
      run.rows.push_back(rec);
    }
    run.outOfBounds = static_cast<int>(r["out_of_bounds"]["count"].number);
    run.avgBusBw = r["average_bus_bandwidth"]["bandwidth"].number;
    runs->push_back(std::move(run));
  }
  return true;
}

}  // namespace loom::perf
