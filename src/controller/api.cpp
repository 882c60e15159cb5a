#include "controller/api.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "controller/openapi.hpp"
#include "model/document.hpp"
#include "model/topology_json.hpp"
#include "topology/store.hpp"

namespace pingmesh::controller {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

/// A refusal with an HTTP status, thrown inside handlers and mapped by Api::route.
struct HttpError {
  int status;
  std::string field;
  std::string message;
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// The media type of a Content-Type value, lower-case, without parameters.
std::string media_type(std::string_view content_type) {
  auto semi = content_type.find(';');
  auto mt = content_type.substr(0, semi);
  while (!mt.empty() && mt.back() == ' ') mt.remove_suffix(1);
  while (!mt.empty() && mt.front() == ' ') mt.remove_prefix(1);
  return lower(mt);
}

bool is_json_type(const std::string& mt) {
  return mt == "application/json" || mt.ends_with("+json");
}

bool is_yaml_type(const std::string& mt) {
  return mt == "application/yaml" || mt == "application/x-yaml" || mt == "text/yaml" ||
         mt == "text/x-yaml";
}

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

/// Parses the request body as JSON (or, with `allow_yaml`, YAML). A missing Content-Type is
/// accepted; another media type is 415.
json parse_body(const Request& r, bool allow_yaml = false) {
  std::string mt = media_type(r.header("content-type"));
  bool yaml = allow_yaml && is_yaml_type(mt);
  if (!mt.empty() && !is_json_type(mt) && !yaml) {
    throw HttpError{415, "content-type",
                    "unsupported content type '" + mt + "'; send application/json" +
                        (allow_yaml ? " or application/yaml" : "")};
  }
  if (blank(r.body)) throw HttpError{400, "body", "request body is empty; expected JSON"};
  if (yaml || (allow_yaml && mt.empty())) {
    try {
      return model::parse_document(r.body, "request body");
    } catch (const model::ValidationError& e) {
      throw HttpError{400, "body", e.message()};
    }
  }
  try {
    return json::parse(r.body);
  } catch (const json::parse_error& e) {
    throw HttpError{400, "body", std::string("malformed JSON: ") + e.what()};
  }
}

json parse_object(const Request& r) {
  json j = parse_body(r);
  if (!j.is_object()) throw HttpError{422, "body", "must be a JSON object"};
  return j;
}

/// Fills a member from the path when the body leaves it out (PUT/POST under a parent).
void default_member(json& j, const char* key, const std::string& value) {
  if (!j.contains(key)) j[key] = value;
}

std::optional<bool> bool_param(const Request& r, const char* key) {
  auto v = r.query_param(key);
  if (!v) return std::nullopt;
  auto s = lower(*v);
  if (s == "true" || s == "1" || s == "yes" || s.empty()) return true;
  if (s == "false" || s == "0" || s == "no") return false;
  throw HttpError{400, key, "must be true or false, got '" + *v + "'"};
}

std::size_t size_param(const Request& r, const char* key, std::size_t dflt, std::size_t max) {
  auto v = r.query_param(key);
  if (!v) return dflt;
  if (v->empty() || v->size() > 12 ||
      !std::all_of(v->begin(), v->end(), [](char c) { return c >= '0' && c <= '9'; })) {
    throw HttpError{400, key, "must be a non-negative integer, got '" + *v + "'"};
  }
  auto n = static_cast<std::size_t>(std::stoull(*v));
  if (n > max) {
    throw HttpError{422, key, "must be at most " + std::to_string(max) + ", got " + *v};
  }
  return n;
}

struct Page {
  std::size_t offset = 0;
  std::size_t limit = 0;
};

/// {"items": [...], "total": N, "offset": o, "limit": l} of the page of `all`.
template <class T, class Fn>
json page_of(const std::vector<T>& all, const Page& page, Fn&& to) {
  json items = json::array();
  for (std::size_t i = page.offset; i < all.size() && i < page.offset + page.limit; ++i) {
    items.push_back(to(all[i]));
  }
  return json{{"items", std::move(items)},
              {"total", all.size()},
              {"offset", page.offset},
              {"limit", page.limit}};
}

Response created(const json& j, std::string location) {
  auto r = Response::json(j.dump(), 201);
  r.headers.emplace_back("location", std::move(location));
  return r;
}

Response no_content() {
  Response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

std::string path_of(std::string_view prefix, std::string_view name) {
  return std::string(prefix) + http::url_encode(name);
}

json status_json(const Status& s) {
  return json{{"stopped", s.stopped},
              {"stopped_dcs", s.stopped_dcs},
              {"servers", s.servers},
              {"alive", s.alive},
              {"generation", s.generation}};
}

/// Decodes a heartbeat body. Unknown members are ignored so that newer agents can talk to an
/// older controller.
Heartbeat heartbeat_from_json(const json& j) {
  Heartbeat hb;
  auto str = [&](const char* key, std::string* out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_string()) throw model::ValidationError(key, "must be a string");
    *out = it->get<std::string>();
  };
  auto strings = [&](const char* key, auto&& each) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_array()) throw model::ValidationError(key, "must be an array of strings");
    for (std::size_t i = 0; i < it->size(); ++i) {
      const auto& v = (*it)[i];
      std::string field = std::string(key) + "[" + std::to_string(i) + "]";
      if (!v.is_string()) throw model::ValidationError(field, "must be a string");
      each(v.get<std::string>(), field);
    }
  };
  str("name", &hb.name);
  str("hostname", &hb.hostname);
  str("version", &hb.version);
  str("dc", &hb.dc_hint);
  if (hb.name.empty()) hb.name = hb.hostname;
  if (hb.name.empty()) throw model::ValidationError("name", "required");
  strings("addresses", [&](const std::string& s, const std::string& field) {
    auto a = net::IpAddress::parse(s);
    if (!a) throw model::ValidationError(field, "'" + s + "' is not an IPv4 or IPv6 address");
    if (std::find(hb.addresses.begin(), hb.addresses.end(), *a) == hb.addresses.end()) {
      hb.addresses.push_back(*a);
    }
  });
  strings("capabilities",
          [&](const std::string& s, const std::string&) { hb.capabilities.push_back(s); });
  return hb;
}

}  // namespace

