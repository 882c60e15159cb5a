#include "pinglist/generator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "common/hash.hpp"

namespace pingmesh::pinglist {

using model::Level;

uint32_t choose_count(double ratio, std::size_t n) {
  if (n == 0 || ratio <= 0) return 0;
  // The epsilon keeps 0.3 * 10 from becoming 4 through floating-point noise.
  auto k = static_cast<std::size_t>(std::ceil(ratio * static_cast<double>(n) - 1e-9));
  return static_cast<uint32_t>(std::clamp<std::size_t>(k, 1, n));
}

Liveness liveness_at(const model::Topology& topology, int64_t now_ms) {
  const int64_t timeout_ms = static_cast<int64_t>(topology.settings.liveness_timeout_s) * 1000;
  Liveness alive(topology.servers.size());
  for (std::size_t i = 0; i < topology.servers.size(); ++i) {
    const auto seen = topology.servers[i].last_seen_ms;
    alive[i] = seen > 0 && now_ms - seen <= timeout_ms;
  }
  return alive;
}

namespace {

/// Candidates ranked by a stable hash; `alive(c)` says whether a candidate can be chosen.
/// The first k ranks are the slots. A dead candidate's slot is given to the next live candidate
/// ranked below k, so when a chosen member dies only its slot changes hands and every other
/// choice (and slot position) stays as it was. Slots no live candidate can fill are dropped.
template <typename Alive>
std::vector<uint32_t> fill_slots(const std::vector<std::pair<uint64_t, uint32_t>>& ranked,
                                 uint32_t k, Alive alive) {
  std::vector<uint32_t> slots;
  slots.reserve(k);
  std::size_t next = k;
  for (std::size_t pos = 0; pos < k && pos < ranked.size(); ++pos) {
    uint32_t c = ranked[pos].second;
    if (alive(c)) {
      slots.push_back(c);
      continue;
    }
    while (next < ranked.size() && !alive(ranked[next].second)) ++next;
    if (next < ranked.size()) slots.push_back(ranked[next++].second);
  }
  return slots;
}

/// Ranks candidates (name, id) by hash64(name, seed), ties broken by name.
std::vector<std::pair<uint64_t, uint32_t>> rank(
    const std::vector<std::pair<std::string_view, uint32_t>>& candidates, uint64_t seed) {
  std::vector<std::tuple<uint64_t, std::string_view, uint32_t>> tmp;
  tmp.reserve(candidates.size());
  for (const auto& [name, id] : candidates) tmp.emplace_back(hash::hash64(name, seed), name, id);
  std::sort(tmp.begin(), tmp.end());
  std::vector<std::pair<uint64_t, uint32_t>> out;
  out.reserve(tmp.size());
  for (const auto& [h, name, id] : tmp) out.emplace_back(h, id);
  return out;
}

uint64_t seed_of(std::string_view kind, std::string_view a, std::string_view b = {}) {
  return hash::hash64(fmt::format("{}/{}/{}", kind, a, b), 0x70696e676d657368ULL);
}

uint64_t probe_set_hash(const std::vector<ResolvedProbe>& set) {
  uint64_t h = 0x5e7;
  for (const auto& p : set) {
    h = hash::combine(h, static_cast<uint64_t>(p.protocol) | (uint64_t{p.port} << 8) |
                             (uint64_t{p.dscp} << 24) | (uint64_t{p.payload_bytes} << 32));
    h = hash::combine(h, p.interval_ms);
  }
  return h;
}

/// Resolves the probe kinds for one (level, source DC, destination DC) from the rules.
class ProbeResolver {
 public:
  ProbeResolver(const model::Topology& t, Plan* plan) : plan_(plan) {
    for (const auto& r : t.rules) rules_.push_back(&r);
    std::sort(rules_.begin(), rules_.end(),
              [](const model::Rule* a, const model::Rule* b) { return a->name < b->name; });
    plan_->probe_sets.emplace_back();  // index 0: nothing to probe
  }

