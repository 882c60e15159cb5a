#pragma once
/// The OpenAPI 3.0 document of the HTTP API. The controller's part is src/controller/openapi.json,
/// embedded at build time; other stages bring fragments of the same shape (paths, components,
/// tags) that merge_openapi() adds, so one document describes every route of a process.

#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

namespace pingmesh::controller {

/// The controller's OpenAPI document (src/controller/openapi.json, embedded by CMake).
std::string_view openapi_base();

/// Merges `fragment` into `doc`: its "paths" (operations of a path already in `doc` are added to
/// it), "components" (per section: schemas, parameters, responses, ...) and "tags". Throws
/// std::invalid_argument naming the duplicate when an operation or component is defined twice.
void merge_openapi(nlohmann::json& doc, const nlohmann::json& fragment);

/// The controller's document with the fragments merged in.
nlohmann::json openapi_document(const std::vector<nlohmann::json>& fragments = {});

}  // namespace pingmesh::controller