Api::Api(TopologyService& topology, pinglist::PinglistService& pinglists,
         metrics::Registry& registry, ApiOptions options)
    : topology_(topology),
      pinglists_(pinglists),
      registry_(registry),
      options_(std::move(options)),
      auth_(options_.auth) {}

void Api::route(http::Router& router, const std::string& method, const std::string& pattern,
                Access access, Body body) {
  auto& requests = registry_.counter("pingmesh_api_requests_total",
                                     "API requests by route (before access checks).",
                                     {{"route", method + " " + pattern}});
  router.add(method, pattern,
             [this, access, &requests, body = std::move(body)](const Request& r) -> Response {
               requests.inc();
               if (auto denied = auth_.check(r, access)) return *std::move(denied);
               try {
                 return body(r);
               } catch (const HttpError& e) {
                 return Response::error(e.status, e.message, e.field);
               } catch (const model::ValidationError& e) {
                 return Response::error(422, e.message(), e.field().empty() ? "body" : e.field());
               } catch (const ServiceError& e) {
                 int status = e.kind() == ServiceError::Kind::kNotFound ? 404 : 409;
                 return Response::error(status, e.what(), e.field());
               } catch (const topology::StoreError& e) {
                 spdlog::error("controller: store failure on {} {}: {}", r.method, r.path,
                               e.what());
                 return Response::error(503, std::string("topology store failure: ") + e.what());
               } catch (const json::exception& e) {
                 return Response::error(422, e.what(), "body");
               }
             });
}

json Api::server_json(const model::Server& server, bool alive) const {
  json j = model::to_json(topology_.with_state(server));
  j["alive"] = alive;
  return j;
}

void Api::add_routes(http::Router& router) {
  add_dc_routes(router);
  add_rack_routes(router);
  add_server_routes(router);
  add_rule_routes(router);
  add_global_routes(router);
  add_agent_routes(router);
}

