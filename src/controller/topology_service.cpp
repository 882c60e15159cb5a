#include "controller/topology_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <unordered_set>

namespace pingmesh::controller {

using model::ValidationError;

namespace {

int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void not_found(std::string field, const std::string& what) {
  throw ServiceError(ServiceError::Kind::kNotFound, std::move(field), what + " not found");
}

[[noreturn]] void conflict(std::string field, const std::string& what) {
  throw ServiceError(ServiceError::Kind::kConflict, std::move(field), what + " already exists");
}

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

template <class T, class Pred>
std::ptrdiff_t index_of(const std::vector<T>& v, Pred pred) {
  auto it = std::find_if(v.begin(), v.end(), pred);
  return it == v.end() ? -1 : it - v.begin();
}

std::ptrdiff_t dc_index(const model::Topology& t, std::string_view name) {
  return index_of(t.dcs, [&](const model::Datacenter& d) { return d.name == name; });
}

std::ptrdiff_t rack_index(const model::Topology& t, std::string_view dc, std::string_view name) {
  return index_of(t.racks, [&](const model::Rack& r) { return r.dc == dc && r.name == name; });
}

std::ptrdiff_t server_index(const model::Topology& t, std::string_view name) {
  return index_of(t.servers, [&](const model::Server& s) { return s.name == name; });
}

std::ptrdiff_t rule_index(const model::Topology& t, std::string_view name) {
  return index_of(t.rules, [&](const model::Rule& r) { return r.name == name; });
}

bool is_switch_dc(const model::Topology& t, std::string_view dc) {
  auto i = dc_index(t, dc);
  return i >= 0 && t.dcs[i].mode == model::DcMode::kSwitch;
}

std::vector<net::IpAddress> sorted(std::vector<net::IpAddress> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

/// Runs validate_topology and rewrites the field of an error about the object a single-object
/// request changed ("servers[12].addresses[0]" -> "addresses[0]"), so the client sees its own
/// field; errors about other objects keep their full path.
void validate(const model::Topology& t, const std::string& own_prefix) {
  try {
    model::validate_topology(t);
  } catch (const ValidationError& e) {
    const std::string& f = e.field();
    if (own_prefix.empty() || !f.starts_with(own_prefix)) throw;
    std::string rest = f.substr(own_prefix.size());
    if (rest.empty()) throw ValidationError("name", e.message());
    if (rest.front() != '.') throw;
    throw ValidationError(rest.substr(1), e.message());
  }
}

std::string prefix(std::string_view collection, std::ptrdiff_t i) {
  return std::string(collection) + "[" + std::to_string(i) + "]";
}

}  // namespace

std::string place_by_address(const model::Topology& topology, std::string_view dc,
                             const std::vector<net::IpAddress>& addresses) {
  const model::Rack* best = nullptr;
  int best_len = -1;
  for (const auto& r : topology.racks) {
    if (r.dc != dc) continue;
    for (const auto& c : r.cidrs) {
      if (c.prefix_len <= best_len) continue;
      for (const auto& a : addresses) {
        if (c.contains(a)) {
          best = &r;
          best_len = c.prefix_len;
          break;
        }
      }
    }
  }
  return best ? best->name : std::string();
}

TopologyService::TopologyService(topology::TopologyStore* store,
                                 pinglist::PinglistService* pinglists,
                                 TopologyServiceOptions options, metrics::Registry* registry)
    : store_(store), pinglists_(pinglists), options_(std::move(options)) {
  if (!options_.now_ms) options_.now_ms = system_now_ms;
  if (registry) {
    heartbeats_total_ = &registry->counter("pingmesh_controller_heartbeats_total",
                                           "Heartbeats accepted from agents.");
    heartbeats_rejected_ = &registry->counter(
        "pingmesh_controller_heartbeats_rejected_total",
        "Heartbeats refused (unregistered rack-mode server, no switch CIDR holds the address).");
    changes_total_ = &registry->counter("pingmesh_controller_topology_changes_total",
                                        "Accepted topology changes (each writes the store).");
    flush_errors_ = &registry->counter("pingmesh_controller_heartbeat_flush_errors_total",
                                       "Failed batched writes of heartbeats to the store.");
    servers_gauge_ = &registry->gauge("pingmesh_controller_servers", "Servers in the topology.");
    alive_gauge_ = &registry->gauge("pingmesh_controller_servers_alive",
                                    "Servers whose agent sent a heartbeat within the timeout.");
  }
  model::Topology t = store_->load();
  {
    std::lock_guard lock(seen_mu_);
    for (const auto& s : t.servers) {
      seen_[s.name] = LastSeen{s.last_seen_ms, s.agent_version, false};
    }
  }
  std::lock_guard lock(write_mu_);
  publish(std::move(t));
  regenerate_locked();
  if (options_.background) background_ = std::thread([this] { run_background(); });
}

TopologyService::~TopologyService() { stop(); }

void TopologyService::stop() {
  {
    std::lock_guard lock(bg_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  bg_cv_.notify_all();
  if (background_.joinable()) background_.join();
  flush_heartbeats();
}

void TopologyService::run_background() {
  auto last_flush = std::chrono::steady_clock::now();
  std::unique_lock lock(bg_mu_);
  while (!stopping_) {
    bg_cv_.wait_for(lock, options_.tick_period, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    try {
      tick();
      if (std::chrono::steady_clock::now() - last_flush >= options_.heartbeat_flush_period) {
        flush_heartbeats();
        last_flush = std::chrono::steady_clock::now();
      }
    } catch (const std::exception& e) {
      spdlog::error("controller: background check failed: {}", e.what());
    }
    lock.lock();
  }
}

std::shared_ptr<const TopologyService::Snapshot> TopologyService::current() const {
  std::lock_guard lock(snapshot_mu_);
  return current_;
}

std::shared_ptr<const model::Topology> TopologyService::snapshot() const {
  return current()->topology;
}

model::Topology TopologyService::copy_topology() const { return *current()->topology; }

void TopologyService::publish(model::Topology next) {
  auto snap = std::make_shared<Snapshot>();
  snap->server_index.reserve(next.servers.size());
  for (std::size_t i = 0; i < next.servers.size(); ++i) {
    snap->server_index.emplace(next.servers[i].name, i);
    for (const auto& a : next.servers[i].addresses) snap->address_index.emplace(a, i);
  }
  snap->topology = std::make_shared<const model::Topology>(std::move(next));
  if (servers_gauge_) servers_gauge_->set(static_cast<double>(snap->topology->servers.size()));
  std::lock_guard lock(snapshot_mu_);
  current_ = std::move(snap);
}

void TopologyService::regenerate_locked() {
  regenerate_pending_ = false;
  auto topo = current()->topology;
  auto alive = liveness(*topo);
  if (alive_gauge_)
    alive_gauge_->set(static_cast<double>(std::count(alive.begin(), alive.end(), true)));
  if (pinglists_) pinglists_->update(topo, alive);
}

bool TopologyService::tick() {
  std::lock_guard lock(write_mu_);
  if (regenerate_pending_) {
    regenerate_locked();
    return pinglists_ != nullptr;
  }
  auto topo = current()->topology;
  auto alive = liveness(*topo);
  if (alive_gauge_)
    alive_gauge_->set(static_cast<double>(std::count(alive.begin(), alive.end(), true)));
  return pinglists_ ? pinglists_->tick(alive) : false;
}

void TopologyService::commit(model::Topology next, const std::function<void()>& write,
                             bool regenerate_now) {
  write();
  publish(std::move(next));
  if (changes_total_) changes_total_->inc();
  if (regenerate_now) {
    regenerate_locked();
  } else {
    regenerate_pending_ = true;
  }
}

model::Server TopologyService::stateful(const model::Server& s) const {
  model::Server out = s;
  std::lock_guard lock(seen_mu_);
  auto it = seen_.find(s.name);
  if (it != seen_.end()) {
    out.last_seen_ms = it->second.last_seen_ms;
    out.agent_version = it->second.agent_version;
  } else {
    out.last_seen_ms = 0;
    out.agent_version.clear();
  }
  return out;
}

model::Server TopologyService::with_state(const model::Server& server) const {
  return stateful(server);
}

bool TopologyService::alive(const model::Server& server) const {
  auto topo = current()->topology;
  int64_t timeout_ms = int64_t{topo->settings.liveness_timeout_s} * 1000;
  int64_t now_ms = now();
  std::lock_guard lock(seen_mu_);
  auto it = seen_.find(server.name);
  int64_t last = it == seen_.end() ? 0 : it->second.last_seen_ms;
  return last > 0 && now_ms - last <= timeout_ms;
}

pinglist::Liveness TopologyService::liveness(const model::Topology& topology) const {
  pinglist::Liveness alive(topology.servers.size(), false);
  int64_t timeout_ms = int64_t{topology.settings.liveness_timeout_s} * 1000;
  int64_t now_ms = now();
  std::lock_guard lock(seen_mu_);
  for (std::size_t i = 0; i < topology.servers.size(); ++i) {
    auto it = seen_.find(topology.servers[i].name);
    int64_t last = it == seen_.end() ? 0 : it->second.last_seen_ms;
    alive[i] = last > 0 && now_ms - last <= timeout_ms;
  }
  return alive;
}

std::vector<model::Server> TopologyService::replace_servers_of(model::Topology& t,
                                                               std::string_view dc) const {
  std::vector<model::Server> changed;
  if (!is_switch_dc(t, dc)) return changed;
  for (auto& s : t.servers) {
    if (s.dc != dc) continue;
    auto rack = place_by_address(t, dc, s.addresses);
    if (rack != s.rack) {
      s.rack = rack;
      changed.push_back(stateful(s));
    }
  }
  return changed;
}

// ---- datacenters ----

model::Datacenter TopologyService::get_dc(std::string_view name) const {
  auto topo = snapshot();
  auto i = dc_index(*topo, name);
  if (i < 0) not_found("dc", "datacenter " + in_quotes(name));
  return topo->dcs[i];
}

model::Datacenter TopologyService::create_dc(const model::Datacenter& dc) {
  std::lock_guard lock(write_mu_);
  auto t = copy_topology();
  if (dc_index(t, dc.name) >= 0) conflict("name", "datacenter " + in_quotes(dc.name));
  t.dcs.push_back(dc);
  validate(t, prefix("dcs", static_cast<std::ptrdiff_t>(t.dcs.size()) - 1));
  commit(std::move(t), [&] { store_->upsert_dc(dc); });
  return dc;
}

model::Datacenter TopologyService::replace_dc(std::string_view name, const model::Datacenter& dc) {
  std::lock_guard lock(write_mu_);
  return replace_dc_locked(name, dc);
}

model::Datacenter TopologyService::replace_dc_locked(std::string_view name,
                                                     const model::Datacenter& dc) {
  auto t = copy_topology();
  auto i = dc_index(t, name);
  if (i < 0) not_found("dc", "datacenter " + in_quotes(name));
  if (dc.name != name) {
    throw ValidationError(
        "name", "renaming a datacenter is not supported (path says " + in_quotes(name) + ")");
  }
  t.dcs[i] = dc;
  auto moved = replace_servers_of(t, name);
  validate(t, prefix("dcs", i));
  commit(std::move(t), [&] {
    store_->upsert_dc(dc);
    if (!moved.empty()) store_->upsert_servers(moved);
  });
  return dc;
}

model::Datacenter TopologyService::patch_dc(std::string_view name, const nlohmann::json& patch) {
  // Decoded under the write lock, so concurrent patches of one object do not lose updates.
  std::lock_guard lock(write_mu_);
  model::Datacenter base = get_dc(name);
  return replace_dc_locked(name, model::dc_from_json(patch, options_.limits, &base));
}

void TopologyService::delete_dc(std::string_view name) {
  std::lock_guard lock(write_mu_);
  auto t = copy_topology();
  auto i = dc_index(t, name);
  if (i < 0) not_found("dc", "datacenter " + in_quotes(name));
  t.dcs.erase(t.dcs.begin() + i);
  std::erase_if(t.racks, [&](const model::Rack& r) { return r.dc == name; });
  std::vector<std::string> gone;
  std::erase_if(t.servers, [&](const model::Server& s) {
    if (s.dc != name) return false;
    gone.push_back(s.name);
    return true;
  });
  std::erase_if(t.rules,
                [&](const model::Rule& r) { return r.src_dc == name || r.dst_dc == name; });
  validate(t, "");
  commit(std::move(t), [&] { store_->delete_dc(name); });
  std::lock_guard seen_lock(seen_mu_);
  for (const auto& n : gone) seen_.erase(n);
}

// ---- racks ----

std::vector<model::Rack> TopologyService::list_racks(std::string_view dc) const {
  auto topo = snapshot();
  if (dc_index(*topo, dc) < 0) not_found("dc", "datacenter " + in_quotes(dc));
  std::vector<model::Rack> out;
  for (const auto& r : topo->racks) {
    if (r.dc == dc) out.push_back(r);
  }
  return out;
}

model::Rack TopologyService::get_rack(std::string_view dc, std::string_view name) const {
  auto topo = snapshot();
  if (dc_index(*topo, dc) < 0) not_found("dc", "datacenter " + in_quotes(dc));
  auto i = rack_index(*topo, dc, name);
  if (i < 0) not_found("rack", "rack " + in_quotes(name) + " in datacenter " + in_quotes(dc));
  return topo->racks[i];
}

model::Rack TopologyService::create_rack(const model::Rack& rack) {
  std::lock_guard lock(write_mu_);
  auto t = copy_topology();
  if (dc_index(t, rack.dc) < 0) not_found("dc", "datacenter " + in_quotes(rack.dc));
  if (rack_index(t, rack.dc, rack.name) >= 0) {
    conflict("name", "rack " + in_quotes(rack.name) + " in datacenter " + in_quotes(rack.dc));
  }
  t.racks.push_back(rack);
  auto moved = replace_servers_of(t, rack.dc);
  validate(t, prefix("racks", static_cast<std::ptrdiff_t>(t.racks.size()) - 1));
  commit(std::move(t), [&] {
    store_->upsert_rack(rack);
    if (!moved.empty()) store_->upsert_servers(moved);
  });
  return rack;
}

model::Rack TopologyService::replace_rack(std::string_view dc, std::string_view name,
                                          const model::Rack& rack) {
  std::lock_guard lock(write_mu_);
  return replace_rack_locked(dc, name, rack);
}

model::Rack TopologyService::replace_rack_locked(std::string_view dc, std::string_view name,
                                                 const model::Rack& rack) {
  auto t = copy_topology();
  if (dc_index(t, dc) < 0) not_found("dc", "datacenter " + in_quotes(dc));
  auto i = rack_index(t, dc, name);
  if (i < 0) not_found("rack", "rack " + in_quotes(name) + " in datacenter " + in_quotes(dc));
  if (rack.name != name) throw ValidationError("name", "renaming a rack is not supported");
  if (rack.dc != dc)
    throw ValidationError("dc", "moving a rack to another datacenter is not supported");
  t.racks[i] = rack;
  auto moved = replace_servers_of(t, dc);
  validate(t, prefix("racks", i));
  commit(std::move(t), [&] {
    store_->upsert_rack(rack);
    if (!moved.empty()) store_->upsert_servers(moved);
  });
  return rack;
}

model::Rack TopologyService::patch_rack(std::string_view dc, std::string_view name,
                                        const nlohmann::json& patch) {
  std::lock_guard lock(write_mu_);
  model::Rack base = get_rack(dc, name);
  return replace_rack_locked(dc, name, model::rack_from_json(patch, &base));
}

void TopologyService::delete_rack(std::string_view dc, std::string_view name) {
  std::lock_guard lock(write_mu_);
  auto t = copy_topology();
  if (dc_index(t, dc) < 0) not_found("dc", "datacenter " + in_quotes(dc));
  auto i = rack_index(t, dc, name);
  if (i < 0) not_found("rack", "rack " + in_quotes(name) + " in datacenter " + in_quotes(dc));
  t.racks.erase(t.racks.begin() + i);
  std::vector<model::Server> moved;
  std::vector<std::string> gone;
  if (is_switch_dc(t, dc)) {
    moved = replace_servers_of(t, dc);
  } else {
    std::erase_if(t.servers, [&](const model::Server& s) {
      if (s.dc != dc || s.rack != name) return false;
      gone.push_back(s.name);
      return true;
    });
  }
  validate(t, "");
  commit(std::move(t), [&] {
    // Re-place first: the store may delete servers still filed under the deleted switch.
    if (!moved.empty()) store_->upsert_servers(moved);
    store_->delete_rack(dc, name);
  });
  std::lock_guard seen_lock(seen_mu_);
  for (const auto& n : gone) seen_.erase(n);
}

// ---- servers ----

model::Server TopologyService::get_server(std::string_view name) const {
  auto snap = current();
  auto it = snap->server_index.find(std::string(name));
  if (it == snap->server_index.end()) not_found("server", "server " + in_quotes(name));
  return stateful(snap->topology->servers[it->second]);
}

model::Server TopologyService::create_server(const model::Server& server) {
  std::lock_guard lock(write_mu_);
  auto t = copy_topology();
  if (server_index(t, server.name) >= 0) conflict("name", "server " + in_quotes(server.name));
  model::Server s = server;
  s.last_seen_ms = 0;
  s.agent_version.clear();
  if (s.rack.empty() && is_switch_dc(t, s.dc)) s.rack = place_by_address(t, s.dc, s.addresses);
  t.servers.push_back(s);
  validate(t, prefix("servers", static_cast<std::ptrdiff_t>(t.servers.size()) - 1));
  {
    std::lock_guard seen_lock(seen_mu_);
    seen_.erase(s.name);
  }
  commit(std::move(t), [&] { store_->upsert_server(s); });
  return s;
}

BulkResult TopologyService::upsert_servers(const std::vector<model::Server>& servers) {
  std::lock_guard lock(write_mu_);
  auto t = copy_topology();
  BulkResult result;
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < t.servers.size(); ++i) index.emplace(t.servers[i].name, i);
  std::unordered_set<std::string> seen_names;
  std::vector<std::pair<std::string, std::string>> prefixes;  // topology prefix -> input prefix
  std::vector<model::Server> rows;
  rows.reserve(servers.size());
  for (std::size_t i = 0; i < servers.size(); ++i) {
    std::string in = "[" + std::to_string(i) + "]";
    if (!seen_names.insert(servers[i].name).second) {
      throw ValidationError(in + ".name", "server " + in_quotes(servers[i].name) +
                                              " appears more than once in this request");
    }
    model::Server s = servers[i];
    if (s.rack.empty() && is_switch_dc(t, s.dc)) s.rack = place_by_address(t, s.dc, s.addresses);
    auto it = index.find(s.name);
    std::size_t at;
    if (it == index.end()) {
      at = t.servers.size();
      t.servers.push_back(s);
      ++result.created;
    } else {
      at = it->second;
      t.servers[at] = s;
      ++result.updated;
    }
    prefixes.emplace_back(prefix("servers", static_cast<std::ptrdiff_t>(at)), in);
    rows.push_back(stateful(s));
  }
  try {
    model::validate_topology(t);
  } catch (const ValidationError& e) {
    for (const auto& [from, to] : prefixes) {
      const auto& f = e.field();
      if (f.starts_with(from) &&
          (f.size() == from.size() || f[from.size()] == '.' || f[from.size()] == '[')) {
        throw ValidationError(to + f.substr(from.size()), e.message());
      }
    }
    throw;
  }
  commit(std::move(t), [&] { store_->upsert_servers(rows); });
  return result;
}

model::Server TopologyService::replace_server(std::string_view name, const model::Server& server) {
  std::lock_guard lock(write_mu_);
  return replace_server_locked(name, server);
}

model::Server TopologyService::replace_server_locked(std::string_view name,
                                                     const model::Server& server) {
  auto t = copy_topology();
  auto i = server_index(t, name);
  if (i < 0) not_found("server", "server " + in_quotes(name));
  if (server.name != name) throw ValidationError("name", "renaming a server is not supported");
  model::Server s = server;
  if (s.rack.empty() && is_switch_dc(t, s.dc)) s.rack = place_by_address(t, s.dc, s.addresses);
  t.servers[i] = s;
  validate(t, prefix("servers", i));
  s = stateful(s);
  commit(std::move(t), [&] { store_->upsert_server(s); });
  return s;
}

model::Server TopologyService::patch_server(std::string_view name, const nlohmann::json& patch) {
  std::lock_guard lock(write_mu_);
  model::Server base = get_server(name);
  auto next = model::server_from_json(patch, &base);
  // A patch that moves the server to another switch-mode DC without naming a rack re-places it.
  if (next.dc != base.dc && next.rack == base.rack) next.rack.clear();
  return replace_server_locked(name, next);
}

void TopologyService::delete_server(std::string_view name) {
  std::lock_guard lock(write_mu_);
  auto t = copy_topology();
  auto i = server_index(t, name);
  if (i < 0) not_found("server", "server " + in_quotes(name));
  t.servers.erase(t.servers.begin() + i);
  commit(std::move(t), [&] { store_->delete_server(name); });
  std::lock_guard seen_lock(seen_mu_);
  seen_.erase(std::string(name));
}

// ---- rules ----

model::Rule TopologyService::get_rule(std::string_view name) const {
  auto topo = snapshot();
  auto i = rule_index(*topo, name);
  if (i < 0) not_found("rule", "rule " + in_quotes(name));
  return topo->rules[i];
}

model::Rule TopologyService::create_rule(const model::Rule& rule) {
  std::lock_guard lock(write_mu_);
  auto t = copy_topology();
  if (rule_index(t, rule.name) >= 0) conflict("name", "rule " + in_quotes(rule.name));
  t.rules.push_back(rule);
  validate(t, prefix("rules", static_cast<std::ptrdiff_t>(t.rules.size()) - 1));
  commit(std::move(t), [&] { store_->upsert_rule(rule); });
  return rule;
}

model::Rule TopologyService::replace_rule(std::string_view name, const model::Rule& rule) {
  std::lock_guard lock(write_mu_);
  return replace_rule_locked(name, rule);
}

model::Rule TopologyService::replace_rule_locked(std::string_view name, const model::Rule& rule) {
  auto t = copy_topology();
  auto i = rule_index(t, name);
  if (i < 0) not_found("rule", "rule " + in_quotes(name));
  if (rule.name != name) throw ValidationError("name", "renaming a rule is not supported");
  t.rules[i] = rule;
  validate(t, prefix("rules", i));
  commit(std::move(t), [&] { store_->upsert_rule(rule); });
  return rule;
}

model::Rule TopologyService::patch_rule(std::string_view name, const nlohmann::json& patch) {
  std::lock_guard lock(write_mu_);
  model::Rule base = get_rule(name);
  return replace_rule_locked(name, model::rule_from_json(patch, options_.limits, &base));
}

void TopologyService::delete_rule(std::string_view name) {
  std::lock_guard lock(write_mu_);
  auto t = copy_topology();
  auto i = rule_index(t, name);
  if (i < 0) not_found("rule", "rule " + in_quotes(name));
  t.rules.erase(t.rules.begin() + i);
  commit(std::move(t), [&] { store_->delete_rule(name); });
}

// ---- settings, kill switch, status ----

model::Settings TopologyService::patch_settings(const nlohmann::json& patch) {
  std::lock_guard lock(write_mu_);
  auto t = copy_topology();
  t.settings = model::settings_from_json(patch, &t.settings);
  validate(t, "");
  auto settings = t.settings;
  commit(std::move(t), [&] { store_->put_settings(settings); });
  return settings;
}

void TopologyService::set_stopped(std::string_view dc, bool stopped) {
  std::lock_guard lock(write_mu_);
  auto t = copy_topology();
  if (dc.empty()) {
    if (t.settings.stopped == stopped) return;
    t.settings.stopped = stopped;
    auto settings = t.settings;
    commit(std::move(t), [&] { store_->put_settings(settings); });
    spdlog::warn("controller: probing {} everywhere (kill switch)",
                 stopped ? "STOPPED" : "resumed");
    return;
  }
  auto i = dc_index(t, dc);
  if (i < 0) not_found("dc", "datacenter " + in_quotes(dc));
  if (t.dcs[i].stopped == stopped) return;
  t.dcs[i].stopped = stopped;
  auto d = t.dcs[i];
  commit(std::move(t), [&] { store_->upsert_dc(d); });
  spdlog::warn("controller: probing {} in datacenter {} (kill switch)",
               stopped ? "STOPPED" : "resumed", dc);
}

Status TopologyService::status() const {
  auto topo = snapshot();
  Status s;
  s.stopped = topo->settings.stopped;
  for (const auto& d : topo->dcs) {
    if (d.stopped) s.stopped_dcs.push_back(d.name);
  }
  s.servers = topo->servers.size();
  auto alive = liveness(*topo);
  s.alive = static_cast<std::size_t>(std::count(alive.begin(), alive.end(), true));
  s.generation = pinglists_ ? pinglists_->generation() : 0;
  return s;
}

void TopologyService::import(const model::Topology& topology, bool dry_run) {
  model::validate_topology(topology);
  if (dry_run) return;
  std::lock_guard lock(write_mu_);
  model::Topology t = topology;
  for (auto& s : t.servers) s = stateful(s);
  commit(t, [&] { store_->replace_all(t); });
  std::unordered_set<std::string> names;
  for (const auto& s : t.servers) names.insert(s.name);
  std::lock_guard seen_lock(seen_mu_);
  std::erase_if(seen_, [&](const auto& kv) { return !names.contains(kv.first); });
}

// ---- heartbeats ----

HeartbeatResult TopologyService::heartbeat(const Heartbeat& hb) {
  auto reject = [&] {
    if (heartbeats_rejected_) heartbeats_rejected_->inc();
  };
  if (!model::valid_name(hb.name)) {
    reject();
    throw ValidationError("name", "must be 1..64 characters of [A-Za-z0-9._-]");
  }
  auto find = [&](const Snapshot& snap) -> const model::Server* {
    auto it = snap.server_index.find(hb.name);
    if (it != snap.server_index.end()) return &snap.topology->servers[it->second];
    for (const auto& a : hb.addresses) {
      auto at = snap.address_index.find(a);
      if (at != snap.address_index.end()) return &snap.topology->servers[at->second];
    }
    return nullptr;
  };
  // Does a known server need a config update (switch mode: addresses or hostname changed)?
  auto needs_update = [&](const model::Topology& t, const model::Server& s) {
    if (!is_switch_dc(t, s.dc)) return false;
    if (!hb.addresses.empty() && sorted(hb.addresses) != sorted(s.addresses)) return true;
    return !hb.hostname.empty() && hb.hostname != s.hostname;
  };

  HeartbeatResult result;
  auto snap = current();
  const model::Server* known = find(*snap);
  if (known == nullptr || needs_update(*snap->topology, *known)) {
    std::lock_guard lock(write_mu_);
    snap = current();  // another request may have changed it meanwhile
    known = find(*snap);
    auto t = copy_topology();
    if (known != nullptr) {
      if (needs_update(t, *known)) {
        auto i = server_index(t, known->name);
        model::Server& s = t.servers[i];
        if (!hb.addresses.empty()) s.addresses = hb.addresses;
        if (!hb.hostname.empty()) s.hostname = hb.hostname;
        s.rack = place_by_address(t, s.dc, s.addresses);
        try {
          validate(t, prefix("servers", i));
        } catch (...) {
          reject();
          throw;
        }
        auto row = stateful(s);
        commit(
            std::move(t), [&] { store_->upsert_server(row); }, false);
        spdlog::info("controller: server {} now at {} (dc {}, switch {})", row.name,
                     row.addresses.empty() ? "-" : row.addresses.front().to_string(), row.dc,
                     row.rack.empty() ? "-" : row.rack);
        result.changed = true;
        snap = current();
        known = find(*snap);
      }
    } else {
      if (!hb.dc_hint.empty() && dc_index(t, hb.dc_hint) < 0) {
        reject();
        throw ValidationError("dc", "unknown datacenter " + in_quotes(hb.dc_hint));
      }
      bool any_switch_dc = false;
      model::Server s;
      for (const auto& d : t.dcs) {
        if (d.mode != model::DcMode::kSwitch) continue;
        if (!hb.dc_hint.empty() && d.name != hb.dc_hint) continue;
        any_switch_dc = true;
        auto rack = place_by_address(t, d.name, hb.addresses);
        if (!rack.empty()) {
          s.dc = d.name;
          s.rack = rack;
          break;
        }
      }
      if (!any_switch_dc) {
        reject();
        throw ServiceError(ServiceError::Kind::kNotFound, "name",
                           "server " + in_quotes(hb.name) +
                               " is not registered (rack-mode datacenters need servers registered "
                               "through the API or an import)");
      }
      if (s.dc.empty()) {
        reject();
        if (hb.addresses.empty()) {
          throw ValidationError("addresses", "required to place an unknown server by address");
        }
        throw ValidationError("addresses",
                              "no switch CIDR of a switch-mode datacenter holds any of these "
                              "addresses, and server " +
                                  in_quotes(hb.name) + " is not registered");
      }
      s.name = hb.name;
      s.addresses = hb.addresses;
      s.hostname = hb.hostname;
      t.servers.push_back(s);
      try {
        validate(t, prefix("servers", static_cast<std::ptrdiff_t>(t.servers.size()) - 1));
      } catch (...) {
        reject();
        throw;
      }
      {
        std::lock_guard seen_lock(seen_mu_);
        seen_[s.name] = LastSeen{now(), hb.version, true};
      }
      auto row = stateful(s);
      commit(
          std::move(t), [&] { store_->upsert_server(row); }, false);
      spdlog::info("controller: new server {} placed in dc {} under switch {}", s.name, s.dc,
                   s.rack);
      result.created = true;
      snap = current();
      known = find(*snap);
    }
  }
  if (known == nullptr) {
    reject();
    not_found("name", "server " + in_quotes(hb.name));
  }
  result.server = known->name;
  result.dc = known->dc;
  result.rack = known->rack;
  {
    std::lock_guard lock(seen_mu_);
    auto& e = seen_[known->name];
    e.last_seen_ms = now();
    e.agent_version = hb.version;
    e.dirty = true;
  }
  if (heartbeats_total_) heartbeats_total_->inc();
  return result;
}

std::size_t TopologyService::flush_heartbeats() {
  std::vector<topology::HeartbeatRecord> records;
  {
    std::lock_guard lock(seen_mu_);
    for (auto& [name, e] : seen_) {
      if (!e.dirty) continue;
      records.push_back({name, e.last_seen_ms, e.agent_version});
      e.dirty = false;
    }
  }
  if (records.empty()) return 0;
  try {
    std::lock_guard lock(write_mu_);
    store_->record_heartbeats(records);
  } catch (const std::exception& e) {
    if (flush_errors_) flush_errors_->inc();
    spdlog::error("controller: writing {} heartbeats to the store failed (will retry): {}",
                  records.size(), e.what());
    std::lock_guard lock(seen_mu_);
    for (const auto& r : records) {
      auto it = seen_.find(r.name);
      if (it != seen_.end()) it->second.dirty = true;
    }
    return 0;
  }
  return records.size();
}

}  // namespace pingmesh::controller
