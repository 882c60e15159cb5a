#pragma once
/// JSON (and YAML, through JSON) encoding of the topology model, with validation that names the
/// field at fault. Used by the REST API, bulk import/export and the store.

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "model/topology.hpp"

namespace pingmesh::model {

/// A rejected value. `field` is a JSON path such as "probes[1].port" or "racks[3].cidrs[0]".
class ValidationError : public std::runtime_error {
 public:
  ValidationError(std::string field, const std::string& message)
      : std::runtime_error(field + ": " + message), field_(std::move(field)), message_(message) {}
  const std::string& field() const { return field_; }
  const std::string& message() const { return message_; }

 private:
  std::string field_;
  std::string message_;
};

/// Limits that depend on how the server runs (the lab may allow short intervals).
struct ValidationLimits {
  uint32_t min_interval_ms = kMinIntervalMs;
};

nlohmann::json to_json(const ProbeSpec& v);
nlohmann::json to_json(const Datacenter& v);
nlohmann::json to_json(const Rack& v);
nlohmann::json to_json(const Server& v);  ///< includes last_seen_ms and agent_version
nlohmann::json to_json(const Rule& v);
nlohmann::json to_json(const Settings& v);
nlohmann::json to_json(const Topology& v);

/// Decoders. `base` (when given) supplies the values of absent fields, so a PATCH is a decode
/// over the current object. Unknown fields, wrong types and out-of-range values throw
/// ValidationError naming the field (prefixed by `path`).
Datacenter dc_from_json(const nlohmann::json& j, const ValidationLimits& limits,
                        const Datacenter* base = nullptr, const std::string& path = "");
Rack rack_from_json(const nlohmann::json& j, const Rack* base = nullptr,
                    const std::string& path = "");
/// Server config fields only (name, dc, rack, addresses, hostname); state fields are ignored
/// only when `allow_state` (the store's own rows), else rejected as read-only.
Server server_from_json(const nlohmann::json& j, const Server* base = nullptr,
                        const std::string& path = "", bool allow_state = false);
Rule rule_from_json(const nlohmann::json& j, const ValidationLimits& limits,
                    const Rule* base = nullptr, const std::string& path = "");
Settings settings_from_json(const nlohmann::json& j, const Settings* base = nullptr,
                            const std::string& path = "");
/// A whole topology (import). Checks references too (see validate_topology).
Topology topology_from_json(const nlohmann::json& j, const ValidationLimits& limits,
                            bool allow_state = false);

/// Cross-object checks: unique names, racks in existing DCs, servers in existing DCs and racks
/// (rack mode) or under a switch whose CIDR holds an address (switch mode, rack may be empty),
/// switch CIDRs not overlapping within a DC, rules naming existing DCs, addresses unique.
void validate_topology(const Topology& t);

}  // namespace pingmesh::model