void Api::add_dc_routes(http::Router& router) {
  auto page = [this](const Request& r) {
    return Page{size_param(r, "offset", 0, SIZE_MAX / 2),
                size_param(r, "limit", options_.default_limit, options_.max_limit)};
  };
  route(router, "GET", "/api/v1/dcs", Access::kPublic, [this, page](const Request& r) {
    auto topo = topology_.snapshot();
    return Response::json(page_of(topo->dcs, page(r), [](const model::Datacenter& d) {
                            return model::to_json(d);
                          }).dump());
  });
  route(router, "POST", "/api/v1/dcs", Access::kAdmin, [this](const Request& r) {
    auto dc = topology_.create_dc(model::dc_from_json(parse_object(r), topology_.limits()));
    spdlog::info("controller: datacenter {} created ({} mode)", dc.name, model::to_string(dc.mode));
    return created(model::to_json(dc), path_of("/api/v1/dcs/", dc.name));
  });
  route(router, "GET", "/api/v1/dcs/{dc}", Access::kPublic, [this](const Request& r) {
    return Response::json(model::to_json(topology_.get_dc(r.params[0])).dump());
  });
  route(router, "PUT", "/api/v1/dcs/{dc}", Access::kAdmin, [this](const Request& r) {
    json j = parse_object(r);
    default_member(j, "name", r.params[0]);
    auto dc = topology_.replace_dc(r.params[0], model::dc_from_json(j, topology_.limits()));
    return Response::json(model::to_json(dc).dump());
  });
  route(router, "PATCH", "/api/v1/dcs/{dc}", Access::kAdmin, [this](const Request& r) {
    return Response::json(model::to_json(topology_.patch_dc(r.params[0], parse_object(r))).dump());
  });
  route(router, "DELETE", "/api/v1/dcs/{dc}", Access::kAdmin, [this](const Request& r) {
    topology_.delete_dc(r.params[0]);
    spdlog::info("controller: datacenter {} deleted with its racks, servers and rules",
                 r.params[0]);
    return no_content();
  });
}

void Api::add_rack_routes(http::Router& router) {
  auto page = [this](const Request& r) {
    return Page{size_param(r, "offset", 0, SIZE_MAX / 2),
                size_param(r, "limit", options_.default_limit, options_.max_limit)};
  };
  route(router, "GET", "/api/v1/dcs/{dc}/racks", Access::kPublic, [this, page](const Request& r) {
    auto racks = topology_.list_racks(r.params[0]);
    return Response::json(
        page_of(racks, page(r), [](const model::Rack& x) { return model::to_json(x); }).dump());
  });
  route(router, "POST", "/api/v1/dcs/{dc}/racks", Access::kAdmin, [this](const Request& r) {
    json j = parse_object(r);
    default_member(j, "dc", r.params[0]);
    auto rack = model::rack_from_json(j);
    if (rack.dc != r.params[0]) {
      throw model::ValidationError("dc",
                                   "must match the datacenter in the path ('" + r.params[0] + "')");
    }
    rack = topology_.create_rack(rack);
    return created(model::to_json(rack),
                   path_of("/api/v1/dcs/" + http::url_encode(rack.dc) + "/racks/", rack.name));
  });
  route(router, "GET", "/api/v1/dcs/{dc}/racks/{rack}", Access::kPublic, [this](const Request& r) {
    return Response::json(model::to_json(topology_.get_rack(r.params[0], r.params[1])).dump());
  });
  route(router, "PUT", "/api/v1/dcs/{dc}/racks/{rack}", Access::kAdmin, [this](const Request& r) {
    json j = parse_object(r);
    default_member(j, "dc", r.params[0]);
    default_member(j, "name", r.params[1]);
    auto rack = topology_.replace_rack(r.params[0], r.params[1], model::rack_from_json(j));
    return Response::json(model::to_json(rack).dump());
  });
  route(router, "PATCH", "/api/v1/dcs/{dc}/racks/{rack}", Access::kAdmin, [this](const Request& r) {
    auto rack = topology_.patch_rack(r.params[0], r.params[1], parse_object(r));
    return Response::json(model::to_json(rack).dump());
  });
  route(router, "DELETE", "/api/v1/dcs/{dc}/racks/{rack}", Access::kAdmin,
        [this](const Request& r) {
          topology_.delete_rack(r.params[0], r.params[1]);
          return no_content();
        });
}

