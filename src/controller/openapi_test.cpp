#include "controller/openapi.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "controller/api.hpp"
#include "controller/fake_store_test_util.hpp"

namespace pingmesh::controller {
namespace {

using nlohmann::json;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// Every "$ref" in `j`, collected into `out`.
void collect_refs(const json& j, std::set<std::string>* out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (k == "$ref" && v.is_string()) out->insert(v.get<std::string>());
      collect_refs(v, out);
    }
  } else if (j.is_array()) {
    for (const auto& v : j) collect_refs(v, out);
  }
}

TEST(OpenApi, DocumentMatchesTheRegisteredRoutes) {
  testing::FakeStore store;
  pinglist::PinglistService pinglists;
  metrics::Registry registry;
  TopologyServiceOptions o;
  o.background = false;
  TopologyService service(&store, &pinglists, o);
  Api api(service, pinglists, registry, {});
  auto router_ptr =
      build_router({{[&](http::Router& r) { api.add_routes(r); }, nullptr}}, registry);
  const http::Router& router = *router_ptr;
  auto doc = openapi_document();

  std::set<std::pair<std::string, std::string>> routes, documented;
  for (const auto& [method, pattern] : router.routes()) routes.emplace(lower(method), pattern);
  static const std::set<std::string> kVerbs{"get",   "put",  "post",   "delete",
                                            "patch", "head", "options"};
  for (const auto& [path, ops] : doc.at("paths").items()) {
    for (const auto& [op, body] : ops.items()) {
      if (kVerbs.contains(op)) documented.emplace(op, path);
    }
  }
  for (const auto& r : routes) {
    EXPECT_TRUE(documented.contains(r))
        << "route " << r.first << " " << r.second << " is missing from src/controller/openapi.json";
  }
  for (const auto& d : documented) {
    EXPECT_TRUE(routes.contains(d))
        << "openapi.json documents " << d.first << " " << d.second << ", which no handler serves";
  }
  EXPECT_GE(routes.size(), 30u);
}

TEST(OpenApi, EveryReferenceResolvesAndPathParametersAreDeclared) {
  auto doc = openapi_document();
  EXPECT_EQ(doc.at("openapi").get<std::string>().substr(0, 2), "3.");
  std::set<std::string> refs;
  collect_refs(doc, &refs);
  ASSERT_FALSE(refs.empty());
  for (const auto& ref : refs) {
    ASSERT_TRUE(ref.starts_with("#/")) << ref;
    json::json_pointer ptr(ref.substr(1));
    EXPECT_TRUE(doc.contains(ptr)) << "unresolved $ref " << ref;
  }
  // Each {param} of a path is declared, at path or operation level.
  for (const auto& [path, ops] : doc.at("paths").items()) {
    std::set<std::string> declared;
    auto declare = [&](const json& params) {
      for (const auto& p : params) {
        const json& def =
            p.contains("$ref")
                ? doc.at(json::json_pointer(p.at("$ref").get<std::string>().substr(1)))
                : p;
        if (def.at("in") == "path") declared.insert(def.at("name").get<std::string>());
      }
    };
    if (ops.contains("parameters")) declare(ops.at("parameters"));
    for (const auto& [op, body] : ops.items()) {
      if (op != "parameters" && body.contains("parameters")) declare(body.at("parameters"));
    }
    for (std::size_t i = path.find('{'); i != std::string::npos; i = path.find('{', i + 1)) {
      auto name = path.substr(i + 1, path.find('}', i) - i - 1);
      EXPECT_TRUE(declared.contains(name)) << path << " does not declare {" << name << "}";
    }
  }
}

TEST(OpenApi, SchemasCarryTheCodecsFields) {
  auto doc = openapi_document();
  const auto& schemas = doc.at("components").at("schemas");
  auto fields = [&](const char* schema) {
    std::set<std::string> out;
    for (const auto& [k, v] : schemas.at(schema).at("properties").items()) out.insert(k);
    return out;
  };
  // Everything the codec writes is documented.
  auto check = [&](const char* schema, const json& encoded) {
    auto documented = fields(schema);
    for (const auto& [k, v] : encoded.items()) {
      EXPECT_TRUE(documented.contains(k)) << schema << "." << k;
    }
  };
  model::Datacenter d;
  d.name = "x";
  check("Datacenter", model::to_json(d));
  model::Rule r;
  r.name = "x";
  r.interval_ms = 10000;
  r.payload_bytes = 0;
  check("Rule", model::to_json(r));
  check("Server", model::to_json(model::Server{}));
  check("Rack", model::to_json(model::Rack{}));
  check("Settings", model::to_json(model::Settings{}));
  check("Probe", model::to_json(model::ProbeSpec{}));
}

TEST(OpenApi, MergeAddsFragmentsAndRefusesDuplicates) {
  auto doc = openapi_document();
  json fragment = {{"paths",
                    {{"/api/v1/results", {{"post", {{"summary", "ingest"}}}}},
                     {"/api/v1/dcs", {{"head", {{"summary", "probe"}}}}}}},
                   {"components", {{"schemas", {{"ResultBatch", {{"type", "object"}}}}}}},
                   {"tags", {{{"name", "Collector"}}}}};
  merge_openapi(doc, fragment);
  EXPECT_TRUE(doc["paths"]["/api/v1/results"].contains("post"));
  EXPECT_TRUE(doc["paths"]["/api/v1/dcs"].contains("get"));
  EXPECT_TRUE(doc["paths"]["/api/v1/dcs"].contains("head"));
  EXPECT_TRUE(doc["components"]["schemas"].contains("ResultBatch"));
  EXPECT_TRUE(doc["components"]["schemas"].contains("Datacenter"));
  EXPECT_THROW(merge_openapi(doc, fragment), std::invalid_argument);
  EXPECT_THROW(merge_openapi(doc, json{{"components", {{"schemas", {{"Rule", json::object()}}}}}}),
               std::invalid_argument);
}

}  // namespace
}  // namespace pingmesh::controller
