#pragma once
/// Reading a configuration document (topology import, config files) written as JSON or YAML into
/// one JSON value, so a single set of decoders (topology_json.hpp) validates both.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace pingmesh::model {

/// Parses `text` as JSON when its first non-space character is '{' or '[', else as YAML.
///
/// YAML plain scalars map to JSON types by the YAML 1.2 core schema: null/~/empty to null,
/// true/false to booleans, decimal, 0x and 0o integers to integers, decimal floats to numbers;
/// anything else (and every quoted scalar) stays a string. Explicit !!str, !!int, !!float,
/// !!bool and !!null tags are honoured. Mapping keys must be scalars and unique; a document
/// holding more than one YAML document is rejected. An empty YAML document yields null.
///
/// Throws ValidationError with an empty field and a message naming `source_name` and the line,
/// e.g. "topology.yaml line 12: ...", on a syntax error. Thread-safe (no shared state).
nlohmann::json parse_document(std::string_view text, const std::string& source_name);

}  // namespace pingmesh::model