void Api::add_server_routes(http::Router& router) {
  route(router, "GET", "/api/v1/servers", Access::kPublic, [this](const Request& r) {
    Page page{size_param(r, "offset", 0, SIZE_MAX / 2),
              size_param(r, "limit", options_.default_limit, options_.max_limit)};
    auto dc = r.query_param("dc");
    auto rack = r.query_param("rack");
    auto want_alive = bool_param(r, "alive");
    auto topo = topology_.snapshot();
    auto alive = topology_.liveness(*topo);
    std::vector<std::size_t> picked;
    for (std::size_t i = 0; i < topo->servers.size(); ++i) {
      const auto& s = topo->servers[i];
      if (dc && s.dc != *dc) continue;
      if (rack && s.rack != *rack) continue;
      if (want_alive && alive[i] != *want_alive) continue;
      picked.push_back(i);
    }
    return Response::json(page_of(picked, page, [&](std::size_t i) {
                            return server_json(topo->servers[i], alive[i]);
                          }).dump());
  });
  route(router, "POST", "/api/v1/servers", Access::kAdmin, [this](const Request& r) {
    json j = parse_body(r);
    if (j.is_array()) {
      std::vector<model::Server> servers;
      servers.reserve(j.size());
      for (std::size_t i = 0; i < j.size(); ++i) {
        servers.push_back(model::server_from_json(j[i], nullptr, "[" + std::to_string(i) + "]"));
      }
      auto result = topology_.upsert_servers(servers);
      spdlog::info("controller: bulk registration: {} servers created, {} updated", result.created,
                   result.updated);
      return Response::json(json{{"created", result.created}, {"updated", result.updated}}.dump());
    }
    if (!j.is_object()) throw HttpError{422, "body", "must be a JSON object or array"};
    auto s = topology_.create_server(model::server_from_json(j));
    return created(server_json(s, false), path_of("/api/v1/servers/", s.name));
  });
  route(router, "GET", "/api/v1/servers/{server}", Access::kPublic, [this](const Request& r) {
    auto s = topology_.get_server(r.params[0]);
    return Response::json(server_json(s, topology_.alive(s)).dump());
  });
  route(router, "PUT", "/api/v1/servers/{server}", Access::kAdmin, [this](const Request& r) {
    json j = parse_object(r);
    default_member(j, "name", r.params[0]);
    auto s = topology_.replace_server(r.params[0], model::server_from_json(j));
    return Response::json(server_json(s, topology_.alive(s)).dump());
  });
  route(router, "PATCH", "/api/v1/servers/{server}", Access::kAdmin, [this](const Request& r) {
    auto s = topology_.patch_server(r.params[0], parse_object(r));
    return Response::json(server_json(s, topology_.alive(s)).dump());
  });
  route(router, "DELETE", "/api/v1/servers/{server}", Access::kAdmin, [this](const Request& r) {
    topology_.delete_server(r.params[0]);
    return no_content();
  });
}

void Api::add_rule_routes(http::Router& router) {
  route(router, "GET", "/api/v1/rules", Access::kPublic, [this](const Request& r) {
    Page page{size_param(r, "offset", 0, SIZE_MAX / 2),
              size_param(r, "limit", options_.default_limit, options_.max_limit)};
    auto topo = topology_.snapshot();
    return Response::json(
        page_of(topo->rules, page, [](const model::Rule& x) { return model::to_json(x); }).dump());
  });
  route(router, "POST", "/api/v1/rules", Access::kAdmin, [this](const Request& r) {
    auto rule = topology_.create_rule(model::rule_from_json(parse_object(r), topology_.limits()));
    return created(model::to_json(rule), path_of("/api/v1/rules/", rule.name));
  });
  route(router, "GET", "/api/v1/rules/{rule}", Access::kPublic, [this](const Request& r) {
    return Response::json(model::to_json(topology_.get_rule(r.params[0])).dump());
  });
  route(router, "PUT", "/api/v1/rules/{rule}", Access::kAdmin, [this](const Request& r) {
    json j = parse_object(r);
    default_member(j, "name", r.params[0]);
    auto rule = topology_.replace_rule(r.params[0], model::rule_from_json(j, topology_.limits()));
    return Response::json(model::to_json(rule).dump());
  });
  route(router, "PATCH", "/api/v1/rules/{rule}", Access::kAdmin, [this](const Request& r) {
    return Response::json(
        model::to_json(topology_.patch_rule(r.params[0], parse_object(r))).dump());
  });
  route(router, "DELETE", "/api/v1/rules/{rule}", Access::kAdmin, [this](const Request& r) {
    topology_.delete_rule(r.params[0]);
    return no_content();
  });
}