  uint32_t resolve(Level level, const model::Datacenter& src, const model::Datacenter& dst) {
    std::vector<const model::Rule*> specific, wildcard;
    for (const auto* r : rules_) {
      if (r->level != level) continue;
      bool any_src = r->src_dc == "*";
      if (level != Level::kInterDc) {
        if (any_src) {
          wildcard.push_back(r);
        } else if (r->src_dc == src.name) {
          specific.push_back(r);
        }
        continue;
      }
      bool any_dst = r->dst_dc == "*";
      auto fits = [&](const std::string& s, const std::string& d) {
        return (s == "*" || s == src.name) && (d == "*" || d == dst.name);
      };
      bool matches = fits(r->src_dc, r->dst_dc) || (r->symmetric && fits(r->dst_dc, r->src_dc));
      if (!matches) continue;
      (any_src && any_dst ? wildcard : specific).push_back(r);
    }
    std::vector<const model::Rule*> chosen;
    bool disabled = std::any_of(specific.begin(), specific.end(), [](const model::Rule* r) {
      return r->action == model::RuleAction::kDisable;
    });
    bool replaced = std::any_of(specific.begin(), specific.end(), [](const model::Rule* r) {
      return r->action == model::RuleAction::kReplace;
    });
    if (!disabled) {
      if (!replaced) {
        bool wildcard_off = std::any_of(wildcard.begin(), wildcard.end(), [](auto* r) {
          return r->action == model::RuleAction::kDisable;
        });
        if (!wildcard_off) chosen = wildcard;
      }
      for (const auto* r : specific) chosen.push_back(r);
    }
    std::vector<ResolvedProbe> set;
    for (const auto* r : chosen) {
      const auto& specs = r->probes.empty() ? src.probes : r->probes;
      for (const auto& spec : specs) {
        ResolvedProbe p;
        p.protocol = spec.protocol;
        p.port = spec.protocol == model::Protocol::kIcmp ? 0 : spec.port;
        p.dscp = spec.dscp.value_or(src.dscp);
        p.interval_ms = r->interval_ms.value_or(src.interval_ms);
        p.payload_bytes = r->payload_bytes.value_or(src.payload_bytes);
        bool dup = std::any_of(set.begin(), set.end(), [&](const ResolvedProbe& q) {
          return q.protocol == p.protocol && q.port == p.port && q.dscp == p.dscp;
        });
        if (!dup) set.push_back(p);
      }
    }
    if (set.empty()) return 0;
    auto it = interned_.find(set_key(set));
    if (it != interned_.end()) return it->second;
    auto id = static_cast<uint32_t>(plan_->probe_sets.size());
    plan_->probe_sets.push_back(set);
    interned_.emplace(set_key(set), id);
    return id;
  }

