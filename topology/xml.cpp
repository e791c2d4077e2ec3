#include "topology/xml.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "base/fd.h"
#include "base/wire.h"

namespace loom::topo {

// ---- XmlNode ---------------------------------------------------------------------------------

const std::string* XmlNode::attr(std::string_view key) const {
  for (const auto& [k, v] : attrs)
    if (k == key) return &v;
  return nullptr;
}

std::string XmlNode::attrOr(std::string_view key, std::string_view fallback) const {
  const std::string* v = attr(key);
  return v ? *v : std::string(fallback);
}

XmlNode& XmlNode::set(std::string_view key, std::string value) {
  for (auto& [k, v] : attrs) {
    if (k == key) {
      v = std::move(value);
      return *this;
    }
  }
  attrs.emplace_back(std::string(key), std::move(value));
  return *this;
}

XmlNode& XmlNode::add(XmlNode c) {
  children.push_back(std::move(c));
  return children.back();
}

const XmlNode* XmlNode::child(std::string_view childName) const {
  for (const XmlNode& c : children)
    if (c.name == childName) return &c;
  return nullptr;
}

XmlNode* XmlNode::child(std::string_view childName) {
  for (XmlNode& c : children)
    if (c.name == childName) return &c;
  return nullptr;
}

// ---- XML text ------------------------------------------------------------------------------

std::string escapeXml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool isNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool isNameChar(char c) {
  return isNameStart(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

// One pass over the text with an explicit element stack (no recursion).
class Parser {
 public:
  Parser(std::string_view text, const XmlLimits& limits, std::string_view what)
      : s_(text), limits_(limits), what_(what) {}

  Result<XmlNode> run() {
    if (s_.size() > limits_.maxBytes)
      return fail("input of " + std::to_string(s_.size()) + " bytes exceeds the limit of " +
                  std::to_string(limits_.maxBytes));
    while (true) {
      skipSpace();
      if (pos_ >= s_.size()) break;
      if (s_[pos_] != '<') return fail("unexpected text (topology XML holds only elements)");
      LOOM_RETURN_IF_ERROR(markup());
    }
    if (!stack_.empty()) return fail("element <" + stack_.back().name + "> is not closed");
    if (!haveRoot_) return fail("no root element");
    return std::move(root_);
  }

 private:
  Status fail(const std::string& message) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return invalidArgument(std::string(what_) + ":" + std::to_string(line) + ":" +
                           std::to_string(col) + ": " + message);
  }
  bool startsWith(std::string_view p) const { return s_.substr(pos_).starts_with(p); }
  void skipSpace() {
    while (pos_ < s_.size() && isSpace(s_[pos_]))
      ++pos_;
  }
  Status skipPast(std::string_view end, const char* what) {
    const size_t at = s_.find(end, pos_);
    if (at == std::string_view::npos) return fail(std::string("unterminated ") + what);
    pos_ = at + end.size();
    return Status::ok();
  }
  Status name(std::string* out) {
    const size_t start = pos_;
    if (pos_ >= s_.size() || !isNameStart(s_[pos_])) return fail("expected a name");
    while (pos_ < s_.size() && isNameChar(s_[pos_]))
      ++pos_;
    if (pos_ - start > limits_.maxNameBytes) return fail("name longer than the limit");
    out->assign(s_.substr(start, pos_ - start));
    return Status::ok();
  }
  Status markup() {
    if (startsWith("<?")) {
      if (haveRoot_ || !stack_.empty()) return fail("processing instruction inside the document");
      return skipPast("?>", "processing instruction");
    }
    if (startsWith("<!--")) return skipPast("-->", "comment");
    if (startsWith("<!")) return fail("DOCTYPE, CDATA and entity declarations are not accepted");
    if (startsWith("</")) return closeTag();
    return openTag();
  }
  Status closeTag() {
    pos_ += 2;
    std::string n;
    LOOM_RETURN_IF_ERROR(name(&n));
    skipSpace();
    if (pos_ >= s_.size() || s_[pos_] != '>') return fail("expected '>' after </" + n);
    if (stack_.empty()) return fail("closing tag </" + n + "> without an open element");
    if (stack_.back().name != n)
      return fail("closing tag </" + n + "> does not match <" + stack_.back().name + ">");
    ++pos_;
    XmlNode done = std::move(stack_.back());
    stack_.pop_back();
    return finish(std::move(done));
  }
  Status finish(XmlNode node) {
    if (!stack_.empty()) {
      stack_.back().children.push_back(std::move(node));
      return Status::ok();
    }
    root_ = std::move(node);
    haveRoot_ = true;
    return Status::ok();
  }
  Status openTag() {
    if (haveRoot_ && stack_.empty()) return fail("content after the root element");
    ++pos_;
    XmlNode node;
    LOOM_RETURN_IF_ERROR(name(&node.name));
    if (++nodes_ > limits_.maxNodes) return fail("more elements than the limit");
    if (stack_.size() + 1 > limits_.maxDepth) return fail("nesting deeper than the limit");
    while (true) {
      const size_t before = pos_;
      skipSpace();
      if (pos_ >= s_.size()) return fail("element <" + node.name + "> is not closed");
      if (s_[pos_] == '>') {
        ++pos_;
        stack_.push_back(std::move(node));
        return Status::ok();
      }
      if (startsWith("/>")) {
        pos_ += 2;
        return finish(std::move(node));
      }
      if (pos_ == before) return fail("expected a space before the attribute");
      LOOM_RETURN_IF_ERROR(attribute(&node));
    }
  }
  Status attribute(XmlNode* node) {
    std::string key, value;
    LOOM_RETURN_IF_ERROR(name(&key));
    skipSpace();
    if (pos_ >= s_.size() || s_[pos_] != '=') return fail("expected '=' after " + key);
    ++pos_;
    skipSpace();
    if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\''))
      return fail("expected a quoted value for " + key);
    const char quote = s_[pos_++];
    const size_t end = s_.find(quote, pos_);
    if (end == std::string_view::npos) return fail("value of '" + key + "' is not closed");
    LOOM_RETURN_IF_ERROR(decode(s_.substr(pos_, end - pos_), key, &value));
    pos_ = end + 1;
    if (node->attr(key)) return fail("attribute '" + key + "' appears twice");
    if (node->attrs.size() >= limits_.maxAttrs) return fail("more attributes than the limit");
    node->attrs.emplace_back(std::move(key), std::move(value));
    return Status::ok();
  }
  Status decode(std::string_view raw, const std::string& key, std::string* out) {
    for (size_t i = 0; i < raw.size(); ++i) {
      if (out->size() >= limits_.maxValueBytes)
        return fail("value of '" + key + "' longer than the limit");
      const char c = raw[i];
      if (c == '<') return fail("'<' inside the value of '" + key + "'");
      if (c != '&') {
        *out += c;
        continue;
      }
      const size_t semi = raw.find(';', i);
      if (semi == std::string_view::npos || semi - i > 10)
        return fail("bad entity in the value of '" + key + "'");
      const std::string_view ent = raw.substr(i + 1, semi - i - 1);
      char decoded = 0;
      if (ent == "amp")
        decoded = '&';
      else if (ent == "lt")
        decoded = '<';
      else if (ent == "gt")
        decoded = '>';
      else if (ent == "quot")
        decoded = '"';
      else if (ent == "apos")
        decoded = '\'';
      else if (!numericEntity(ent, &decoded))
        return fail("unsupported entity &" + std::string(ent) + "; in '" + key + "'");
      *out += decoded;
      i = semi;
    }
    return Status::ok();
  }
  static bool numericEntity(std::string_view ent, char* out) {
    if (ent.size() < 2 || ent[0] != '#') return false;
    const bool hex = ent[1] == 'x' || ent[1] == 'X';
    std::string_view digits = ent.substr(hex ? 2 : 1);
    if (digits.empty()) return false;
    unsigned v = 0;
    for (char d : digits) {
      int x;
      if (d >= '0' && d <= '9')
        x = d - '0';
      else if (hex && d >= 'a' && d <= 'f')
        x = d - 'a' + 10;
      else if (hex && d >= 'A' && d <= 'F')
        x = d - 'A' + 10;
      else
        return false;
      v = v * (hex ? 16 : 10) + static_cast<unsigned>(x);
      if (v > 0x7f) return false;  // ASCII only: topology values are identifiers and numbers
    }
    if (v == 0) return false;
    *out = static_cast<char>(v);
    return true;
  }

