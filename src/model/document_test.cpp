#include "model/document.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "model/topology_json.hpp"

namespace pingmesh::model {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

/// The message of the ValidationError thrown by parse_document (fails the test if none).
std::string error_of(std::string_view text, const std::string& source = "topology.yaml") {
  try {
    parse_document(text, source);
  } catch (const ValidationError& e) {
    EXPECT_EQ(e.field(), "");
    return e.message();
  }
  ADD_FAILURE() << "no error for: " << text;
  return "";
}

TEST(DocumentTest, JsonIsDetectedByFirstCharacter) {
  EXPECT_EQ(parse_document("  \n{\"a\": [1, \"x\", true, null, 0.5]}", "t.json"),
            json::parse(R"({"a": [1, "x", true, null, 0.5]})"));
  EXPECT_EQ(parse_document("[1,2]", "t.json"), json::array({1, 2}));
}

TEST(DocumentTest, JsonSyntaxErrorNamesSourceAndLine) {
  std::string msg = error_of("{\n  \"a\": 1,\n  \"b\": tru\n}", "topology.json");
  EXPECT_THAT(msg, HasSubstr("topology.json line 3:"));
  EXPECT_THAT(msg, HasSubstr("column"));
  EXPECT_THAT(msg, ::testing::Not(HasSubstr("[json.exception")));
}

TEST(DocumentTest, JsonTruncatedNamesLastLine) {
  EXPECT_THAT(error_of("{\n\"a\": [1,\n2\n", "x.json"), HasSubstr("x.json line 4:"));
}

TEST(DocumentTest, YamlScalarsMapToJsonTypes) {
  json j = parse_document(R"(
int: 42
negative: -7
plus: +3
hex: 0x1F
octal: 0o17
big: 18446744073709551615
float: 0.25
exp: 1e3
bool_t: true
bool_f: False
null_word: null
tilde: ~
empty:
quoted_int: "42"
single_quoted_bool: 'true'
quoted_null: "null"
word: hello
version: 1.2.3
ip: 10.0.1.5
cidr: fd00:1::/64
inf: .inf
yes_is_a_string: yes
)",
                          "t.yaml");
  EXPECT_EQ(j["int"], 42);
  EXPECT_TRUE(j["int"].is_number_integer());
  EXPECT_EQ(j["negative"], -7);
  EXPECT_EQ(j["plus"], 3);
  EXPECT_EQ(j["hex"], 31);
  EXPECT_EQ(j["octal"], 15);
  EXPECT_EQ(j["big"].get<uint64_t>(), 18446744073709551615ull);
  EXPECT_TRUE(j["float"].is_number_float());
  EXPECT_DOUBLE_EQ(j["float"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(j["exp"].get<double>(), 1000.0);
  EXPECT_EQ(j["bool_t"], true);
  EXPECT_EQ(j["bool_f"], false);
  EXPECT_TRUE(j["null_word"].is_null());
  EXPECT_TRUE(j["tilde"].is_null());
  EXPECT_TRUE(j["empty"].is_null());
  EXPECT_EQ(j["quoted_int"], "42");
  EXPECT_EQ(j["single_quoted_bool"], "true");
  EXPECT_EQ(j["quoted_null"], "null");
  EXPECT_EQ(j["word"], "hello");
  EXPECT_EQ(j["version"], "1.2.3");
  EXPECT_EQ(j["ip"], "10.0.1.5");
  EXPECT_EQ(j["cidr"], "fd00:1::/64");
  EXPECT_EQ(j["inf"], ".inf");
  EXPECT_EQ(j["yes_is_a_string"], "yes");
}

TEST(DocumentTest, YamlExplicitTags) {
  json j = parse_document("a: !!str 80\nb: !!int \"80\"\nc: !!float 2\nd: !!bool true\n", "t");
  EXPECT_EQ(j["a"], "80");
  EXPECT_EQ(j["b"], 80);
  EXPECT_TRUE(j["c"].is_number_float());
  EXPECT_EQ(j["d"], true);
  EXPECT_THAT(error_of("a: !!int abc\n", "t.yaml"), HasSubstr("t.yaml line 1:"));
}

TEST(DocumentTest, YamlNestedStructures) {
  json j = parse_document(R"(
dcs:
  - name: dc1
    probes:
      - {protocol: tcp, port: 9001}
      - protocol: icmp
racks: []
)",
                          "t.yaml");
  ASSERT_TRUE(j["dcs"].is_array());
  EXPECT_EQ(j["dcs"][0]["name"], "dc1");
  EXPECT_EQ(j["dcs"][0]["probes"][0]["port"], 9001);
  EXPECT_EQ(j["dcs"][0]["probes"][1]["protocol"], "icmp");
  EXPECT_TRUE(j["racks"].is_array());
  EXPECT_TRUE(j["racks"].empty());
}

TEST(DocumentTest, YamlSyntaxErrorNamesSourceAndLine) {
  std::string msg = error_of("a: 1\nb: [1, 2\nc: 3\n", "topology.yaml");
  EXPECT_THAT(msg, HasSubstr("topology.yaml line "));
  msg = error_of("a: 1\nb:\n  - x\n   y: 2\n", "topology.yaml");
  EXPECT_THAT(msg, HasSubstr("topology.yaml line 4:"));
}

TEST(DocumentTest, YamlDuplicateKeyRejectedWithLine) {
  EXPECT_THAT(error_of("a: 1\nb: 2\na: 3\n"), HasSubstr("topology.yaml line 3: duplicate key 'a'"));
}

TEST(DocumentTest, YamlMultipleDocumentsRejected) {
  EXPECT_THAT(error_of("a: 1\n---\nb: 2\n"), HasSubstr("expected one"));
}

TEST(DocumentTest, YamlOutOfRangeIntegerRejected) {
  EXPECT_THAT(error_of("x: 1\ny: 99999999999999999999999\n"),
              HasSubstr("topology.yaml line 2: integer"));
}

TEST(DocumentTest, EmptyYamlIsNull) {
  EXPECT_TRUE(parse_document("", "t.yaml").is_null());
  EXPECT_TRUE(parse_document("# only a comment\n", "t.yaml").is_null());
}

}  // namespace
}  // namespace pingmesh::model
