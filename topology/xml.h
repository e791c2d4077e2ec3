// XmlNode: the topology interchange tree, and its three encodings.
//
// A host's topology is kept, dumped and loaded as a tree of elements in the shape of NCCL's
// NCCL_TOPO_DUMP_FILE: <system> holds one <cpu> per NUMA node, which holds the PCI tree
// (<pci> elements nested by switch), whose leaves carry <gpu> (with <nvlink> children) or
// <nic> (with <net> children). Operators can diff a loom dump against an NCCL one. The typed
// graph (system.h) is built from this tree; discovery produces it; fusion ships it.
//
// Encodings:
//   - XML text (writeXml / parseXml): NCCL's layout, two-space indent, attributes in order.
//     writeXml(parseXml(writeXml(t))) == writeXml(t) for every tree (the dump -> load -> dump
//     identity the fixture tests check).
//   - JSON (writeJson): {"tag": ..., "attrs": {...}, "children": [...]}, lossless, for scripts.
//   - binary (encodeTree / decodeTree): compact, for the init-time exchange between ranks.
//
// Every parser is bounded (XmlLimits): size, node count, depth, attribute count and lengths.
// Hostile or truncated input is an InvalidArgument Status naming the place, never a crash, an
// unbounded allocation or deep recursion (the parsers are iterative).
//
// Thread-safety: values; the functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace loom::topo {

struct XmlNode {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attrs;  // in document order
  std::vector<XmlNode> children;

  XmlNode() = default;
  explicit XmlNode(std::string n) : name(std::move(n)) {}

  // The attribute's value, or nullptr.
  const std::string* attr(std::string_view key) const;
  std::string attrOr(std::string_view key, std::string_view fallback) const;
  // Replaces the value of an existing attribute, else appends it (order is kept).
  XmlNode& set(std::string_view key, std::string value);
  // Appends a child and returns it (a reference valid until the next add to this node).
  XmlNode& add(XmlNode child);
  // First child with this element name, or nullptr.
  const XmlNode* child(std::string_view childName) const;
  XmlNode* child(std::string_view childName);

  bool operator==(const XmlNode&) const = default;
};

struct XmlLimits {
  size_t maxBytes = size_t{64} << 20;  // input size
  size_t maxNodes = size_t{1} << 20;   // elements in the whole tree
  size_t maxDepth = 64;                // nesting
  size_t maxAttrs = 64;                // per element
  size_t maxNameBytes = 64;            // element and attribute names
  size_t maxValueBytes = 4096;         // attribute values (after entity decoding)
};

// Parses one root element (an optional <?xml ...?> prolog and comments are skipped). `what`
// names the input in errors: "dgx.xml:12:5: attribute 'busid' is not closed".
Result<XmlNode> parseXml(std::string_view text, const XmlLimits& limits = {},
                         std::string_view what = "topology XML");
std::string writeXml(const XmlNode& root);
std::string writeJson(const XmlNode& root);

std::vector<uint8_t> encodeTree(const XmlNode& root);
Result<XmlNode> decodeTree(const uint8_t* data, size_t size, const XmlLimits& limits,
                           std::string_view what);

// Reads a whole file (at most limits.maxBytes) and parses it.
Result<XmlNode> loadXmlFile(const std::string& path, const XmlLimits& limits = {});
// Writes writeXml(root) to path (replacing it).
Status saveXmlFile(const std::string& path, const XmlNode& root);

// XML attribute escaping (& < > " ') and its inverse for the five predefined entities and
// numeric references (&#65; &#x41;) of ASCII characters.
std::string escapeXml(std::string_view text);

}  // namespace loom::topo
