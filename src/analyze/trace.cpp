#include "analyze/trace.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <tuple>

namespace pingmesh::analyze {

namespace {

std::string canonical(const std::string& address) {
  auto a = net::IpAddress::parse(address);
  return a ? a->to_string() : address;
}

uint16_t tcp_port_of(const model::Datacenter& dc) {
  for (const auto& p : dc.probes) {
    if (p.protocol == model::Protocol::kTcp) return p.port;
  }
  return model::kDefaultTcpPort;
}

}  // namespace

std::vector<TracePair> pick_trace_pairs(const Snapshot& snapshot, uint32_t dc,
                                        const model::Topology& topology, uint32_t n) {
  std::unordered_map<std::string, const model::Server*> servers;
  for (const auto& s : topology.servers) servers.emplace(s.name, &s);
  const model::Datacenter* dcm = nullptr;
  for (const auto& d : topology.dcs) {
    if (dc < snapshot.dcs.size() && d.name == snapshot.dcs[dc].name) dcm = &d;
  }
  if (dcm == nullptr) return {};

  std::vector<const FailingPair*> candidates;
  for (const auto& p : snapshot.failing) {
    const auto& a = snapshot.servers[p.src];
    const auto& b = snapshot.servers[p.dst];
    if (a.dc != dc || b.dc != dc || a.rack == b.rack || p.failures == 0) continue;
    // A pair whose ends are down is no path to trace.
    if (!p.src_reaches_others || !p.dst_answers_others) continue;
    candidates.push_back(&p);
  }
  std::sort(candidates.begin(), candidates.end(), [&](const FailingPair* x, const FailingPair* y) {
    if (x->failures != y->failures) return x->failures > y->failures;
    return std::tie(snapshot.servers[x->src].name, snapshot.servers[x->dst].name) <
           std::tie(snapshot.servers[y->src].name, snapshot.servers[y->dst].name);
  });
  std::vector<TracePair> out;
  std::set<std::string> sources;
  auto add = [&](uint32_t s, uint32_t d, uint32_t failures) {
    const auto& src = snapshot.servers[s].name;
    const auto& dst = snapshot.servers[d].name;
    if (out.size() >= n || sources.count(src)) return;
    auto it = servers.find(dst);
    if (it == servers.end() || !servers.count(src) || it->second->addresses.empty()) return;
    TracePair t;
    t.src = src;
    t.dst = dst;
    // IPv4 first when the DC probes it (the agent traces what its pinglist holds).
    const auto& addrs = it->second->addresses;
    auto v4 = std::find_if(addrs.begin(), addrs.end(), [](const auto& a) { return a.is_v4(); });
    t.address = (dcm->ipv4 && v4 != addrs.end()) ? *v4 : addrs.front();
    t.dport = tcp_port_of(*dcm);
    t.failures = failures;
    sources.insert(src);
    out.push_back(std::move(t));
  };
  for (const auto* p : candidates) add(p->src, p->dst, p->failures);
  // A random drop of a few % rarely fails a TCP probe (the SYN retransmission gets through: the
  // probe is answered late, lost but not failed), so failing pairs are few. Then: the rack
  // pairs losing most, a working server of each end (sending and answered).
  std::vector<const RackPair*> lossy;
  for (const auto& rp : snapshot.rack_pairs) {
    if (rp.src == rp.dst || rp.counts.lost == 0) continue;
    if (snapshot.racks[rp.src].dc != dc || snapshot.racks[rp.dst].dc != dc) continue;
    lossy.push_back(&rp);
  }
  std::sort(lossy.begin(), lossy.end(), [&](const RackPair* x, const RackPair* y) {
    return std::tie(y->counts.lost, x->src, x->dst) < std::tie(x->counts.lost, y->src, y->dst);
  });
  auto working = [&](uint32_t i) {
    const auto& s = snapshot.servers[i];
    return s.as_src.answered > 0 && s.as_dst.answered > 0;
  };
  for (const auto* rp : lossy) {
    if (out.size() >= n) break;
    for (uint32_t s : snapshot.racks[rp->src].servers) {
      if (!working(s) || sources.count(snapshot.servers[s].name)) continue;
      const auto& targets = snapshot.racks[rp->dst].servers;
      auto t = std::find_if(targets.begin(), targets.end(), working);
      if (t != targets.end()) add(s, *t, 0);
      break;
    }
  }
  return out;
}

std::unordered_map<std::string, std::string> spine_addresses(const model::Datacenter& dc) {
  std::unordered_map<std::string, std::string> out;
  for (const auto& d : dc.devices) {
    if (d.layer != model::DeviceLayer::kSpine) continue;
    for (const auto& a : d.addresses) out.emplace(a.to_string(), d.name);
  }
  return out;
}

std::optional<std::string> spine_of_path(
    const std::vector<std::string>& hops,
    const std::unordered_map<std::string, std::string>& spines) {
  std::optional<std::string> found;
  for (const auto& h : hops) {
    if (h.empty()) continue;
    auto it = spines.find(canonical(h));
    if (it == spines.end()) continue;
    if (found && *found != it->second) return std::nullopt;
    found = it->second;
  }
  return found;
}

bool TraceCoordinator::due(int64_t now_ms, const std::vector<std::string>& fabric_dcs) const {
  if (!options_.enabled) return false;
  for (const auto& dc : fabric_dcs) {
    auto it = last_round_ms_.find(dc);
    if (it == last_round_ms_.end() || now_ms - it->second >= options_.min_interval_ms) return true;
  }
  return false;
}

std::size_t TraceCoordinator::plan(int64_t now_ms, const std::vector<std::string>& fabric_dcs,
                                   const Snapshot& snapshot, const model::Topology& topology) {
  // Expire requests nobody picked up (agent gone) and answers that never came.
  for (auto it = pending_.begin(); it != pending_.end();) {
    int64_t ttl = it->second.taken ? options_.request_ttl_ms * 4 : options_.request_ttl_ms;
    it = now_ms - it->second.created_ms > ttl ? pending_.erase(it) : std::next(it);
  }
  for (auto& [dc, ports] : results_) {
    std::erase_if(ports,
                  [&](const PortResult& p) { return now_ms - p.at_ms > options_.result_ttl_ms; });
  }
  if (!options_.enabled) return 0;
  std::size_t queued = 0;
  for (const auto& dc_name : fabric_dcs) {
    auto last = last_round_ms_.find(dc_name);
    if (last != last_round_ms_.end() && now_ms - last->second < options_.min_interval_ms) continue;
    const model::Datacenter* dcm = nullptr;
    for (const auto& d : topology.dcs) {
      if (d.name == dc_name) dcm = &d;
    }
    // Without spine addresses a trace cannot name a spine: do not ask.
    if (dcm == nullptr || spine_addresses(*dcm).empty()) continue;
    uint32_t dc = 0;
    while (dc < snapshot.dcs.size() && snapshot.dcs[dc].name != dc_name) ++dc;
    if (dc == snapshot.dcs.size()) continue;
    auto pairs = pick_trace_pairs(snapshot, dc, topology, options_.pairs);
    if (pairs.empty()) continue;
    last_round_ms_[dc_name] = now_ms;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      Pending p;
      p.dc = dc_name;
      p.pair = std::move(pairs[i]);
      p.created_ms = now_ms;
      // Distinct ports per pair and per round (a round's ports differ from the last round's, so
      // no half-open state of an earlier round is met).
      uint32_t span = 65535u - options_.first_port + 1;
      for (uint32_t k = 0; k < options_.ports; ++k) {
        uint32_t offset = static_cast<uint32_t>((next_id_ * 97 + i * options_.ports + k) % span);
        p.sports.push_back(static_cast<uint16_t>(options_.first_port + offset));
      }
      std::string id = fmt::format("{}-{}", dc_name, next_id_++);
      pending_.emplace(std::move(id), std::move(p));
      ++queued;
      ++queued_;
    }
  }
  return queued;
}