 private:
  static std::string set_key(const std::vector<ResolvedProbe>& set) {
    std::string k;
    for (const auto& p : set) {
      k += fmt::format("{}:{}:{}:{}:{};", static_cast<int>(p.protocol), p.port, p.dscp,
                       p.interval_ms, p.payload_bytes);
    }
    return k;
  }
  Plan* plan_;
  std::vector<const model::Rule*> rules_;
  std::map<std::string, uint32_t> interned_;
};

bool family_enabled(const model::Datacenter& dc, const net::IpAddress& a) {
  return a.is_v4() ? dc.ipv4 : dc.ipv6;
}

bool has_family(const model::Server& s, uint8_t family) {
  return std::any_of(s.addresses.begin(), s.addresses.end(),
                     [family](const net::IpAddress& a) { return a.family == family; });
}

/// Number of rendered entries for one compact entry of `src`.
uint32_t rendered_count(const Plan& plan, const model::Server& src, const model::Datacenter& dc,
                        const CompactEntry& e) {
  const auto& target = *plan.servers[e.target];
  uint32_t addrs = 0;
  for (const auto& a : target.addresses) {
    if (family_enabled(dc, a) && has_family(src, a.family)) ++addrs;
  }
  return addrs * static_cast<uint32_t>(plan.probe_sets[e.probes].size());
}

}  // namespace

void entries_of(const Plan& plan, uint32_t i, std::vector<CompactEntry>* out) {
  out->clear();
  const int32_t d = plan.server_dc[i];
  const int32_t r = plan.server_rack[i];
  const int32_t s = plan.server_slot[i];
  if (d < 0 || r < 0 || s < 0) return;
  const DcPlan& dp = plan.dcs[static_cast<std::size_t>(d)];
  if (dp.stopped) return;
  const ChosenRack& rack = dp.racks[static_cast<std::size_t>(r)];
  if (dp.probes_intra_rack != 0) {
    for (uint32_t peer : rack.slots) {
      if (peer != i) {
        out->push_back({peer, static_cast<uint16_t>(dp.probes_intra_rack), Level::kIntraRack});
      }
    }
  }
  if (dp.probes_intra_dc != 0) {
    for (std::size_t y = 0; y < dp.racks.size(); ++y) {
      if (static_cast<int32_t>(y) == r || dp.racks[y].slots.empty()) continue;
      const auto& slots = dp.racks[y].slots;
      uint32_t peer = slots[static_cast<std::size_t>(s) % slots.size()];
      out->push_back({peer, static_cast<uint16_t>(dp.probes_intra_dc), Level::kIntraDc});
    }
  }
  if (plan.is_rep[i]) {
    for (std::size_t e = 0; e < plan.dcs.size(); ++e) {
      if (static_cast<int32_t>(e) == d || plan.dcs[e].stopped) continue;
      uint32_t set = dp.probes_inter_dc[e];
      if (set == 0) continue;
      for (uint32_t peer : plan.dcs[e].reps) {
        out->push_back({peer, static_cast<uint16_t>(set), Level::kInterDc});
      }
    }
  }
  std::sort(out->begin(), out->end(), [](const CompactEntry& a, const CompactEntry& b) {
    return a.level != b.level ? a.level < b.level : a.target < b.target;
  });
  const uint32_t cap = dp.dc->max_peers;
  if (cap == 0 || out->size() <= cap) return;
  // Over the cap: keep the wider levels first (inter-DC, then intra-DC, then intra-rack: each of
  // their probes covers more of the fabric), and inside the level that overflows keep the targets
  // ranked first by a stable hash of (source, target), so the choice is deterministic and stable.
  std::vector<CompactEntry> kept;
  kept.reserve(cap);
  const std::string_view src_name = plan.servers[i]->name;
  for (Level level : {Level::kInterDc, Level::kIntraDc, Level::kIntraRack}) {
    std::vector<std::pair<uint64_t, CompactEntry>> in_level;
    for (const auto& e : *out) {
      if (e.level == level) {
        in_level.emplace_back(hash::hash64(plan.servers[e.target]->name, hash::hash64(src_name)),
                              e);
      }
    }
    std::sort(in_level.begin(), in_level.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second.target < b.second.target;
    });
    for (const auto& [h, e] : in_level) {
      if (kept.size() >= cap) break;
      kept.push_back(e);
    }
  }
  std::sort(kept.begin(), kept.end(), [](const CompactEntry& a, const CompactEntry& b) {
    return a.level != b.level ? a.level < b.level : a.target < b.target;
  });
  *out = std::move(kept);
}