  std::string_view s_;
  const XmlLimits& limits_;
  std::string_view what_;
  size_t pos_ = 0;
  size_t nodes_ = 0;
  std::vector<XmlNode> stack_;
  XmlNode root_;
  bool haveRoot_ = false;
};

void writeXmlRec(const XmlNode& n, size_t indent, std::string* out) {
  out->append(indent, ' ');
  *out += '<';
  *out += n.name;
  for (const auto& [k, v] : n.attrs) {
    *out += ' ';
    *out += k;
    *out += "=\"";
    *out += escapeXml(v);
    *out += '"';
  }
  if (n.children.empty()) {
    *out += "/>\n";
    return;
  }
  *out += ">\n";
  for (const XmlNode& c : n.children)
    writeXmlRec(c, indent + 2, out);
  out->append(indent, ' ');
  *out += "</" + n.name + ">\n";
}

std::string jsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void writeJsonRec(const XmlNode& n, size_t indent, std::string* out) {
  out->append(indent, ' ');
  *out += "{\"tag\": " + jsonString(n.name) + ", \"attrs\": {";
  for (size_t i = 0; i < n.attrs.size(); ++i)
    *out += (i ? ", " : "") + jsonString(n.attrs[i].first) + ": " + jsonString(n.attrs[i].second);
  *out += "}";
  if (!n.children.empty()) {
    *out += ", \"children\": [\n";
    for (size_t i = 0; i < n.children.size(); ++i) {
      writeJsonRec(n.children[i], indent + 2, out);
      *out += i + 1 < n.children.size() ? ",\n" : "\n";
    }
    out->append(indent, ' ');
    *out += "]";
  }
  *out += "}";
}

}  // namespace

