// The topology tree's encodings (topology/xml.h): XML text, JSON and the binary form, and the
// parsers' behaviour on hostile input.
#include <gtest/gtest.h>

#include <string>

#include "topology/xml.h"

namespace loom::topo {
namespace {

XmlNode sample() {
  XmlNode root("system");
  root.set("version", "1").set("name", "a<b>&\"c'");
  XmlNode& cpu = root.add(XmlNode("cpu"));
  cpu.set("numaid", "0");
  cpu.add(XmlNode("pci")).set("busid", "0000:01:00.0");
  cpu.add(XmlNode("nic")).add(XmlNode("net")).set("name", "mlx5_0");
  return root;
}

TEST(TopoXml, WriteParseWriteIsIdentical) {
  const std::string text = writeXml(sample());
  Result<XmlNode> back = parseXml(text);
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(*back, sample());
  EXPECT_EQ(writeXml(*back), text);
}

TEST(TopoXml, EscapesAttributeValues) {
  const std::string text = writeXml(sample());
  EXPECT_NE(text.find("name=\"a&lt;b&gt;&amp;&quot;c&apos;\""), std::string::npos) << text;
}

TEST(TopoXml, AcceptsPrologCommentsSingleQuotesAndNumericEntities) {
  Result<XmlNode> t = parseXml(
      "<?xml version=\"1.0\"?>\n<!-- c -->\n<system version='1' name=\"&#65;&#x42;\">"
      "<!-- inner --><cpu numaid=\"0\"/></system>\n");
  ASSERT_TRUE(t.isOk()) << t.status().toString();
  EXPECT_EQ(t->attrOr("name", ""), "AB");
  ASSERT_EQ(t->children.size(), 1u);
  EXPECT_EQ(t->children[0].name, "cpu");
}

TEST(TopoXml, RejectsMalformedInputWithThePlace) {
  const char* bad[] = {"",
                       "<system>",
                       "<system></cpu>",
                       "<system a=\"1\" a=\"2\"/>",
                       "<system a=1/>",
                       "<system a=\"<\"/>",
                       "<system a=\"&bogus;\"/>",
                       "<system/><second/>",
                       "<!DOCTYPE x><system/>",
                       "text<system/>",
                       "<system a=\"&#0;\"/>"};
  for (const char* text : bad) {
    Result<XmlNode> t = parseXml(text, {}, "in.xml");
    ASSERT_FALSE(t.isOk()) << text;
    EXPECT_NE(t.status().toString().find("in.xml:"), std::string::npos) << t.status().toString();
  }
}

TEST(TopoXml, EnforcesLimitsWithoutRecursion) {
  std::string deep;
  for (int i = 0; i < 100000; ++i)
    deep += "<a>";
  Result<XmlNode> t = parseXml(deep);
  ASSERT_FALSE(t.isOk());
  EXPECT_NE(t.status().toString().find("deeper"), std::string::npos) << t.status().toString();
  XmlLimits small;
  small.maxNodes = 3;
  EXPECT_FALSE(parseXml("<a><b/><c/><d/></a>", small).isOk());
  small = XmlLimits{};
  small.maxValueBytes = 4;
  EXPECT_FALSE(parseXml("<a v=\"12345\"/>", small).isOk());
  small = XmlLimits{};
  small.maxBytes = 8;
  EXPECT_FALSE(parseXml("<system version=\"1\"/>", small).isOk());
}

TEST(TopoXml, BinaryRoundTripAndTruncation) {
  const std::vector<uint8_t> bytes = encodeTree(sample());
  Result<XmlNode> back = decodeTree(bytes.data(), bytes.size(), {}, "tree");
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(*back, sample());
  for (size_t cut = 0; cut < bytes.size(); ++cut)
    EXPECT_FALSE(decodeTree(bytes.data(), cut, {}, "tree").isOk()) << cut;
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  EXPECT_FALSE(decodeTree(longer.data(), longer.size(), {}, "tree").isOk());
}

TEST(TopoXml, JsonIsLosslessAndEscaped) {
  XmlNode n("net");
  n.set("name", "a\"b\\c\n");
  EXPECT_EQ(writeJson(n), "{\"tag\": \"net\", \"attrs\": {\"name\": \"a\\\"b\\\\c\\u000a\"}}\n");
  const std::string j = writeJson(sample());
  EXPECT_NE(j.find("\"children\": ["), std::string::npos);
  EXPECT_NE(j.find("\"busid\": \"0000:01:00.0\""), std::string::npos);
}

TEST(TopoXml, FilesRoundTripAndMissingFileIsAnError) {
  const std::string path = ::testing::TempDir() + "/loom_topo_xml_test.xml";
  ASSERT_TRUE(saveXmlFile(path, sample()).isOk());
  Result<XmlNode> back = loadXmlFile(path);
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(*back, sample());
  std::remove(path.c_str());
  Result<XmlNode> missing = loadXmlFile(path);
  ASSERT_FALSE(missing.isOk());
  EXPECT_NE(missing.status().toString().find(path), std::string::npos);
}

}  // namespace
}  // namespace loom::topo