Plan generate(std::shared_ptr<const model::Topology> topology, const Liveness& alive) {
  Plan plan;
  plan.topology = topology;
  const model::Topology& t = *topology;
  const std::size_t n = t.servers.size();

  // Servers sorted by name: plan indices do not depend on the order the store returned.
  std::vector<uint32_t> order(n);
  for (uint32_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&t](uint32_t a, uint32_t b) { return t.servers[a].name < t.servers[b].name; });
  plan.servers.resize(n);
  plan.alive.resize(n);
  plan.index.reserve(n);
  for (uint32_t k = 0; k < n; ++k) {
    plan.servers[k] = &t.servers[order[k]];
    plan.alive[k] = order[k] < alive.size() && alive[order[k]];
    plan.index.emplace(plan.servers[k]->name, k);
  }
  plan.server_dc.assign(n, -1);
  plan.server_rack.assign(n, -1);
  plan.server_slot.assign(n, -1);
  plan.is_rep.assign(n, false);
  plan.version.assign(n, 0);
  plan.entry_count.assign(n, 0);

  // DCs sorted by name.
  std::vector<const model::Datacenter*> dcs;
  for (const auto& dc : t.dcs) dcs.push_back(&dc);
  std::sort(dcs.begin(), dcs.end(), [](auto* a, auto* b) { return a->name < b->name; });
  std::unordered_map<std::string_view, int32_t> dc_index;
  for (std::size_t d = 0; d < dcs.size(); ++d) {
    dc_index.emplace(dcs[d]->name, static_cast<int32_t>(d));
  }

  // Servers grouped by (DC, rack), in name order.
  std::vector<std::map<std::string_view, std::vector<uint32_t>>> members(dcs.size());
  for (uint32_t k = 0; k < n; ++k) {
    auto it = dc_index.find(plan.servers[k]->dc);
    if (it == dc_index.end()) continue;
    plan.server_dc[k] = it->second;
    if (!plan.servers[k]->rack.empty()) {
      members[static_cast<std::size_t>(it->second)][plan.servers[k]->rack].push_back(k);
    }
  }
  std::vector<std::vector<std::string_view>> rack_names(dcs.size());
  for (const auto& rack : t.racks) {
    auto it = dc_index.find(rack.dc);
    if (it != dc_index.end()) rack_names[static_cast<std::size_t>(it->second)].push_back(rack.name);
  }

  ProbeResolver resolver(t, &plan);
  plan.dcs.resize(dcs.size());
  for (std::size_t d = 0; d < dcs.size(); ++d) {
    DcPlan& dp = plan.dcs[d];
    const model::Datacenter& dc = *dcs[d];
    dp.dc = &dc;
    dp.stopped = t.settings.stopped || dc.stopped;
    dp.probes_intra_rack = resolver.resolve(Level::kIntraRack, dc, dc);
    dp.probes_intra_dc = resolver.resolve(Level::kIntraDc, dc, dc);
    dp.probes_inter_dc.assign(dcs.size(), 0);
    for (std::size_t e = 0; e < dcs.size(); ++e) {
      if (e != d) dp.probes_inter_dc[e] = resolver.resolve(Level::kInterDc, dc, *dcs[e]);
    }

    // Racks: those of the topology that have servers, ranked; alive = has a live server.
    auto& names = rack_names[d];
    std::sort(names.begin(), names.end());
    std::vector<std::pair<std::string_view, uint32_t>> rack_candidates;
    for (uint32_t r = 0; r < names.size(); ++r) rack_candidates.emplace_back(names[r], r);
    auto rack_alive = [&](uint32_t r) {
      auto it = members[d].find(names[r]);
      if (it == members[d].end()) return false;
      return std::any_of(it->second.begin(), it->second.end(),
                         [&](uint32_t k) { return plan.alive[k]; });
    };
    auto ranked_racks = rank(rack_candidates, seed_of("racks", dc.name));
    auto chosen_racks =
        fill_slots(ranked_racks, choose_count(dc.rack_ratio, names.size()), rack_alive);

    for (uint32_t r : chosen_racks) {
      ChosenRack cr;
      cr.name = names[r];
      const auto& in_rack = members[d][names[r]];
      std::vector<std::pair<std::string_view, uint32_t>> candidates;
      for (uint32_t k : in_rack) candidates.emplace_back(plan.servers[k]->name, k);
      auto ranked = rank(candidates, seed_of("servers", dc.name, cr.name));
      cr.slots = fill_slots(ranked, choose_count(dc.server_ratio, in_rack.size()),
                            [&](uint32_t k) { return plan.alive[k]; });
      auto rack_pos = static_cast<int32_t>(dp.racks.size());
      for (std::size_t slot = 0; slot < cr.slots.size(); ++slot) {
        plan.server_rack[cr.slots[slot]] = rack_pos;
        plan.server_slot[cr.slots[slot]] = static_cast<int32_t>(slot);
      }
      dp.racks.push_back(std::move(cr));
    }

    // Inter-DC representatives: slot 0 of each participating rack in rack order, then slot 1,
    // and so on, so they spread over racks (and their ToRs) before doubling up in one.
    for (std::size_t round = 0; dp.reps.size() < dc.inter_dc_servers; ++round) {
      bool any = false;
      for (const auto& cr : dp.racks) {
        if (round < cr.slots.size() && dp.reps.size() < dc.inter_dc_servers) {
          dp.reps.push_back(cr.slots[round]);
          plan.is_rep[cr.slots[round]] = true;
          any = true;
        }
      }
      if (!any) break;
    }
  }

  // Versions: a hash of everything a server's pinglist renders, built from per-server and
  // per-probe-set content hashes so that it costs a few nanoseconds per entry.
  std::vector<uint64_t> server_hash(n);
  for (uint32_t k = 0; k < n; ++k) {
    const auto& s = *plan.servers[k];
    uint64_t h = hash::hash64(s.name, 1);
    h = hash::combine(h, hash::hash64(s.dc, 2));
    h = hash::combine(h, hash::hash64(s.rack, 3));
    for (const auto& a : s.addresses) {
      h = hash::combine(h, hash::hash64(
                               std::string_view(reinterpret_cast<const char*>(a.bytes.data()), 16),
                               a.family));
    }
    server_hash[k] = h;
  }
  std::vector<uint64_t> set_hash(plan.probe_sets.size());
  for (std::size_t p = 0; p < plan.probe_sets.size(); ++p) {
    set_hash[p] = probe_set_hash(plan.probe_sets[p]);
  }
  std::vector<CompactEntry> entries;
  uint64_t all = 0;
  for (uint32_t k = 0; k < n; ++k) {
    entries_of(plan, k, &entries);
    const int32_t d = plan.server_dc[k];
    const bool stopped = d >= 0 ? plan.dcs[static_cast<std::size_t>(d)].stopped
                                : t.settings.stopped;
    // The source's own addresses render nothing but decide which families it probes.
    const auto& self = *plan.servers[k];
    uint64_t h = hash::combine(hash::hash64(self.name, 1), hash::hash64(self.dc, 2));
    h = hash::combine(h, hash::hash64(self.rack, 3));
    h = hash::combine(h, (has_family(self, 4) ? 4 : 0) | (has_family(self, 6) ? 8 : 0) |
                             (stopped ? 16 : 0));
    if (d >= 0) {
      const auto& dc = *plan.dcs[static_cast<std::size_t>(d)].dc;
      h = hash::combine(h, (dc.ipv4 ? 1 : 0) | (dc.ipv6 ? 2 : 0));
      uint32_t count = 0;
      for (const auto& e : entries) {
        h = hash::combine(h, server_hash[e.target] ^ (set_hash[e.probes] + static_cast<uint64_t>(e.level)));
        count += rendered_count(plan, *plan.servers[k], dc, e);
      }
      plan.entry_count[k] = count;
    }
    plan.version[k] = h;
    all = hash::combine(all, h);
  }
  plan.content_hash = all;
  return plan;
}