void Api::add_global_routes(http::Router& router) {
  route(router, "GET", "/api/v1/settings", Access::kPublic, [this](const Request&) {
    return Response::json(model::to_json(topology_.snapshot()->settings).dump());
  });
  route(router, "PATCH", "/api/v1/settings", Access::kAdmin, [this](const Request& r) {
    return Response::json(model::to_json(topology_.patch_settings(parse_object(r))).dump());
  });
  route(router, "GET", "/api/v1/topology", Access::kPublic, [this](const Request& r) {
    bool with_state = bool_param(r, "state").value_or(false);
    auto topo = topology_.snapshot();
    json j = model::to_json(*topo);
    for (std::size_t i = 0; i < topo->servers.size(); ++i) {
      auto& s = j["servers"][i];
      if (with_state) {
        auto st = topology_.with_state(topo->servers[i]);
        s["last_seen_ms"] = st.last_seen_ms;
        s["agent_version"] = st.agent_version;
      } else {
        s.erase("last_seen_ms");
        s.erase("agent_version");
      }
    }
    return Response::json(j.dump(2));
  });
  route(router, "PUT", "/api/v1/topology", Access::kAdmin, [this](const Request& r) {
    bool dry_run = bool_param(r, "dry_run").value_or(false);
    json j = parse_body(r, /*allow_yaml=*/true);
    if (!j.is_object()) throw HttpError{422, "body", "must be an object (a whole topology)"};
    auto t = model::topology_from_json(j, topology_.limits());
    topology_.import(t, dry_run);
    if (!dry_run) {
      spdlog::info("controller: topology imported: {} DCs, {} racks, {} servers, {} rules",
                   t.dcs.size(), t.racks.size(), t.servers.size(), t.rules.size());
    }
    return Response::json(json{
        {"dry_run", dry_run},
        {"dcs", t.dcs.size()},
        {"racks", t.racks.size()},
        {"servers", t.servers.size()},
        {"rules",
         t.rules.size()}}.dump());
  });
  auto kill_switch = [this](bool stop) {
    return [this, stop](const Request& r) {
      std::string dc;
      if (!blank(r.body)) {
        json j = parse_object(r);
        for (const auto& [key, value] : j.items()) {
          if (key != "dc") throw model::ValidationError(key, "unknown field");
          if (!value.is_string()) throw model::ValidationError("dc", "must be a string");
          dc = value.get<std::string>();
        }
      }
      topology_.set_stopped(dc, stop);
      return Response::json(status_json(topology_.status()).dump());
    };
  };
  route(router, "POST", "/api/v1/stop", Access::kAdmin, kill_switch(true));
  route(router, "POST", "/api/v1/resume", Access::kAdmin, kill_switch(false));
  route(router, "GET", "/api/v1/status", Access::kPublic,
        [this](const Request&) { return Response::json(status_json(topology_.status()).dump()); });
}

