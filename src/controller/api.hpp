#pragma once
/// The controller's REST API under /api/v1 (JSON; pinglists also XML), registered on an
/// http::Router. The routes and their shapes are documented in src/controller/openapi.json and
/// docs/API.md.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/http.hpp"
#include "common/metrics.hpp"
#include "common/router.hpp"
#include "controller/auth.hpp"
#include "controller/topology_service.hpp"
#include "pinglist/service.hpp"

namespace pingmesh::controller {

/// Options of the API.
struct ApiOptions {
  AuthOptions auth;
  uint32_t heartbeat_interval_s = 10;  ///< told to agents in every heartbeat answer
  std::size_t default_limit = 1000;    ///< page size of lists without ?limit=
  std::size_t max_limit = 10000;       ///< largest accepted ?limit=
};

/// Handlers of the controller's routes. Register them with add_routes(); the Api must outlive
/// the router. Thread-safe (handlers run on several I/O threads).
///
/// Errors are JSON {"error": message, "field": path}: 400 malformed body or query parameter,
/// 401/403 authentication, 404 unknown object, 409 create of an existing name, 415 content type,
/// 422 validation (unknown field, wrong type, out of range, broken reference), 503 store failure.
class Api {
 public:
  Api(TopologyService& topology, pinglist::PinglistService& pinglists, metrics::Registry& registry,
      ApiOptions options);

  /// Registers every /api/v1 route of the controller except /api/v1/openapi.json (see
  /// add_process_routes).
  void add_routes(http::Router& router);

 private:
  using Body = std::function<http::Response(const http::Request&)>;
  /// Registers one route behind the access check and the error mapping.
  void route(http::Router& router, const std::string& method, const std::string& pattern,
             Access access, Body body);
  void add_dc_routes(http::Router& router);
  void add_rack_routes(http::Router& router);
  void add_server_routes(http::Router& router);
  void add_rule_routes(http::Router& router);
  void add_global_routes(http::Router& router);
  void add_agent_routes(http::Router& router);
  nlohmann::json server_json(const model::Server& server, bool alive) const;

  TopologyService& topology_;
  pinglist::PinglistService& pinglists_;
  metrics::Registry& registry_;
  ApiOptions options_;
  Auth auth_;
};

/// Adds the routes every process serves: GET /metrics (Prometheus text), GET /healthz and
/// GET /api/v1/openapi.json (`openapi`, the merged document of the process's routes).
void add_process_routes(http::Router& router, metrics::Registry& registry,
                        const nlohmann::json& openapi);

/// A contributor of routes to a process's router (the controller API; later the collector and the
/// UI), with the OpenAPI fragment that documents them (null for the controller, whose document
/// is the base; see merge_openapi).
struct RoutePart {
  std::function<void(http::Router&)> add_routes;
  nlohmann::json openapi;
};

/// Builds the router of a process from its parts, plus the process routes (/metrics, /healthz,
/// /api/v1/openapi.json with the merged document).
std::shared_ptr<http::Router> build_router(const std::vector<RoutePart>& parts,
                                           metrics::Registry& registry);

/// The http::Server handler of a router: dispatches, and counts every rejected request
/// (status >= 400) in pingmesh_api_rejected_requests_total{reason}. The router must not change
/// afterwards.
http::Handler make_handler(std::shared_ptr<const http::Router> router, metrics::Registry& registry);

}  // namespace pingmesh::controller
