#include "controller/openapi.hpp"

#include <stdexcept>

namespace pingmesh::controller {

void merge_openapi(nlohmann::json& doc, const nlohmann::json& fragment) {
  if (auto paths = fragment.find("paths"); paths != fragment.end()) {
    auto& into = doc["paths"];
    for (const auto& [path, ops] : paths->items()) {
      auto& target = into[path];
      for (const auto& [op, body] : ops.items()) {
        if (target.contains(op)) {
          throw std::invalid_argument("OpenAPI: operation " + op + " " + path +
                                      " is defined twice");
        }
        target[op] = body;
      }
    }
  }
  if (auto comps = fragment.find("components"); comps != fragment.end()) {
    auto& into = doc["components"];
    for (const auto& [section, entries] : comps->items()) {
      auto& target = into[section];
      for (const auto& [name, body] : entries.items()) {
        if (target.contains(name)) {
          throw std::invalid_argument("OpenAPI: component " + section + "/" + name +
                                      " is defined twice");
        }
        target[name] = body;
      }
    }
  }
  if (auto tags = fragment.find("tags"); tags != fragment.end()) {
    auto& into = doc["tags"];
    for (const auto& t : *tags) into.push_back(t);
  }
}

nlohmann::json openapi_document(const std::vector<nlohmann::json>& fragments) {
  auto doc = nlohmann::json::parse(openapi_base());
  for (const auto& f : fragments) merge_openapi(doc, f);
  return doc;
}

}  // namespace pingmesh::controller