void Api::add_agent_routes(http::Router& router) {
  route(router, "POST", "/api/v1/heartbeat", Access::kAgent, [this](const Request& r) {
    auto hb = heartbeat_from_json(parse_object(r));
    auto result = topology_.heartbeat(hb);
    return Response::json(json{{"server", result.server},
                               {"dc", result.dc},
                               {"rack", result.rack},
                               {"pinglist_url", path_of("/api/v1/pinglist/", result.server)},
                               {"heartbeat_interval_s", options_.heartbeat_interval_s}}
                              .dump());
  });
  route(router, "GET", "/api/v1/pinglist/{server}", Access::kPublic, [this](const Request& r) {
    auto format = pinglist::Format::kXml;
    if (auto f = r.query_param("format")) {
      if (*f == "json") {
        format = pinglist::Format::kJson;
      } else if (*f != "xml") {
        throw HttpError{400, "format", "must be xml or json, got '" + *f + "'"};
      }
    } else if (r.header("accept").find("application/json") != std::string_view::npos) {
      format = pinglist::Format::kJson;
    }
    auto served = pinglists_.get(r.params[0], format, r.header("if-none-match"));
    if (served.status == 404) {
      return Response::error(
          404, "no pinglist for server '" + r.params[0] + "' (unknown or removed server)",
          "server");
    }
    Response resp;
    resp.status = served.status;
    resp.content_type = served.status == 304               ? ""
                        : format == pinglist::Format::kXml ? "application/xml"
                                                           : "application/json";
    resp.head_lines = std::move(served.head_lines);  // ETag, Cache-Control, Vary
    if (served.status == 200) resp.shared_body = std::move(served.body);
    return resp;
  });
  route(router, "GET", "/api/v1/pinglists", Access::kPublic, [this](const Request& r) {
    Page page{size_param(r, "offset", 0, SIZE_MAX / 2),
              size_param(r, "limit", options_.default_limit, options_.max_limit)};
    auto dc = r.query_param("dc");
    auto topo = topology_.snapshot();
    std::vector<const model::Server*> picked;
    for (const auto& s : topo->servers) {
      if (!dc || s.dc == *dc) picked.push_back(&s);
    }
    json j = page_of(picked, page, [&](const model::Server* s) {
      auto sum = pinglists_.summary(s->name);
      return json{{"server", s->name},      {"dc", s->dc},           {"rack", s->rack},
                  {"entries", sum.entries}, {"chosen", sum.chosen},  {"alive", sum.alive},
                  {"stopped", sum.stopped}, {"version", sum.version}};
    });
    j["stopped"] = topo->settings.stopped;
    j["generation"] = pinglists_.generation();
    return Response::json(j.dump());
  });
}

void add_process_routes(http::Router& router, metrics::Registry& registry, const json& openapi) {
  router.add("GET", "/metrics", [&registry](const Request&) {
    return Response::text(registry.render(), 200, "text/plain; version=0.0.4; charset=utf-8");
  });
  router.add("GET", "/healthz", [](const Request&) { return Response::text("ok\n"); });
  auto doc = std::make_shared<const std::string>(openapi.dump(2));
  router.add("GET", "/api/v1/openapi.json", [doc](const Request&) {
    Response r;
    r.shared_body = doc;
    return r;
  });
}

std::shared_ptr<http::Router> build_router(const std::vector<RoutePart>& parts,
                                           metrics::Registry& registry) {
  auto router = std::make_shared<http::Router>();
  std::vector<json> fragments;
  for (const auto& part : parts) {
    part.add_routes(*router);
    if (!part.openapi.is_null()) fragments.push_back(part.openapi);
  }
  auto doc = openapi_document(fragments);
  add_process_routes(*router, registry, doc);
  // A route the document does not describe is a bug: refuse to start rather than serve it.
  for (const auto& [method, pattern] : router->routes()) {
    std::string op = method;
    for (auto& c : op) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto& paths = doc["paths"];
    if (!paths.contains(pattern) || !paths[pattern].contains(op)) {
      throw std::logic_error("route " + method + " " + pattern +
                             " is missing from the OpenAPI document");
    }
  }
  return router;
}

http::Handler make_handler(std::shared_ptr<const http::Router> router,
                           metrics::Registry& registry) {
  struct Reason {
    int status;
    const char* name;
  };
  static constexpr Reason kReasons[] = {
      {400, "bad_request"},
      {401, "unauthorized"},
      {403, "forbidden"},
      {404, "not_found"},
      {405, "method_not_allowed"},
      {409, "conflict"},
      {413, "too_large"},
      {415, "unsupported_media_type"},
      {422, "invalid"},
      {500, "internal"},
      {503, "unavailable"},
  };
  auto counters = std::make_shared<std::vector<std::pair<int, metrics::Counter*>>>();
  for (const auto& r : kReasons) {
    counters->emplace_back(r.status,
                           &registry.counter("pingmesh_api_rejected_requests_total",
                                             "Requests answered with an error status, by reason.",
                                             {{"reason", r.name}}));
  }
  auto& other =
      registry.counter("pingmesh_api_rejected_requests_total",
                       "Requests answered with an error status, by reason.", {{"reason", "other"}});
  return [router = std::move(router), counters, &other](const Request& request) {
    Response resp = router->dispatch(request);
    if (resp.status >= 400) {
      auto it = std::find_if(counters->begin(), counters->end(),
                             [&](const auto& c) { return c.first == resp.status; });
      (it == counters->end() ? &other : it->second)->inc();
    }
    return resp;
  };
}

}  // namespace pingmesh::controller