std::string TraceCoordinator::take_requests(const std::string& agent, int64_t now_ms) {
  nlohmann::json list = nlohmann::json::array();
  for (auto& [id, p] : pending_) {
    if (p.taken || p.pair.src != agent || now_ms - p.created_ms > options_.request_ttl_ms) continue;
    if (list.size() >= 4) break;
    p.taken = true;
    list.push_back({{"id", id},
                    {"dst", p.pair.address.to_string()},
                    {"dport", p.pair.dport},
                    {"sports", p.sports},
                    {"max_ttl", options_.max_ttl},
                    {"hop_attempts", options_.hop_attempts},
                    {"loss_probes", options_.loss_probes},
                    {"timeout_ms", options_.timeout_ms}});
  }
  if (list.empty()) return {};
  return nlohmann::json{{"requests", std::move(list)}}.dump();
}

bool TraceCoordinator::add_results(const nlohmann::json& body, const model::Topology* topology,
                                   int64_t now_ms, std::string* error, std::string* field,
                                   std::size_t* ignored) {
  *ignored = 0;
  auto fail = [&](std::string f, std::string e) {
    *field = std::move(f);
    *error = std::move(e);
    return false;
  };
  if (!body.is_object()) return fail("", "must be an object");
  if (!body.contains("agent") || !body["agent"].is_string()) {
    return fail("agent", "must be a string");
  }
  if (!body.contains("results") || !body["results"].is_array()) {
    return fail("results", "must be an array");
  }
  auto non_negative = [](const nlohmann::json& v) {
    return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
  };
  const auto agent = body["agent"].get<std::string>();
  const auto& results = body["results"];
  // Validate everything before taking anything.
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    std::string path = fmt::format("results[{}]", i);
    if (!r.is_object()) return fail(path, "must be an object");
    if (!r.contains("id") || !r["id"].is_string()) return fail(path + ".id", "must be a string");
    if (!r.contains("ports") || !r["ports"].is_array()) {
      return fail(path + ".ports", "must be an array");
    }
    for (std::size_t k = 0; k < r["ports"].size(); ++k) {
      const auto& p = r["ports"][k];
      std::string pp = fmt::format("{}.ports[{}]", path, k);
      if (!p.is_object()) return fail(pp, "must be an object");
      for (const char* key : {"sport", "sent", "answered"}) {
        if (!p.contains(key) || !non_negative(p[key])) {
          return fail(pp + "." + key, "must be a non-negative integer");
        }
      }
      if (p["sport"].get<uint64_t>() > 65535) return fail(pp + ".sport", "must be a port");
      if (p["answered"].get<uint64_t>() > p["sent"].get<uint64_t>()) {
        return fail(pp + ".answered", "must not exceed sent");
      }
      if (!p.contains("hops") || !p["hops"].is_array()) {
        return fail(pp + ".hops", "must be an array");
      }
      for (const auto& h : p["hops"]) {
        if (!h.is_string()) return fail(pp + ".hops", "must be an array of strings");
      }
      if (p.contains("errors") && !non_negative(p["errors"])) {
        return fail(pp + ".errors", "must be a non-negative integer");
      }
    }
  }
  for (const auto& r : results) {
    auto it = pending_.find(r["id"].get<std::string>());
    if (it == pending_.end() || it->second.pair.src != agent) {
      ++*ignored;
      continue;
    }
    const Pending& p = it->second;
    std::unordered_map<std::string, std::string> spines;
    if (topology != nullptr) {
      for (const auto& d : topology->dcs) {
        if (d.name == p.dc) spines = spine_addresses(d);
      }
    }
    auto& out = results_[p.dc];
    for (const auto& port : r["ports"]) {
      PortResult pr;
      pr.pair = p.pair.src + ">" + p.pair.dst;
      pr.sport = port["sport"].get<uint16_t>();
      pr.spine = spine_of_path(port["hops"].get<std::vector<std::string>>(), spines);
      uint64_t errors = port.value("errors", uint64_t{0});
      uint64_t sent = port["sent"].get<uint64_t>();
      pr.probes = sent > errors ? sent - errors : 0;
      uint64_t answered = std::min(port["answered"].get<uint64_t>(), pr.probes);
      pr.lost = pr.probes - answered;
      pr.at_ms = now_ms;
      out.push_back(std::move(pr));
    }
    pending_.erase(it);
    ++answered_;
  }
  return true;
}