Result<XmlNode> parseXml(std::string_view text, const XmlLimits& limits, std::string_view what) {
  return Parser(text, limits, what).run();
}

std::string writeXml(const XmlNode& root) {
  std::string out;
  writeXmlRec(root, 0, &out);
  return out;
}

std::string writeJson(const XmlNode& root) {
  std::string out;
  writeJsonRec(root, 0, &out);
  return out + "\n";
}

// ---- binary --------------------------------------------------------------------------------

namespace {
constexpr uint32_t kTreeMagic = 0x31545454;  // "TTT1"

void encodeRec(const XmlNode& n, ByteWriter* w) {
  w->str(n.name);
  w->u32(static_cast<uint32_t>(n.attrs.size()));
  for (const auto& [k, v] : n.attrs) {
    w->str(k);
    w->str(v);
  }
  w->u32(static_cast<uint32_t>(n.children.size()));
  for (const XmlNode& c : n.children)
    encodeRec(c, w);
}
}  // namespace

std::vector<uint8_t> encodeTree(const XmlNode& root) {
  ByteWriter w;
  w.u32(kTreeMagic);
  encodeRec(root, &w);
  return w.take();
}

Result<XmlNode> decodeTree(const uint8_t* data, size_t size, const XmlLimits& limits,
                           std::string_view what) {
  const std::string whatStr(what);
  if (size > limits.maxBytes)
    return invalidArgument(whatStr + ": " + std::to_string(size) + " bytes exceed the limit");
  ByteReader r(data, size, whatStr);
  uint32_t magic;
  LOOM_RETURN_IF_ERROR(r.u32(&magic));
  if (magic != kTreeMagic) return invalidArgument(whatStr + ": not an encoded topology tree");
  struct Frame {
    XmlNode node;
    uint32_t childrenLeft;
  };
  size_t nodes = 0;
  auto header = [&](Frame* f) -> Status {
    if (++nodes > limits.maxNodes) return invalidArgument(whatStr + ": too many elements");
    LOOM_RETURN_IF_ERROR(r.str(&f->node.name, limits.maxNameBytes));
    uint32_t nattrs;
    LOOM_RETURN_IF_ERROR(r.u32(&nattrs));
    if (nattrs > limits.maxAttrs) return invalidArgument(whatStr + ": too many attributes");
    for (uint32_t i = 0; i < nattrs; ++i) {
      std::string k, v;
      LOOM_RETURN_IF_ERROR(r.str(&k, limits.maxNameBytes));
      LOOM_RETURN_IF_ERROR(r.str(&v, limits.maxValueBytes));
      f->node.attrs.emplace_back(std::move(k), std::move(v));
    }
    return r.u32(&f->childrenLeft);
  };
  std::vector<Frame> stack(1);
  LOOM_RETURN_IF_ERROR(header(&stack[0]));
  while (true) {
    if (stack.back().childrenLeft == 0) {
      XmlNode done = std::move(stack.back().node);
      stack.pop_back();
      if (stack.empty()) {
        LOOM_RETURN_IF_ERROR(r.expectEnd());
        return done;
      }
      stack.back().node.children.push_back(std::move(done));
      continue;
    }
    --stack.back().childrenLeft;
    if (stack.size() + 1 > limits.maxDepth)
      return invalidArgument(whatStr + ": nesting deeper than the limit");
    Frame f;
    LOOM_RETURN_IF_ERROR(header(&f));
    stack.push_back(std::move(f));
  }
}

// ---- files ---------------------------------------------------------------------------------

Result<XmlNode> loadXmlFile(const std::string& path, const XmlLimits& limits) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return systemErrorFromErrno("opening topology file " + path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return systemErrorFromErrno("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return invalidArgument(path + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > limits.maxBytes)
    return invalidArgument(path + ": " + std::to_string(st.st_size) +
                           " bytes exceed the limit of " + std::to_string(limits.maxBytes));
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return systemErrorFromErrno("reading " + path, errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  return parseXml(text, limits, path);
}

Status saveXmlFile(const std::string& path, const XmlNode& root) {
  const std::string text = writeXml(root);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return systemErrorFromErrno("creating topology file " + path, errno);
  size_t put = 0;
  while (put < text.size()) {
    const ssize_t n = ::write(fd.get(), text.data() + put, text.size() - put);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return systemErrorFromErrno("writing " + path, errno);
    put += static_cast<size_t>(n);
  }
  return Status::ok();
}

}  // namespace loom::topo
