#include "collector/names.hpp"

#include <algorithm>
#include <mutex>

namespace pingmesh::collector {

std::string Names::rack_key(uint32_t dc_id, std::string_view name) {
  std::string k = std::to_string(dc_id);
  k.push_back('/');
  k.append(name);
  return k;
}

void Names::changed(NameKind kind, uint32_t id) { changes_.emplace_back(kind, id); }

uint32_t Names::dc(std::string_view name) {
  {
    std::shared_lock lock(mu_);
    if (auto it = dc_index_.find(name); it != dc_index_.end()) return it->second;
  }
  std::unique_lock lock(mu_);
  auto [it, added] = dc_index_.try_emplace(std::string(name), static_cast<uint32_t>(dcs_.size()));
  if (added) {
    dcs_.push_back({std::string(name), 0, 0});
    changed(NameKind::kDc, it->second);
  }
  return it->second;
}

uint32_t Names::rack(uint32_t dc_id, std::string_view name) {
  std::string key = rack_key(dc_id, name);
  {
    std::shared_lock lock(mu_);
    if (auto it = rack_index_.find(key); it != rack_index_.end()) return it->second;
  }
  std::unique_lock lock(mu_);
  auto [it, added] = rack_index_.try_emplace(key, static_cast<uint32_t>(racks_.size()));
  if (added) {
    racks_.push_back({std::string(name), dc_id, dc_id});
    changed(NameKind::kRack, it->second);
  }
  return it->second;
}

uint32_t Names::server(std::string_view name, uint32_t dc_id, uint32_t rack_id) {
  {
    std::shared_lock lock(mu_);
    if (auto it = server_index_.find(name); it != server_index_.end()) {
      const Entry& e = servers_[it->second];
      if (e.dc == dc_id && e.parent == rack_id) return it->second;
    }
  }
  std::unique_lock lock(mu_);
  auto [it, added] =
      server_index_.try_emplace(std::string(name), static_cast<uint32_t>(servers_.size()));
  if (added) servers_.push_back({std::string(name), rack_id, dc_id});
  Entry& e = servers_[it->second];
  if (added || e.dc != dc_id || e.parent != rack_id) {
    e.dc = dc_id;
    e.parent = rack_id;
    changed(NameKind::kServer, it->second);
  }
  return it->second;
}

std::optional<uint32_t> Names::find_dc(std::string_view name) const {
  std::shared_lock lock(mu_);
  auto it = dc_index_.find(name);
  return it == dc_index_.end() ? std::nullopt : std::optional<uint32_t>(it->second);
}

std::optional<uint32_t> Names::find_rack(uint32_t dc_id, std::string_view name) const {
  std::shared_lock lock(mu_);
  auto it = rack_index_.find(rack_key(dc_id, name));
  return it == rack_index_.end() ? std::nullopt : std::optional<uint32_t>(it->second);
}

std::optional<uint32_t> Names::find_server(std::string_view name) const {
  std::shared_lock lock(mu_);
  auto it = server_index_.find(name);
  return it == server_index_.end() ? std::nullopt : std::optional<uint32_t>(it->second);
}

std::string Names::name_of(const std::vector<Entry>& v, uint32_t id) const {
  std::shared_lock lock(mu_);
  return id > 0 && id < v.size() ? v[id].name : std::string();
}

std::string Names::dc_name(uint32_t id) const { return name_of(dcs_, id); }
std::string Names::rack_name(uint32_t id) const { return name_of(racks_, id); }
std::string Names::server_name(uint32_t id) const { return name_of(servers_, id); }

uint32_t Names::rack_dc(uint32_t id) const {
  std::shared_lock lock(mu_);
  return id > 0 && id < racks_.size() ? racks_[id].dc : 0;
}

uint32_t Names::server_dc(uint32_t id) const {
  std::shared_lock lock(mu_);
  return id > 0 && id < servers_.size() ? servers_[id].dc : 0;
}

uint32_t Names::server_rack(uint32_t id) const {
  std::shared_lock lock(mu_);
  return id > 0 && id < servers_.size() ? servers_[id].parent : 0;
}

std::vector<uint32_t> Names::dcs() const {
  std::shared_lock lock(mu_);
  std::vector<uint32_t> out;
  for (uint32_t i = 1; i < dcs_.size(); ++i) out.push_back(i);
  std::sort(out.begin(), out.end(), [&](uint32_t x, uint32_t y) { return dcs_[x].name < dcs_[y].name; });
  return out;
}

std::vector<uint32_t> Names::racks_of(uint32_t dc_id) const {
  std::shared_lock lock(mu_);
  std::vector<uint32_t> out;
  for (uint32_t i = 1; i < racks_.size(); ++i) {
    if (racks_[i].dc == dc_id) out.push_back(i);
  }
  std::sort(out.begin(), out.end(),
            [&](uint32_t x, uint32_t y) { return racks_[x].name < racks_[y].name; });
  return out;
}

std::vector<uint32_t> Names::servers_of(uint32_t rack_id) const {
  std::shared_lock lock(mu_);
  std::vector<uint32_t> out;
  for (uint32_t i = 1; i < servers_.size(); ++i) {
    if (servers_[i].parent == rack_id) out.push_back(i);
  }
  std::sort(out.begin(), out.end(),
            [&](uint32_t x, uint32_t y) { return servers_[x].name < servers_[y].name; });
  return out;
}

std::vector<NameRow> Names::take_changes() {
  std::unique_lock lock(mu_);
  std::vector<NameRow> rows;
  rows.reserve(changes_.size());
  for (auto [kind, id] : changes_) {
    const auto& v = kind == NameKind::kDc ? dcs_ : kind == NameKind::kRack ? racks_ : servers_;
    rows.push_back({kind, id, v[id].name, v[id].parent, v[id].dc});
  }
  changes_.clear();
  return rows;
}

void Names::load(const std::vector<NameRow>& rows) {
  std::unique_lock lock(mu_);
  for (const auto& r : rows) {
    auto& v = r.kind == NameKind::kDc ? dcs_ : r.kind == NameKind::kRack ? racks_ : servers_;
    if (v.size() <= r.id) v.resize(r.id + 1);
    v[r.id] = {r.name, r.parent, r.dc};
    switch (r.kind) {
      case NameKind::kDc:
        dc_index_[r.name] = r.id;
        break;
      case NameKind::kRack:
        rack_index_[rack_key(r.dc, r.name)] = r.id;
        break;
      case NameKind::kServer:
        server_index_[r.name] = r.id;
        break;
    }
  }
}

}  // namespace pingmesh::collector