std::map<std::string, DcTraces> TraceCoordinator::traces(int64_t now_ms) const {
  std::map<std::string, DcTraces> out;
  for (const auto& [dc, ports] : results_) {
    std::map<std::string, SpineTrace> by_spine;
    std::map<std::string, nlohmann::json> ports_of;
    std::set<std::string> pairs;
    uint64_t unmapped = 0;
    DcTraces t;
    for (const auto& p : ports) {
      if (now_ms - p.at_ms > options_.result_ttl_ms) continue;
      t.updated_ms = std::max(t.updated_ms, p.at_ms);
      pairs.insert(p.pair);
      if (!p.spine) {
        ++unmapped;
        continue;
      }
      auto& s = by_spine[*p.spine];
      s.spine = *p.spine;
      s.probes += p.probes;
      s.lost += p.lost;
      if (ports_of[*p.spine].size() < 10) {
        ports_of[*p.spine].push_back(
            {{"pair", p.pair}, {"sport", p.sport}, {"lost", p.lost}, {"probes", p.probes}});
      }
    }
    if (t.updated_ms == 0) continue;
    for (auto& [name, s] : by_spine) t.spines.push_back(s);
    t.evidence = {{"pairs", std::vector<std::string>(pairs.begin(), pairs.end())},
                  {"unmapped_ports", unmapped},
                  {"example_ports", ports_of}};
    out.emplace(dc, std::move(t));
  }
  return out;
}

}  // namespace pingmesh::analyze
