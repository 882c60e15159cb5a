// `pingmesh ctl`: a command-line client of the controller's REST API (docs/API.md).
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cmd/commands.hpp"
#include "common/http.hpp"
#include "model/document.hpp"
#include "model/topology_json.hpp"

namespace pingmesh::cmd {

namespace {

using nlohmann::json;

/// A failed call, already worded for the user.
struct CtlError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Options shared by every ctl subcommand.
struct CtlOptions {
  std::string server = "http://127.0.0.1:9000";
  std::string token;
  std::string output = "table";
};

/// Talks to the API; every error becomes a CtlError naming the HTTP status and the field.
class ApiClient {
 public:
  explicit ApiClient(const CtlOptions& o) : options_(o) {
    while (!options_.server.empty() && options_.server.back() == '/') options_.server.pop_back();
  }

  /// Performs a request and returns the response (any 2xx or 304); throws CtlError otherwise
  /// (a 404 too, unless allow_404).
  http::ClientResponse raw(const std::string& method, const std::string& path,
                           const std::string& body = "",
                           const std::string& content_type = "application/json",
                           http::Headers extra = {}, bool allow_404 = false) {
    http::ClientRequest req;
    req.method = method;
    req.url = options_.server + path;
    req.body = body;
    req.timeout = std::chrono::seconds(60);
    req.headers = std::move(extra);
    if (!options_.token.empty())
      req.headers.emplace_back("Authorization", "Bearer " + options_.token);
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      req.headers.emplace_back("Content-Type", content_type);
    }
    auto resp = client_.perform(req);
    if (resp.status == 0) {
      throw CtlError("cannot reach " + options_.server + ": " + resp.error +
                     " (set --server or PINGMESH_SERVER)");
    }
    if (resp.status == 404 && allow_404) return resp;
    if (resp.status >= 400) {
      std::string msg = "HTTP " + std::to_string(resp.status);
      auto j = json::parse(resp.body, nullptr, false);
      if (j.is_object() && j.contains("error")) {
        if (j.contains("field") && !j["field"].get<std::string>().empty()) {
          msg += ": " + j["field"].get<std::string>();
        }
        msg += ": " + j["error"].get<std::string>();
      } else if (!resp.body.empty()) {
        msg += ": " + resp.body;
      }
      throw CtlError(msg);
    }
    return resp;
  }

  json call(const std::string& method, const std::string& path, const json& body = nullptr) {
    auto resp = raw(method, path, body.is_null() ? "" : body.dump());
    if (resp.body.empty()) return nullptr;
    auto j = json::parse(resp.body, nullptr, false);
    if (j.is_discarded()) throw CtlError("the server sent something that is not JSON");
    return j;
  }

  /// GET of one object; nullopt when the server answers 404.
  std::optional<json> find(const std::string& path) {
    auto resp = raw("GET", path, "", "application/json", {}, true);
    if (resp.status == 404) return std::nullopt;
    auto j = json::parse(resp.body, nullptr, false);
    if (j.is_discarded()) throw CtlError("the server sent something that is not JSON");
    return j;
  }

  /// Fetches every page of a list.
  json list(const std::string& path) {
    json items = json::array();
    std::size_t offset = 0;
    const char* sep = path.find('?') == std::string::npos ? "?" : "&";
    for (;;) {
      auto page = call("GET", path + sep + "offset=" + std::to_string(offset) + "&limit=10000");
      for (auto& it : page["items"]) items.push_back(std::move(it));
      offset = items.size();
      if (page["items"].empty() || offset >= page["total"].get<std::size_t>()) break;
    }
    return items;
  }