model::Pinglist pinglist_of(const Plan& plan, uint32_t index) {
  model::Pinglist p;
  const model::Server& src = *plan.servers[index];
  p.server = src.name;
  p.dc = src.dc;
  p.rack = src.rack;
  p.version = fmt::format("{:016x}", plan.version[index]);
  const int32_t d = plan.server_dc[index];
  p.stopped = d >= 0 ? plan.dcs[static_cast<std::size_t>(d)].stopped
                     : plan.topology->settings.stopped;
  if (d < 0) return p;
  const auto& dc = *plan.dcs[static_cast<std::size_t>(d)].dc;
  std::vector<CompactEntry> entries;
  entries_of(plan, index, &entries);
  p.entries.reserve(plan.entry_count[index]);
  for (const auto& e : entries) {
    const model::Server& target = *plan.servers[e.target];
    std::vector<net::IpAddress> addrs;
    for (const auto& a : target.addresses) {
      if (family_enabled(dc, a) && has_family(src, a.family)) addrs.push_back(a);
    }
    std::sort(addrs.begin(), addrs.end());
    for (const auto& a : addrs) {
      for (const auto& probe : plan.probe_sets[e.probes]) {
        model::PinglistEntry pe;
        pe.target = target.name;
        pe.address = a;
        pe.protocol = probe.protocol;
        pe.port = probe.port;
        pe.interval_ms = probe.interval_ms;
        pe.payload_bytes = probe.payload_bytes;
        pe.dscp = probe.dscp;
        pe.level = e.level;
        pe.dst_dc = target.dc;
        pe.dst_rack = target.rack;
        p.entries.push_back(std::move(pe));
      }
    }
  }
  return p;
}

}  // namespace pingmesh::pinglist