 private:
  CtlOptions options_;
  http::Client client_;
};

std::string enc(const std::string& s) { return http::url_encode(s); }

std::string cell(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  if (v.is_array()) {
    std::string out;
    for (const auto& x : v) {
      if (!out.empty()) out += ",";
      if (x.is_object() && x.contains("protocol")) {
        out += x["protocol"].get<std::string>();
        if (x.value("port", 0) != 0) out += ":" + std::to_string(x["port"].get<int>());
        if (x.contains("dscp") && !x["dscp"].is_null())
          out += ":" + std::to_string(x["dscp"].get<int>());
      } else {
        out += cell(x);
      }
    }
    return out.empty() ? "-" : out;
  }
  return v.dump();
}

/// Prints rows as aligned columns (header in upper case).
void print_table(const json& rows, const std::vector<std::string>& columns) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> width;
  std::vector<std::string> header;
  for (const auto& c : columns) {
    std::string h = c;
    std::transform(h.begin(), h.end(), h.begin(),
                   [](char x) { return static_cast<char>(std::toupper(x)); });
    header.push_back(h);
    width.push_back(h.size());
  }
  for (const auto& r : rows) {
    std::vector<std::string> line;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      line.push_back(r.contains(columns[i]) ? cell(r[columns[i]]) : "-");
      width[i] = std::max(width[i], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  auto print_line = [&](const std::vector<std::string>& line) {
    std::string out;
    for (std::size_t i = 0; i < line.size(); ++i) {
      out += line[i];
      if (i + 1 < line.size()) out += std::string(width[i] - line[i].size() + 2, ' ');
    }
    std::cout << out << "\n";
  };
  print_line(header);
  for (const auto& l : cells) print_line(l);
}

/// Prints one object as "key: value" lines.
void print_object(const json& obj) {
  std::size_t w = 0;
  for (const auto& [k, v] : obj.items()) w = std::max(w, k.size());
  for (const auto& [k, v] : obj.items()) {
    std::cout << k << ":" << std::string(w - k.size() + 1, ' ') << cell(v) << "\n";
  }
}

std::string read_file(const std::string& path) {
  if (path == "-") {
    std::stringstream s;
    s << std::cin.rdbuf();
    return s.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CtlError(path + ": cannot read the file");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// "tcp:9001", "udp:9001:46" (DSCP 46), "icmp", "http:9002" -> a probe object.
json parse_probe(const std::string& spec) {
  json p;
  auto first = spec.find(':');
  p["protocol"] = spec.substr(0, first);
  if (first != std::string::npos) {
    auto second = spec.find(':', first + 1);
    auto number = [&](const std::string& s, const char* what) {
      if (s.empty() || !std::all_of(s.begin(), s.end(), ::isdigit) || s.size() > 5) {
        throw CtlError("--probe " + spec + ": " + what + " must be a number");
      }
      return std::stoi(s);
    };
    p["port"] = number(spec.substr(first + 1, second - first - 1), "port");
    if (second != std::string::npos) p["dscp"] = number(spec.substr(second + 1), "dscp");
  }
  return p;
}

/// Flags of `dc add` / `dc set`: only those given end up in the request body.
struct DcFlags {
  std::string mode, description;
  std::vector<std::string> probes;
  uint32_t interval_ms = 0, payload_bytes = 0, dscp = 0, inter_dc_servers = 0, max_peers = 0;
  double rack_ratio = 1, server_ratio = 1;
  bool ipv4 = true, ipv6 = true;
  CLI::App* app = nullptr;

  void add_to(CLI::App* c) {
    app = c;
    c->add_option("--mode", mode, "switch (servers placed by address) or rack (registered)")
        ->check(CLI::IsMember({"switch", "rack"}));
    c->add_option("--probe", probes,
                  "Probe kind, repeatable: tcp:9001, udp:9001, http:9002, icmp; a third field\n"
                  "sets its DSCP (tcp:9001:46)");
    c->add_option("--interval-ms", interval_ms, "Interval per pair and probe kind (>= 10000)");
    c->add_option("--payload-bytes", payload_bytes, "Probe payload, 0..65536");
    c->add_option("--dscp", dscp, "Default DSCP class, 0..63");
    c->add_option("--rack-ratio", rack_ratio, "Fraction (0,1] of racks/switches taking part");
    c->add_option("--server-ratio", server_ratio, "Fraction (0,1] of servers per rack taking part");
    c->add_option("--inter-dc-servers", inter_dc_servers,
                  "Servers taking part in inter-DC probing");
    c->add_option("--max-peers", max_peers, "Cap on targets per server (0 = none)");
    c->add_option("--ipv4", ipv4, "Probe IPv4 addresses (true/false)");
    c->add_option("--ipv6", ipv6, "Probe IPv6 addresses (true/false)");
    c->add_option("--description", description, "Free text");
  }

  json body() const {
    json j = json::object();
    auto given = [&](const char* flag) { return app->count(flag) > 0; };
    if (given("--mode")) j["mode"] = mode;
    if (given("--probe")) {
      j["probes"] = json::array();
      for (const auto& p : probes) j["probes"].push_back(parse_probe(p));
    }
    if (given("--interval-ms")) j["interval_ms"] = interval_ms;
    if (given("--payload-bytes")) j["payload_bytes"] = payload_bytes;
    if (given("--dscp")) j["dscp"] = dscp;
    if (given("--rack-ratio")) j["rack_ratio"] = rack_ratio;
    if (given("--server-ratio")) j["server_ratio"] = server_ratio;
    if (given("--inter-dc-servers")) j["inter_dc_servers"] = inter_dc_servers;
    if (given("--max-peers")) j["max_peers"] = max_peers;
    if (given("--ipv4")) j["ipv4"] = ipv4;
    if (given("--ipv6")) j["ipv6"] = ipv6;
    if (given("--description")) j["description"] = description;
    return j;
  }
};

/// Unix ms as "2024-05-01 12:00:05" (UTC); "-" for null or 0.
std::string format_time(const json& ms) {
  if (!ms.is_number() || ms.get<int64_t>() <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ms.get<int64_t>() / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

/// A time flag as Unix seconds: a Unix time ("1700000000"), a UTC date-time
/// ("2024-05-01T12:00:00Z", "2024-05-01 12:00:00", "2024-05-01"), or an age before now
/// ("90s", "15m", "2h", "7d").
int64_t parse_when(const std::string& flag, const std::string& text) {
  auto bad = [&] {
    return CtlError(flag + " " + text +
                    ": give Unix seconds, a UTC time (2024-05-01T12:00:00Z) or an age (15m, "
                    "2h, 7d)");
  };
  if (text.empty()) throw bad();
  if (std::all_of(text.begin(), text.end(), ::isdigit)) {
    if (text.size() > 12) throw bad();
    return std::stoll(text);
  }
  char unit = text.back();
  std::string num = text.substr(0, text.size() - 1);
  if (!num.empty() && num.size() < 10 && std::all_of(num.begin(), num.end(), ::isdigit) &&
      std::string("smhdw").find(unit) != std::string::npos) {
    int64_t per = unit == 's'   ? 1
                  : unit == 'm' ? 60
                  : unit == 'h' ? 3600
                  : unit == 'd' ? 86400
                                : 604800;
    return static_cast<int64_t>(std::time(nullptr)) - std::stoll(num) * per;
  }
  std::tm tm{};
  std::string s = text;
  if (!s.empty() && (s.back() == 'Z' || s.back() == 'z')) s.pop_back();
  for (auto& c : s) {
    if (c == 'T' || c == 't') c = ' ';
  }
  const char* end = strptime(s.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
  if (end == nullptr || *end != '\0') {
    tm = {};
    end = strptime(s.c_str(), "%Y-%m-%d %H:%M", &tm);
  }
  if (end == nullptr || *end != '\0') {
    tm = {};
    end = strptime(s.c_str(), "%Y-%m-%d", &tm);
  }
  if (end == nullptr || *end != '\0') throw bad();
  return static_cast<int64_t>(timegm(&tm));
}

/// "key=value" -> (key, value); CtlError naming the flag otherwise.
std::pair<std::string, std::string> parse_pair(const std::string& flag, const std::string& s) {
  auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0) throw CtlError(flag + " " + s + ": give key=value");
  return {s.substr(0, eq), s.substr(eq + 1)};
}

/// Flags of `alert-rule set`: only those given change the rule.
struct AlertRuleFlags {
  std::string scope, metric, severity, protocol, description, enabled;
  double threshold = 0;
  int64_t window_s = 0, for_s = 0;
  uint64_t min_samples = 0, min_events = 0;
  std::vector<std::string> labels, match;
  CLI::App* app = nullptr;

  void add_to(CLI::App* c) {
    app = c;
    c->add_option("--scope", scope, "global, dc, dc_pair, rack, rack_pair or server");
    c->add_option("--metric", metric, "p50, p99, p999 (ms), loss, failure_rate (ratio), no_data");
    c->add_option("--threshold", threshold,
                  "Latency metrics: milliseconds; loss and failure_rate: a ratio (0.001 = 0.1 %)");
    c->add_option("--window-s", window_s, "Seconds of data evaluated (5..60)");
    c->add_option("--for-s", for_s, "Seconds the condition must hold before firing");
    c->add_option("--severity", severity, "Severity label (critical, warning, ...)");
    c->add_option("--protocol", protocol, "tcp, udp, icmp or http");
    c->add_option("--label", labels, "Label added to the alerts, key=value (repeatable)");
    c->add_option("--match", match,
                  "Only instances with this label, key=value (repeatable; dc, rack, server, ...)");
    c->add_option("--min-samples", min_samples, "Fewer probes in the window never fire");
    c->add_option("--min-events", min_events, "Fewer lost/failed/slow probes never fire");
    c->add_option("--enabled", enabled, "true or false")->check(CLI::IsMember({"true", "false"}));
    c->add_option("--description", description, "Free text");
  }
  bool any() const {
    for (const auto* f :
         {"--scope", "--metric", "--threshold", "--window-s", "--for-s", "--severity", "--protocol",
          "--label", "--match", "--min-samples", "--min-events", "--enabled", "--description"}) {
      if (app->count(f) > 0) return true;
    }
    return false;
  }
  /// Applies the given flags to `rule` (a rule object).
  void apply(json* rule) const {
    auto given = [&](const char* flag) { return app->count(flag) > 0; };
    json& r = *rule;
    if (given("--scope")) r["scope"] = scope;
    if (given("--metric")) r["metric"] = metric;
    if (given("--threshold")) r["threshold"] = threshold;
    if (given("--window-s")) r["window_s"] = window_s;
    if (given("--for-s")) r["for_s"] = for_s;
    if (given("--severity")) r["severity"] = severity;
    if (given("--protocol")) r["protocol"] = protocol;
    if (given("--label")) {
      r["labels"] = json::object();
      for (const auto& l : labels) {
        auto [k, v] = parse_pair("--label", l);
        r["labels"][k] = v;
      }
    }
    if (given("--match")) {
      r["match"] = json::object();
      for (const auto& m : match) {
        auto [k, v] = parse_pair("--match", m);
        r["match"][k] = v;
      }
    }
    if (given("--min-samples")) r["min_samples"] = min_samples;
    if (given("--min-events")) r["min_events"] = min_events;
    if (given("--enabled")) r["enabled"] = enabled == "true";
    if (given("--description")) r["description"] = description;
  }
};

/// Filters of `ctl alerts`.
struct AlertFilters {
  std::string state, since, until, rule, scope, severity;
  std::vector<std::string> labels;
  int limit = 100;

  std::string query() const {
    std::string q = "/api/v1/alerts?limit=" + std::to_string(limit);
    if (!state.empty()) q += "&state=" + http::url_encode(state);
    if (!since.empty()) q += "&since=" + std::to_string(parse_when("--since", since));
    if (!until.empty()) q += "&until=" + std::to_string(parse_when("--until", until));
    if (!rule.empty()) q += "&rule=" + http::url_encode(rule);
    if (!scope.empty()) q += "&scope=" + http::url_encode(scope);
    if (!severity.empty()) q += "&severity=" + http::url_encode(severity);
    if (!labels.empty()) {
      std::string l;
      for (const auto& x : labels) {
        parse_pair("--label", x);
        l += (l.empty() ? "" : ",") + x;
      }
      q += "&labels=" + http::url_encode(l);
    }
    return q;
  }
};

/// Everything the ctl subcommands read at run time.
struct CtlState {
  CtlOptions options;
  std::string name, dc, rack, hostname, file, alive, description;
  std::string level = "intra-rack", src_dc = "*", dst_dc = "*", action = "add";
  std::vector<std::string> cidrs, addresses, probes;
  uint32_t interval_ms = 0, payload_bytes = 0;
  double racks = 1, servers = 1;
  bool asymmetric = false, json_format = false, dry_run = false, state = false;
  DcFlags dc_add_flags, dc_set_flags;
  AlertRuleFlags alert_rule_flags;
  AlertFilters alert_filters;
  bool replace_all = false, active = false;
  CLI::App* rule_add = nullptr;
  CLI::App* ratio_set = nullptr;

  bool as_json() const { return options.output == "json"; }
  void show(const json& j) const { std::cout << j.dump(2) << "\n"; }
  void show_list(const json& items, const std::vector<std::string>& columns) const {
    if (as_json()) {
      show(items);
    } else {
      print_table(items, columns);
    }
  }
  void show_object(const json& obj) const {
    if (as_json()) {
      show(obj);
    } else {
      print_object(obj);
    }
  }
};

const std::vector<std::string> kDcColumns{"name",       "mode",         "probes", "interval_ms",
                                          "rack_ratio", "server_ratio", "stopped"};
const std::vector<std::string> kRackColumns{"dc", "name", "cidrs", "description"};
const std::vector<std::string> kServerColumns{"name",  "dc",           "rack",         "addresses",
                                              "alive", "last_seen_ms", "agent_version"};
const std::vector<std::string> kAlertRuleColumns{
    "name", "scope", "metric", "threshold", "window_s", "for_s", "severity", "match", "enabled"};
const std::vector<std::string> kAlertColumns{"id",      "state", "severity", "alert", "instance",
                                             "started", "fired", "resolved", "value", "verdicts"};
const std::vector<std::string> kVerdictColumns{"kind",  "component", "confidence", "active",
                                               "first", "last",      "summary"};
const std::vector<std::string> kRuleColumns{"name",   "level",  "src_dc",     "dst_dc",
                                            "action", "probes", "interval_ms"};

}  // namespace

void add_ctl_command(CLI::App& app, std::function<int()>* run) {
  auto st = std::make_shared<CtlState>();
  auto* ctl = app.add_subcommand(
      "ctl",
      "Command-line client of the controller API (operators, scripts, CMDB sync).\n"
      "Errors from the server are shown with the field at fault; the exit code is 1.");
  ctl->require_subcommand(1);
  ctl->add_option("--server", st->options.server, "Controller URL")
      ->envname("PINGMESH_SERVER")
      ->capture_default_str();
  ctl->add_option("--token", st->options.token, "Admin bearer token")
      ->envname("PINGMESH_ADMIN_TOKEN");
  ctl->add_option("-o,--output", st->options.output, "Output format: table or json")
      ->check(CLI::IsMember({"json", "table"}))
      ->capture_default_str();

  // Registers a leaf command whose action runs with a client.
  auto leaf = [run, st](CLI::App* parent, const std::string& name, const std::string& help,
                        std::function<void(ApiClient&, CtlState&)> action) {
    auto* c = parent->add_subcommand(name, help);
    c->callback([run, st, action] {
      *run = [st, action] {
        try {
          ApiClient client(st->options);
          action(client, *st);
          return 0;
        } catch (const CtlError& e) {
          std::cerr << "pingmesh ctl: " << e.what() << "\n";
          return 1;
        }
      };
    });
    return c;
  };

  // ---- dc ----
  auto* dc = ctl->add_subcommand("dc", "Datacenters")->require_subcommand(1);
  leaf(dc, "list", "List datacenters",
       [](ApiClient& c, CtlState& s) { s.show_list(c.list("/api/v1/dcs"), kDcColumns); });
  leaf(
      dc, "get", "Show a datacenter",
      [](ApiClient& c, CtlState& s) { s.show_object(c.call("GET", "/api/v1/dcs/" + enc(s.name))); })
      ->add_option("name", st->name, "Datacenter")
      ->required();
  auto* dc_add = leaf(dc, "add", "Create a datacenter", [](ApiClient& c, CtlState& s) {
    json body = s.dc_add_flags.body();
    body["name"] = s.name;
    s.show_object(c.call("POST", "/api/v1/dcs", body));
  });
  dc_add->add_option("name", st->name, "Datacenter")->required();
  auto* dc_set =
      leaf(dc, "set", "Change some fields of a datacenter", [](ApiClient& c, CtlState& s) {
        s.show_object(c.call("PATCH", "/api/v1/dcs/" + enc(s.name), s.dc_set_flags.body()));
      });
  dc_set->add_option("name", st->name, "Datacenter")->required();
  st->dc_add_flags.add_to(dc_add);
  st->dc_set_flags.add_to(dc_set);
  auto* dc_devices = leaf(
      dc, "devices",
      "Show a datacenter's fabric devices (spines, ToRs, borders), or replace them (--set FILE)",
      [](ApiClient& c, CtlState& s) {
        if (s.file.empty()) {
          json d = c.call("GET", "/api/v1/dcs/" + enc(s.name));
          s.show_list(d.value("devices", json::array()), {"name", "layer", "addresses"});
          return;
        }
        json doc;
        try {
          doc = model::parse_document(read_file(s.file), s.file == "-" ? "stdin" : s.file);
        } catch (const model::ValidationError& e) {
          throw CtlError(e.message());
        }
        // A list of devices (what `lab/lab.sh devices DC` prints), or {"devices": [...]}.
        if (doc.is_object() && doc.contains("devices")) doc = doc["devices"];
        if (!doc.is_array()) {
          throw CtlError(s.file + ": must hold a list of devices, or an object with \"devices\"");
        }
        json d = c.call("PATCH", "/api/v1/dcs/" + enc(s.name), json{{"devices", doc}});
        if (s.as_json()) {
          s.show(d.value("devices", json::array()));
        } else {
          std::cout << d.value("devices", json::array()).size() << " fabric devices set on "
                    << s.name << "\n";
        }
      });
  dc_devices->add_option("name", st->name, "Datacenter")->required();
  dc_devices->add_option("--set", st->file,
                         "JSON or YAML file ('-' = stdin) with the new list of devices: "
                         "[{name, layer: spine|tor|border, addresses: [...]}]; [] removes them");
  leaf(dc, "rm", "Delete a datacenter with its racks, servers and rules",
       [](ApiClient& c, CtlState& s) {
         c.call("DELETE", "/api/v1/dcs/" + enc(s.name));
         std::cout << "deleted datacenter " << s.name << "\n";
       })
      ->add_option("name", st->name, "Datacenter")
      ->required();

  // ---- rack ----
  auto* rack =
      ctl->add_subcommand("rack", "Racks (switches in switch mode)")->require_subcommand(1);
  leaf(rack, "list", "List the racks of a datacenter",
       [](ApiClient& c, CtlState& s) {
         s.show_list(c.list("/api/v1/dcs/" + enc(s.dc) + "/racks"), kRackColumns);
       })
      ->add_option("dc", st->dc, "Datacenter")
      ->required();
  auto* rack_add = leaf(rack, "add", "Create a rack or switch", [](ApiClient& c, CtlState& s) {
    json body{{"name", s.name}, {"cidrs", s.cidrs}};
    if (!s.description.empty()) body["description"] = s.description;
    s.show_object(c.call("POST", "/api/v1/dcs/" + enc(s.dc) + "/racks", body));
  });
  rack_add->add_option("dc", st->dc, "Datacenter")->required();
  rack_add->add_option("name", st->name, "Rack or switch")->required();
  rack_add->add_option("--cidr", st->cidrs,
                       "Server subnet of this switch, repeatable (10.1.2.0/24)");
  rack_add->add_option("--description", st->description, "Free text");
  auto* rack_rm = leaf(rack, "rm", "Delete a rack (rack mode: with its servers)",
                       [](ApiClient& c, CtlState& s) {
                         c.call("DELETE", "/api/v1/dcs/" + enc(s.dc) + "/racks/" + enc(s.name));
                         std::cout << "deleted rack " << s.dc << "/" << s.name << "\n";
                       });
  rack_rm->add_option("dc", st->dc, "Datacenter")->required();
  rack_rm->add_option("name", st->name, "Rack or switch")->required();

  // ---- server ----
  auto* server = ctl->add_subcommand("server", "Servers")->require_subcommand(1);
  auto* server_list = leaf(server, "list", "List servers", [](ApiClient& c, CtlState& s) {
    std::string q = "/api/v1/servers?x=";
    if (!s.dc.empty()) q += "&dc=" + enc(s.dc);
    if (!s.rack.empty()) q += "&rack=" + enc(s.rack);
    if (!s.alive.empty()) q += "&alive=" + enc(s.alive);
    s.show_list(c.list(q), kServerColumns);
  });
  server_list->add_option("--dc", st->dc, "Only this datacenter");
  server_list->add_option("--rack", st->rack, "Only this rack or switch");
  server_list->add_option("--alive", st->alive, "Only live (true) or silent (false) servers")
      ->check(CLI::IsMember({"true", "false"}));
  leaf(server, "get", "Show a server",
       [](ApiClient& c, CtlState& s) {
         s.show_object(c.call("GET", "/api/v1/servers/" + enc(s.name)));
       })
      ->add_option("name", st->name, "Server")
      ->required();
  auto* server_add = leaf(server, "add", "Register a server, or many from a file (--file)",
                          [](ApiClient& c, CtlState& s) {
                            if (!s.file.empty()) {
                              json list;
                              try {
                                list = model::parse_document(read_file(s.file), s.file);
                              } catch (const model::ValidationError& e) {
                                throw CtlError(e.message());
                              }
                              if (!list.is_array())
                                throw CtlError(s.file + ": must hold a list of servers");
                              auto r = c.call("POST", "/api/v1/servers", list);
                              std::cout << r["created"] << " servers created, " << r["updated"]
                                        << " updated\n";
                              return;
                            }
                            if (s.name.empty()) throw CtlError("give a server name, or --file");
                            json body{{"name", s.name}, {"dc", s.dc}, {"addresses", s.addresses}};
                            if (!s.rack.empty()) body["rack"] = s.rack;
                            if (!s.hostname.empty()) body["hostname"] = s.hostname;
                            s.show_object(c.call("POST", "/api/v1/servers", body));
                          });
  server_add->add_option("name", st->name, "Server name");
  server_add->add_option("--dc", st->dc, "Datacenter");
  server_add->add_option("--rack", st->rack, "Rack (rack mode; switch mode places by address)");
  server_add->add_option("--address", st->addresses, "IPv4/IPv6 address, repeatable");
  server_add->add_option("--hostname", st->hostname, "Hostname");
  server_add->add_option("--file", st->file,
                         "JSON or YAML list of servers: each created or replaced (bulk)");
  leaf(server, "rm", "Delete a server",
       [](ApiClient& c, CtlState& s) {
         c.call("DELETE", "/api/v1/servers/" + enc(s.name));
         std::cout << "deleted server " << s.name << "\n";
       })
      ->add_option("name", st->name, "Server")
      ->required();

  // ---- rule ----
  auto* rule =
      ctl->add_subcommand("rule", "Probe rules (see docs/CONFIG.md)")->require_subcommand(1);
  leaf(rule, "list", "List rules",
       [](ApiClient& c, CtlState& s) { s.show_list(c.list("/api/v1/rules"), kRuleColumns); });
  st->rule_add = leaf(rule, "add", "Create a rule", [](ApiClient& c, CtlState& s) {
    json body{{"name", s.name},         {"level", s.level},   {"src_dc", s.src_dc},
              {"dst_dc", s.dst_dc},     {"action", s.action}, {"symmetric", !s.asymmetric},
              {"probes", json::array()}};
    for (const auto& p : s.probes) body["probes"].push_back(parse_probe(p));
    if (s.rule_add->count("--interval-ms")) body["interval_ms"] = s.interval_ms;
    if (s.rule_add->count("--payload-bytes")) body["payload_bytes"] = s.payload_bytes;
    s.show_object(c.call("POST", "/api/v1/rules", body));
  });
  st->rule_add->add_option("name", st->name, "Rule name")->required();
  st->rule_add->add_option("--level", st->level, "intra-rack, intra-dc or inter-dc")
      ->capture_default_str();
  st->rule_add->add_option("--src-dc", st->src_dc, "DC (or source DC for inter-dc); * = all")
      ->capture_default_str();
  st->rule_add->add_option("--dst-dc", st->dst_dc, "inter-dc: destination DC; * = all")
      ->capture_default_str();
  st->rule_add->add_option("--action", st->action, "add, replace or disable")
      ->capture_default_str();
  st->rule_add->add_option("--probe", st->probes, "Probe kind, repeatable (tcp:9001, icmp, ...)");
  st->rule_add->add_option("--interval-ms", st->interval_ms, "Override the DC's interval");
  st->rule_add->add_option("--payload-bytes", st->payload_bytes, "Override the DC's payload");
  st->rule_add->add_flag("--asymmetric", st->asymmetric,
                         "inter-dc pair rule for src->dst only (default: both directions)");
  leaf(rule, "rm", "Delete a rule",
       [](ApiClient& c, CtlState& s) {
         c.call("DELETE", "/api/v1/rules/" + enc(s.name));
         std::cout << "deleted rule " << s.name << "\n";
       })
      ->add_option("name", st->name, "Rule")
      ->required();

  // ---- ratio ----
  auto* ratio = ctl->add_subcommand("ratio", "Participation ratios of a DC")->require_subcommand(1);
  st->ratio_set = leaf(ratio, "set", "Set the fractions of racks and of servers that take part",
                       [](ApiClient& c, CtlState& s) {
                         json body = json::object();
                         if (s.ratio_set->count("--racks")) body["rack_ratio"] = s.racks;
                         if (s.ratio_set->count("--servers")) body["server_ratio"] = s.servers;
                         if (body.empty()) throw CtlError("give --racks and/or --servers");
                         s.show_object(c.call("PATCH", "/api/v1/dcs/" + enc(s.dc), body));
                       });
  st->ratio_set->add_option("dc", st->dc, "Datacenter")->required();
  st->ratio_set->add_option("--racks", st->racks, "Fraction (0,1] of racks/switches");
  st->ratio_set->add_option("--servers", st->servers, "Fraction (0,1] of servers per rack");

  // ---- alert rules, alerts, verdicts (the analyzer, docs/ANALYZER.md) ----
  auto* arule = ctl->add_subcommand("alert-rule", "Alert rules of the analyzer (docs/ANALYZER.md)")
                    ->require_subcommand(1);
  leaf(arule, "list", "List alert rules", [](ApiClient& c, CtlState& s) {
    s.show_list(c.call("GET", "/api/v1/alert-rules")["rules"], kAlertRuleColumns);
  });
  leaf(arule, "get", "Show an alert rule",
       [](ApiClient& c, CtlState& s) {
         s.show_object(c.call("GET", "/api/v1/alert-rules/" + enc(s.name)));
       })
      ->add_option("name", st->name, "Alert rule")
      ->required();
  auto* arule_set =
      leaf(arule, "set",
           "Create or change an alert rule from flags (only the flags given change; a new rule\n"
           "needs --scope, --metric and --threshold), or create/replace rules from a JSON or\n"
           "YAML --file",
           [](ApiClient& c, CtlState& s) {
             const auto& flags = s.alert_rule_flags;
             if (s.file.empty()) {
               if (s.name.empty()) throw CtlError("give the rule's name, or --file");
               if (!flags.any())
                 throw CtlError("nothing to set: give flags (--scope, --metric, ...)");
               auto path = "/api/v1/alert-rules/" + enc(s.name);
               json rule = c.find(path).value_or(json{{"name", s.name}});
               flags.apply(&rule);
               s.show_object(c.call("PUT", path, rule));
               return;
             }
             json doc;
             try {
               doc = model::parse_document(read_file(s.file), s.file);
             } catch (const model::ValidationError& e) {
               throw CtlError(e.message());
             }
             bool list = doc.is_array() || (doc.is_object() && doc.contains("rules"));
             if (s.replace_all) {
               if (!list) throw CtlError(s.file + ": --replace-all needs a list of rules");
               auto r = c.call("PUT", "/api/v1/alert-rules", doc);
               std::cout << "alert rules replaced: " << r["rules"].size() << " rules\n";
               return;
             }
             if (!list) {
               if (!doc.is_object())
                 throw CtlError(s.file + ": must hold a rule or a list of rules");
               if (!s.name.empty()) {
                 if (doc.contains("name") && doc["name"] != s.name) {
                   throw CtlError(s.file + ": the rule is named " + doc["name"].dump() + ", not " +
                                  s.name);
                 }
                 doc["name"] = s.name;
               }
               if (!doc.contains("name") || !doc["name"].is_string()) {
                 throw CtlError(s.file + ": name: the rule needs a name (or give it as argument)");
               }
               flags.apply(&doc);
               s.show_object(c.call(
                   "PUT", "/api/v1/alert-rules/" + enc(doc["name"].get<std::string>()), doc));
               return;
             }
             if (!s.name.empty() || flags.any()) {
               throw CtlError(s.file + ": holds a list of rules: give no name and no rule flags");
             }
             const json& rules = doc.is_array() ? doc : doc["rules"];
             if (!rules.is_array()) throw CtlError(s.file + ": rules: must be a list");
             int created = 0, updated = 0;
             for (std::size_t i = 0; i < rules.size(); ++i) {
               const json& r = rules[i];
               std::string where = s.file + ": rules[" + std::to_string(i) + "]";
               if (!r.is_object() || !r.contains("name") || !r["name"].is_string()) {
                 throw CtlError(where + ".name: every rule needs a name");
               }
               auto name = r["name"].get<std::string>();
               try {
                 auto resp = c.raw("PUT", "/api/v1/alert-rules/" + enc(name), r.dump());
                 (resp.status == 201 ? created : updated) += 1;
               } catch (const CtlError& e) {
                 throw CtlError(where + " (" + name + "): " + e.what());
               }
             }
             std::cout << created << " alert rules created, " << updated << " updated\n";
           });
  arule_set->add_option("name", st->name, "Alert rule (with --file: optional)");
  arule_set
      ->add_option("--file", st->file,
                   "JSON or YAML: one rule, or a list (or {rules: [...]}) of rules, each\n"
                   "created or replaced by name")
      ->check(CLI::ExistingFile);
  arule_set->add_flag("--replace-all", st->replace_all,
                      "With a --file list: replace every rule (rules not in the file go)");
  st->alert_rule_flags.add_to(arule_set);
  leaf(arule, "rm", "Delete an alert rule (its alerts resolve)",
       [](ApiClient& c, CtlState& s) {
         c.call("DELETE", "/api/v1/alert-rules/" + enc(s.name));
         std::cout << "deleted alert rule " << s.name << "\n";
       })
      ->add_option("name", st->name, "Alert rule")
      ->required();
  leaf(arule, "prometheus",
       "Print the rules as Prometheus alerting rules (YAML) over the pingmesh_* series",
       [](ApiClient& c, CtlState&) {
         std::cout << c.raw("GET", "/api/v1/alert-rules/prometheus").body;
       });

  auto* alerts = leaf(ctl, "alerts", "List alerts (active ones and the history), newest first",
                      [](ApiClient& c, CtlState& s) {
                        auto list = c.call("GET", s.alert_filters.query())["alerts"];
                        if (s.as_json()) {
                          s.show(list);
                          return;
                        }
                        json rows = json::array();
                        for (const auto& a : list) {
                          auto fp = a.value("fingerprint", std::string());
                          auto bar = fp.find('|');
                          json row = a;
                          row["alert"] =
                              a["labels"].value("alertname", a.value("rule", std::string()));
                          row["severity"] = a["labels"].value("severity", std::string("-"));
                          row["instance"] = bar == std::string::npos ? fp : fp.substr(bar + 1);
                          row["started"] = format_time(a["active_since_ms"]);
                          row["fired"] = format_time(a["fired_ms"]);
                          row["resolved"] = format_time(a["resolved_ms"]);
                          if (a["value"].is_number()) {
                            char buf[32];
                            std::snprintf(buf, sizeof buf, "%.4g", a["value"].get<double>());
                            row["value"] = std::string(buf);
                          }
                          rows.push_back(row);
                        }
                        print_table(rows, kAlertColumns);
                      });
  alerts->add_option("--state", st->alert_filters.state, "pending, firing, resolved or active")
      ->check(CLI::IsMember({"pending", "firing", "resolved", "active"}));
  alerts->add_option("--since", st->alert_filters.since,
                     "Still active at or after: Unix seconds, UTC time (2024-05-01T12:00:00Z)\n"
                     "or an age (15m, 2h, 7d)");
  alerts->add_option("--until", st->alert_filters.until, "Begun at or before (same forms)");
  alerts->add_option("--rule", st->alert_filters.rule,
                     "Rule name (dc-loss, localization/tor_black_hole, ...)");
  alerts->add_option("--scope", st->alert_filters.scope,
                     "global, dc, dc_pair, rack, rack_pair, server, spine_layer, spine, inter_dc");
  alerts->add_option("--severity", st->alert_filters.severity, "critical, warning, ...");
  alerts->add_option("--label", st->alert_filters.labels,
                     "Label filter key=value (repeatable, all must match)");
  alerts->add_option("--limit", st->alert_filters.limit, "Most alerts shown")
      ->capture_default_str();

  auto* verdicts =
      leaf(ctl, "verdicts", "List localized faults (verdicts): active ones, then ended ones",
           [](ApiClient& c, CtlState& s) {
             std::string q = "/api/v1/verdicts?active=" + std::string(s.active ? "true" : "false");
             if (!s.alert_filters.since.empty()) {
               q += "&since=" + std::to_string(parse_when("--since", s.alert_filters.since));
             }
             auto list = c.call("GET", q)["verdicts"];
             if (s.as_json()) {
               s.show(list);
               return;
             }
             json rows = json::array();
             for (const auto& v : list) {
               json row = v;
               row["first"] = format_time(v["first_ms"]);
               row["last"] = format_time(v["last_ms"]);
               rows.push_back(row);
             }
             print_table(rows, kVerdictColumns);
           });
  verdicts->add_flag("--active", st->active, "Only the faults found by the last evaluation");
  verdicts->add_option("--since", st->alert_filters.since,
                       "Seen at or after: Unix seconds, UTC time or an age (15m, 2h)");

  // ---- kill switch, status ----
  auto kill = [](bool stop) {
    return [stop](ApiClient& c, CtlState& s) {
      json body = s.dc.empty() ? json::object() : json{{"dc", s.dc}};
      auto r = c.call("POST", stop ? "/api/v1/stop" : "/api/v1/resume", body);
      if (s.as_json()) {
        s.show(r);
      } else {
        std::cout << "probing " << (stop ? "stopped" : "resumed")
                  << (s.dc.empty() ? " everywhere" : " in " + s.dc) << "\n";
        print_object(r);
      }
    };
  };
  leaf(ctl, "stop", "Stop all probing (kill switch), or in one DC", kill(true))
      ->add_option("--dc", st->dc, "Only this datacenter");
  leaf(ctl, "resume", "Resume probing, or in one DC", kill(false))
      ->add_option("--dc", st->dc, "Only this datacenter");
  leaf(ctl, "status", "Kill-switch state, servers alive, pinglist generation",
       [](ApiClient& c, CtlState& s) { s.show_object(c.call("GET", "/api/v1/status")); });

  // ---- pinglist, import, export ----
  auto* pl = leaf(ctl, "pinglist", "Print a server's pinglist (XML, or JSON with --json)",
                  [](ApiClient& c, CtlState& s) {
                    std::string path = "/api/v1/pinglist/" + enc(s.name);
                    if (s.json_format) path += "?format=json";
                    std::cout << c.raw("GET", path).body;
                  });
  pl->add_option("server", st->name, "Server")->required();
  pl->add_flag("--json", st->json_format, "JSON instead of XML");
  auto* imp = leaf(
      ctl, "import", "Replace the whole topology with a JSON or YAML file",
      [](ApiClient& c, CtlState& s) {
        std::string text = read_file(s.file);
        bool yaml = s.file.ends_with(".yaml") || s.file.ends_with(".yml");
        auto resp =
            c.raw("PUT", std::string("/api/v1/topology") + (s.dry_run ? "?dry_run=true" : ""), text,
                  yaml ? "application/yaml" : "application/json");
        auto r = json::parse(resp.body);
        if (s.as_json()) {
          s.show(r);
        } else {
          std::cout << (s.dry_run ? "valid: " : "imported: ") << r["dcs"] << " DCs, " << r["racks"]
                    << " racks, " << r["servers"] << " servers, " << r["rules"] << " rules\n";
        }
      });
  imp->add_option("file", st->file, "Topology file (.json, .yaml)")
      ->required()
      ->check(CLI::ExistingFile);
  imp->add_flag("--dry-run", st->dry_run, "Only validate");
  leaf(ctl, "export", "Print the whole topology as JSON (importable)",
       [](ApiClient& c, CtlState& s) {
         std::cout
             << c.raw("GET", std::string("/api/v1/topology") + (s.state ? "?state=true" : "")).body
             << "\n";
       })
      ->add_flag("--state", st->state,
                 "Include servers' last_seen_ms/agent_version (not importable)");
}

}  // namespace pingmesh::cmd
