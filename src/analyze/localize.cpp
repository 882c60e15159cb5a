#include "analyze/localize.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace pingmesh::analyze {

namespace {

constexpr uint32_t kNoRack = 0xffffffffu;
constexpr std::size_t kMaxEvidencePairs = 10;

double rate(uint64_t e, uint64_t n) {
  return n == 0 ? 0.0 : static_cast<double>(e) / static_cast<double>(n);
}

double clamp_confidence(double c) { return std::clamp(c, 0.0, 0.99); }

/// Confidence from how far a rate's lower bound is above its threshold.
double confidence_above(uint64_t e, uint64_t n, double threshold, double z) {
  double lower = wilson_lower(e, n, z);
  if (lower <= threshold) return 0.5;
  return clamp_confidence(0.5 + 0.5 * (1 - threshold / lower));
}

bool silent(int64_t age_ms, int64_t silence_ms) { return age_ms < 0 || age_ms >= silence_ms; }

bool sending(const ServerInfo& s, int64_t silence_ms) {
  return s.batch_age_ms >= 0 && s.batch_age_ms < silence_ms;
}

std::string rack_component(const Snapshot& s, uint32_t rack) {
  return fmt::format("rack:{}/{}", s.dcs[s.racks[rack].dc].name, s.racks[rack].name);
}

Verdict server_verdict(const Snapshot& s, uint32_t i, std::string kind) {
  Verdict v;
  v.kind = std::move(kind);
  v.type = ComponentType::kServer;
  const auto& srv = s.servers[i];
  v.component = "server:" + srv.name;
  v.server = srv.name;
  v.dc = s.dcs[srv.dc].name;
  if (srv.rack != kNoRack) v.rack = s.racks[srv.rack].name;
  return v;
}

Verdict rack_verdict(const Snapshot& s, uint32_t rack, std::string kind) {
  Verdict v;
  v.kind = std::move(kind);
  v.type = ComponentType::kRack;
  v.component = rack_component(s, rack);
  v.dc = s.dcs[s.racks[rack].dc].name;
  v.rack = s.racks[rack].name;
  return v;
}

Verdict dc_verdict(const Snapshot& s, uint32_t dc, std::string kind, ComponentType type) {
  Verdict v;
  v.kind = std::move(kind);
  v.type = type;
  v.dc = s.dcs[dc].name;
  v.component = fmt::format("{}:{}", to_string(type), v.dc);
  return v;
}

nlohmann::json counts_json(const Counts& c) {
  return {{"probes", c.probes}, {"answered", c.answered},   {"failures", c.failures},
          {"lost", c.lost},     {"loss_base", c.loss_base}, {"ok", c.ok},
          {"slow", c.slow}};
}

}  // namespace

Counts& Counts::operator+=(const Counts& o) {
  probes += o.probes;
  answered += o.answered;
  failures += o.failures;
  lost += o.lost;
  loss_base += o.loss_base;
  ok += o.ok;
  slow += o.slow;
  return *this;
}

std::string_view to_string(ComponentType t) {
  switch (t) {
    case ComponentType::kServer:
      return "server";
    case ComponentType::kRack:
      return "rack";
    case ComponentType::kSpineLayer:
      return "spine_layer";
    case ComponentType::kSpine:
      return "spine";
    case ComponentType::kDc:
      return "dc";
    case ComponentType::kInterDc:
      return "inter_dc";
  }
  return "unknown";
}

nlohmann::json to_json(const Verdict& v) {
  nlohmann::json j = {{"kind", v.kind},
                      {"component_type", to_string(v.type)},
                      {"component", v.component},
                      {"dc", v.dc},
                      {"confidence", std::round(v.confidence * 1000) / 1000},
                      {"summary", v.summary},
                      {"evidence", v.evidence}};
  if (!v.peer_dc.empty()) j["peer_dc"] = v.peer_dc;
  if (!v.rack.empty()) j["rack"] = v.rack;
  if (!v.server.empty()) j["server"] = v.server;
  return j;
}

std::vector<Verdict> find_down(const Snapshot& s, const LocalizeOptions& o,
                               std::vector<bool>* down_servers, std::vector<bool>* down_racks) {
  std::vector<Verdict> out;
  down_servers->assign(s.servers.size(), false);
  down_racks->assign(s.racks.size(), false);
  // Quiet = neither reporting nor answering: for silence_ms (one server), or for the shorter
  // rack_silence_ms when most servers of its rack are (a whole rack going quiet at once is a
  // much stronger signal than one server).
  std::vector<bool> quiet(s.servers.size(), false), rack_quiet(s.servers.size(), false);
  for (uint32_t i = 0; i < s.servers.size(); ++i) {
    const auto& srv = s.servers[i];
    quiet[i] = srv.known && silent(srv.batch_age_ms, o.silence_ms) &&
               silent(srv.answer_age_ms, o.silence_ms);
    rack_quiet[i] = srv.known && silent(srv.batch_age_ms, o.rack_silence_ms) &&
                    silent(srv.answer_age_ms, o.rack_silence_ms);
  }
  // A rack whose servers (nearly) all went quiet and were probed in vain is down as a whole: the
  // white cross. A rack half quiet is left for the next evaluations (no server verdicts yet).
  std::vector<bool> settling(s.racks.size(), false);
  for (uint32_t r = 0; r < s.racks.size(); ++r) {
    const auto& rack = s.racks[r];
    uint64_t known = 0, quiet_n = 0, failures = 0;
    for (uint32_t i : rack.servers) {
      if (!s.servers[i].known) continue;
      ++known;
      if (!rack_quiet[i]) continue;
      ++quiet_n;
      failures += s.servers[i].as_dst.failures;
    }
    if (known >= 2 && quiet_n >= 2 &&
        static_cast<double>(quiet_n) >= 0.5 * static_cast<double>(known)) {
      settling[r] = true;
    }
    if (known < 2 || quiet_n < 2 || failures < o.min_down_failures ||
        static_cast<double>(quiet_n) < o.rack_down_fraction * static_cast<double>(known)) {
      continue;
    }
    (*down_racks)[r] = true;
    for (uint32_t i : rack.servers) {
      if (rack_quiet[i]) (*down_servers)[i] = true;
    }
    Verdict v = rack_verdict(s, r, "rack_down");
    v.confidence = clamp_confidence(static_cast<double>(quiet_n) / static_cast<double>(known));
    v.summary = fmt::format(
        "rack {} ({}) down: {} of its {} servers neither report nor answer; {} probes to them "
        "failed (white cross)",
        rack.name, v.dc, quiet_n, known, failures);
    v.evidence = {
        {"servers_known", known}, {"servers_silent", quiet_n}, {"failed_probes_to_rack", failures}};
    out.push_back(std::move(v));
  }
  for (uint32_t i = 0; i < s.servers.size(); ++i) {
    const auto& srv = s.servers[i];
    if (!quiet[i] || (*down_servers)[i] || srv.as_dst.failures < o.min_down_failures) continue;
    if (srv.rack != kNoRack && settling[srv.rack]) {
      (*down_servers)[i] = true;  // not probed for black holes either
      continue;
    }
    (*down_servers)[i] = true;
    Verdict v = server_verdict(s, i, "server_down");
    v.confidence = clamp_confidence(1 - std::pow(0.5, static_cast<double>(srv.as_dst.failures)));
    v.summary = fmt::format(
        "server {} down: no batch for {} s, nothing answered for {} s, {} probes to it failed",
        srv.name, srv.batch_age_ms < 0 ? -1 : srv.batch_age_ms / 1000,
        srv.answer_age_ms < 0 ? -1 : srv.answer_age_ms / 1000, srv.as_dst.failures);
    v.evidence = {{"batch_age_ms", srv.batch_age_ms},
                  {"answer_age_ms", srv.answer_age_ms},
                  {"as_target", counts_json(srv.as_dst)}};
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<Verdict> find_server_problems(const Snapshot& s, const LocalizeOptions& o,
                                          const std::vector<bool>& down_servers,
                                          std::vector<bool>* problem_servers) {
  std::vector<Verdict> candidates;
  std::vector<uint32_t> who;
  problem_servers->assign(s.servers.size(), false);
  // Every server of a DC as a target: the baseline one server must stand out from.
  std::vector<Counts> dc_dst(s.dcs.size()), rack_dst(s.racks.size());
  for (const auto& srv : s.servers) {
    dc_dst[srv.dc] += srv.as_dst;
    if (srv.rack != kNoRack) rack_dst[srv.rack] += srv.as_dst;
  }
  // The other servers of the server's rack as targets; elevated too = the rack's problem.
  auto mates = [&](uint32_t i) {
    Counts c;
    if (s.servers[i].rack == kNoRack) return c;
    c = rack_dst[s.servers[i].rack];
    const Counts& self = s.servers[i].as_dst;
    c.probes -= self.probes;
    c.answered -= self.answered;
    c.failures -= self.failures;
    c.lost -= self.lost;
    c.loss_base -= self.loss_base;
    c.ok -= self.ok;
    c.slow -= self.slow;
    return c;
  };
  for (uint32_t i = 0; i < s.servers.size(); ++i) {
    const auto& srv = s.servers[i];
    if (down_servers[i] || !srv.known || !sending(srv, o.silence_ms)) continue;
    const Counts& d = srv.as_dst;
    const Counts& src = srv.as_src;
    std::string what;
    nlohmann::json evidence = {{"as_target", counts_json(d)}, {"as_source", counts_json(src)}};
    double conf = 0;
    if (silent(srv.answer_age_ms, o.silence_ms) && d.failures >= o.min_down_failures) {
      what = fmt::format("reports but answered no probe for {} s ({} failed)",
                         srv.answer_age_ms < 0 ? -1 : srv.answer_age_ms / 1000, d.failures);
      conf = clamp_confidence(1 - std::pow(0.5, static_cast<double>(d.failures)));
    } else if (rate(mates(i).slow, mates(i).ok) <= o.slow_fraction &&
               significantly_above(
                   d.slow, d.ok,
                   std::max({o.slow_fraction,
                             o.cross_ratio * rate(dc_dst[srv.dc].slow, dc_dst[srv.dc].ok),
                             wilson_upper(src.slow, src.ok, o.significance.z)}),
                   o.significance)) {
      what = fmt::format(
          "slow as a target only: {:.1f} % of answers above the slow threshold "
          "(as a source {:.1f} %)",
          100 * rate(d.slow, d.ok), 100 * rate(src.slow, src.ok));
      conf = confidence_above(d.slow, d.ok, o.slow_fraction, o.significance.z);
    } else if (rate(mates(i).lost, mates(i).loss_base) <= o.loss &&
               significantly_above(
                   d.lost, d.loss_base,
                   std::max({o.loss,
                             o.cross_ratio * rate(dc_dst[srv.dc].lost, dc_dst[srv.dc].loss_base),
                             wilson_upper(src.lost, src.loss_base, o.significance.z)}),
                   o.significance)) {
      what = fmt::format("lossy as a target only: loss {:.3f} % (as a source {:.3f} %)",
                         100 * rate(d.lost, d.loss_base), 100 * rate(src.lost, src.loss_base));
      conf = confidence_above(d.lost, d.loss_base, o.loss, o.significance.z);
    } else {
      continue;
    }
    Verdict v = server_verdict(s, i, "server_problem");
    v.confidence = conf;
    v.summary = fmt::format("server {}: {}", srv.name, what);
    v.evidence = std::move(evidence);
    candidates.push_back(std::move(v));
    who.push_back(i);
  }
  // Many flagged servers under one ToR point at the rack, not at each server.
  std::vector<uint32_t> per_rack(s.racks.size(), 0), active(s.racks.size(), 0);
  for (uint32_t i = 0; i < s.servers.size(); ++i) {
    if (s.servers[i].rack != kNoRack && sending(s.servers[i], o.silence_ms)) {
      ++active[s.servers[i].rack];
    }
  }
  for (uint32_t i : who) {
    if (s.servers[i].rack != kNoRack) ++per_rack[s.servers[i].rack];
  }
  std::vector<Verdict> out;
  for (std::size_t k = 0; k < who.size(); ++k) {
    uint32_t rack = s.servers[who[k]].rack;
    if (rack != kNoRack && per_rack[rack] >= 2 &&
        static_cast<double>(per_rack[rack]) >=
            o.rack_server_fraction * static_cast<double>(active[rack])) {
      continue;
    }
    (*problem_servers)[who[k]] = true;
    out.push_back(std::move(candidates[k]));
  }
  return out;
}

std::vector<Verdict> find_black_holes(const Snapshot& s, const LocalizeOptions& o,
                                      const std::vector<bool>& excluded_servers,
                                      std::vector<bool>* blamed_racks) {
  // The symptom: a pair that failed every time since its first failure while both ends were
  // otherwise fine (the source reached others, the target answered others afterwards).
  std::vector<const FailingPair*> pairs;
  for (const auto& p : s.failing) {
    if (p.failures == 0 || p.successes_after > 0 || !p.src_reaches_others ||
        !p.dst_answers_others || excluded_servers[p.src] || excluded_servers[p.dst]) {
      continue;
    }
    pairs.push_back(&p);
  }
  std::vector<Verdict> out;
  if (pairs.empty()) return out;
  std::vector<uint32_t> active(s.racks.size(), 0);
  for (uint32_t i = 0; i < s.servers.size(); ++i) {
    const auto& srv = s.servers[i];
    if (srv.rack != kNoRack && !excluded_servers[i] && sending(srv, o.silence_ms)) {
      ++active[srv.rack];
    }
  }
  std::vector<bool> removed(pairs.size(), false);
  std::vector<uint32_t> picked;
  std::vector<double> picked_score;
  std::vector<uint32_t> picked_sym;
  std::vector<bool> sym(s.servers.size(), false);
  std::vector<uint32_t> count(s.racks.size(), 0);
  while (true) {
    std::fill(sym.begin(), sym.end(), false);
    std::fill(count.begin(), count.end(), 0);
    for (std::size_t k = 0; k < pairs.size(); ++k) {
      if (removed[k]) continue;
      for (uint32_t i : {pairs[k]->src, pairs[k]->dst}) {
        if (sym[i]) continue;
        sym[i] = true;
        uint32_t r = s.servers[i].rack;
        if (r != kNoRack && sending(s.servers[i], o.silence_ms)) ++count[r];
      }
    }
    uint32_t best = kNoRack;
    double best_score = 0;
    for (uint32_t r = 0; r < s.racks.size(); ++r) {
      if (active[r] == 0 || count[r] < o.tor_min_servers) continue;
      double score = static_cast<double>(count[r]) / static_cast<double>(active[r]);
      if (score < o.tor_score) continue;
      if (best == kNoRack || score > best_score ||
          (score == best_score && count[r] > count[best])) {
        best = r;
        best_score = score;
      }
    }
    if (best == kNoRack) break;
    picked.push_back(best);
    picked_score.push_back(best_score);
    picked_sym.push_back(count[best]);
    for (std::size_t k = 0; k < pairs.size(); ++k) {
      if (removed[k]) continue;
      if (s.servers[pairs[k]->src].rack == best || s.servers[pairs[k]->dst].rack == best) {
        removed[k] = true;
      }
    }
  }
  // When most ToRs of a DC are blamed, the fault is in the layer above them.
  std::vector<uint32_t> per_dc(s.dcs.size(), 0), racks_active(s.dcs.size(), 0);
  for (uint32_t r : picked) ++per_dc[s.racks[r].dc];
  for (uint32_t r = 0; r < s.racks.size(); ++r) {
    if (active[r] > 0) ++racks_active[s.racks[r].dc];
  }
  std::vector<bool> layer(s.dcs.size(), false);
  for (uint32_t d = 0; d < s.dcs.size(); ++d) {
    if (per_dc[d] >= 3 &&
        static_cast<double>(per_dc[d]) >= o.layer_fraction * static_cast<double>(racks_active[d])) {
      layer[d] = true;
      Verdict v = dc_verdict(s, d, "fabric_black_hole", ComponentType::kSpineLayer);
      v.confidence =
          clamp_confidence(static_cast<double>(per_dc[d]) / static_cast<double>(racks_active[d]));
      v.summary = fmt::format(
          "black hole above the ToRs of {}: {} of {} ToRs have most servers failing to reach "
          "some peers deterministically",
          v.dc, per_dc[d], racks_active[d]);
      v.evidence = {{"tors_scoring", per_dc[d]}, {"tors_active", racks_active[d]}};
      out.push_back(std::move(v));
    }
  }
  for (std::size_t k = 0; k < picked.size(); ++k) {
    uint32_t r = picked[k];
    if (layer[s.racks[r].dc]) continue;
    (*blamed_racks)[r] = true;
    Verdict v = rack_verdict(s, r, "tor_black_hole");
    v.confidence = clamp_confidence(picked_score[k]);
    auto examples = nlohmann::json::array();
    uint64_t n_pairs = 0;
    for (const auto* p : pairs) {
      if (s.servers[p->src].rack != r && s.servers[p->dst].rack != r) continue;
      ++n_pairs;
      if (examples.size() < kMaxEvidencePairs) {
        examples.push_back({{"src", s.servers[p->src].name},
                            {"dst", s.servers[p->dst].name},
                            {"failures", p->failures}});
      }
    }
    v.summary = fmt::format(
        "ToR {} ({}) black-holes some destinations: {} of its {} servers fail to reach some peers "
        "every time while reaching others (score {:.2f}); {} such pairs",
        v.rack, v.dc, picked_sym[k], active[r], picked_score[k], n_pairs);
    v.evidence = {{"score", picked_score[k]},
                  {"servers_with_symptom", picked_sym[k]},
                  {"servers_active", active[r]},
                  {"failing_pairs", n_pairs},
                  {"pairs", examples}};
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<Verdict> find_rack_and_fabric(const Snapshot& s, const LocalizeOptions& o,
                                          std::vector<bool>* blamed_racks) {
  std::vector<Verdict> out;
  // Rack pairs of each DC, off the diagonal and on it.
  std::vector<std::vector<const RackPair*>> off(s.dcs.size()), diag(s.dcs.size());
  for (const auto& p : s.rack_pairs) {
    uint32_t d = s.racks[p.src].dc;
    if (s.racks[p.dst].dc != d) continue;
    if ((*blamed_racks)[p.src] || (*blamed_racks)[p.dst]) continue;
    (p.src == p.dst ? diag : off)[d].push_back(&p);
  }
  // Per server: is its own (source + target) rate of the metric above the threshold?
  auto server_elevated = [&](uint32_t i, bool loss) {
    Counts c = s.servers[i].as_src;
    c += s.servers[i].as_dst;
    return loss ? rate(c.lost, c.loss_base) > o.loss : rate(c.slow, c.ok) > o.slow_fraction;
  };
  for (uint32_t d = 0; d < s.dcs.size(); ++d) {
    for (bool loss : {true, false}) {
      double threshold = loss ? o.loss : o.slow_fraction;
      auto events = [&](const Counts& c) { return loss ? c.lost : c.slow; };
      auto trials = [&](const Counts& c) { return loss ? c.loss_base : c.ok; };
      auto& pairs = off[d];
      std::vector<bool> removed(pairs.size(), false);
      for (std::size_t k = 0; k < pairs.size(); ++k) {
        removed[k] = (*blamed_racks)[pairs[k]->src] || (*blamed_racks)[pairs[k]->dst];
      }
      for (int round = 0; round < 8; ++round) {
        uint64_t total_e = 0, total_n = 0;
        std::vector<uint64_t> cross_e(s.racks.size(), 0), cross_n(s.racks.size(), 0);
        for (std::size_t k = 0; k < pairs.size(); ++k) {
          if (removed[k]) continue;
          uint64_t e = events(pairs[k]->counts), n = trials(pairs[k]->counts);
          total_e += e;
          total_n += n;
          for (uint32_t r : {pairs[k]->src, pairs[k]->dst}) {
            cross_e[r] += e;
            cross_n[r] += n;
          }
        }
        uint32_t best = kNoRack;
        double best_lower = 0;
        for (uint32_t r : s.dcs[d].racks) {
          if ((*blamed_racks)[r]) continue;
          if (!significantly_above(cross_e[r], cross_n[r], threshold, o.significance)) continue;
          double rest = rate(total_e - cross_e[r], total_n - cross_n[r]);
          if (rate(cross_e[r], cross_n[r]) < o.cross_ratio * rest) continue;
          uint32_t elevated = 0, active = 0;
          for (uint32_t i : s.racks[r].servers) {
            if (!sending(s.servers[i], o.silence_ms)) continue;
            ++active;
            if (server_elevated(i, loss)) ++elevated;
          }
          if (active == 0 || static_cast<double>(elevated) <
                                 o.rack_server_fraction * static_cast<double>(active)) {
            continue;
          }
          double lower = wilson_lower(cross_e[r], cross_n[r], o.significance.z);
          if (best == kNoRack || lower > best_lower) {
            best = r;
            best_lower = lower;
          }
        }
        if (best == kNoRack) break;
        (*blamed_racks)[best] = true;
        for (std::size_t k = 0; k < pairs.size(); ++k) {
          if (pairs[k]->src == best || pairs[k]->dst == best) removed[k] = true;
        }
        Verdict v = rack_verdict(s, best, "rack_problem");
        v.confidence = confidence_above(cross_e[best], cross_n[best], threshold, o.significance.z);
        double cross_rate = rate(cross_e[best], cross_n[best]);
        double rest_rate = rate(total_e - cross_e[best], total_n - cross_n[best]);
        v.summary = fmt::format(
            "rack {} ({}) {}: {:.3f} % of its intra-DC probes {} vs {:.3f} % elsewhere in the DC "
            "(red cross)",
            v.rack, v.dc, loss ? "loses packets" : "is slow", 100 * cross_rate,
            loss ? "lost" : "slow", 100 * rest_rate);
        v.evidence = {{"metric", loss ? "loss" : "slow"},
                      {"rate", cross_rate},
                      {"events", cross_e[best]},
                      {"trials", cross_n[best]},
                      {"rest_rate", rest_rate}};
        out.push_back(std::move(v));
      }
      // What is left, if significant and spread over the DC, is above the ToRs.
      uint64_t e = 0, n = 0;
      std::vector<uint64_t> rack_e(s.racks.size(), 0);
      for (std::size_t k = 0; k < pairs.size(); ++k) {
        if (removed[k]) continue;
        e += events(pairs[k]->counts);
        n += trials(pairs[k]->counts);
        rack_e[pairs[k]->src] += events(pairs[k]->counts);
        rack_e[pairs[k]->dst] += events(pairs[k]->counts);
      }
      if (!significantly_above(e, n, threshold, o.significance)) continue;
      uint32_t racks = 0, touched = 0;
      for (uint32_t r : s.dcs[d].racks) {
        if ((*blamed_racks)[r]) continue;
        ++racks;
        if (rack_e[r] > 0) ++touched;
      }
      if (racks < 2 || static_cast<double>(touched) < 0.5 * static_cast<double>(racks)) continue;
      uint64_t de = 0, dn = 0;
      for (const auto* p : diag[d]) {
        de += events(p->counts);
        dn += trials(p->counts);
      }
      // Only a spine/aggregation fault leaves the diagonal clean: within a rack, traffic turns
      // at the ToR. A diagonal too thinly sampled to be significantly bad is not clean for that
      // alone: its rate must also be at most 1/cross_ratio of the rate between racks. A
      // whole-host hiccup (CPU starvation, a busy hypervisor) shows on both and is neither: no
      // verdict until the data tells them apart.
      bool diagonal_bad = significantly_above(de, dn, threshold, o.significance);
      bool diagonal_clean = !diagonal_bad && o.cross_ratio * rate(de, dn) <= rate(e, n);
      if (!diagonal_bad && !diagonal_clean) continue;
      Verdict v = diagonal_bad
                      ? dc_verdict(s, d, loss ? "dc_loss" : "dc_latency", ComponentType::kDc)
                      : dc_verdict(s, d, loss ? "fabric_loss" : "fabric_latency",
                                   ComponentType::kSpineLayer);
      v.confidence = confidence_above(e, n, threshold, o.significance.z);
      v.summary = fmt::format(
          "{} of {}: {:.3f} % of probes between its racks {} ({} of {} racks touched); within "
          "racks {:.3f} %{}",
          diagonal_bad ? "DC-wide problem" : "spine/aggregation layer", v.dc, 100 * rate(e, n),
          loss ? "lost" : "slow", touched, racks, 100 * rate(de, dn),
          diagonal_bad ? "" : " (red everywhere but the diagonal)");
      v.evidence = {{"metric", loss ? "loss" : "slow"},
                    {"rate", rate(e, n)},
                    {"events", e},
                    {"trials", n},
                    {"racks_touched", touched},
                    {"racks", racks},
                    {"diagonal_rate", rate(de, dn)}};
      out.push_back(std::move(v));
    }
  }
  return out;
}

std::vector<Verdict> find_inter_dc(const Snapshot& s, const LocalizeOptions& o,
                                   const std::vector<Verdict>& dc_verdicts,
                                   const std::vector<bool>& blamed_racks) {
  // The worst loss rate (and whether latency is affected) that each DC's own fabric explains.
  std::vector<double> dc_loss(s.dcs.size(), 0);
  std::vector<bool> dc_slow(s.dcs.size(), false);
  for (const auto& v : dc_verdicts) {
    if (v.type != ComponentType::kSpineLayer && v.type != ComponentType::kDc) continue;
    for (uint32_t d = 0; d < s.dcs.size(); ++d) {
      if (s.dcs[d].name != v.dc) continue;
      if (v.kind == "fabric_loss" || v.kind == "dc_loss") {
        dc_loss[d] = std::max(dc_loss[d], v.evidence.value("rate", 0.0));
      }
      if (v.kind == "fabric_latency" || v.kind == "dc_latency") dc_slow[d] = true;
    }
  }
  // What probes between the racks of each DC see: inter-DC probes cross the same spines, so a
  // link is blamed only for clearly more than that.
  std::vector<Counts> fabric(s.dcs.size());
  for (const auto& p : s.rack_pairs) {
    if (p.src != p.dst && s.racks[p.src].dc == s.racks[p.dst].dc && !blamed_racks[p.src] &&
        !blamed_racks[p.dst]) {
      fabric[s.racks[p.src].dc] += p.counts;
    }
  }
  for (uint32_t d = 0; d < s.dcs.size(); ++d) {
    dc_loss[d] = std::max(dc_loss[d], rate(fabric[d].lost, fabric[d].loss_base));
    dc_slow[d] = dc_slow[d] || rate(fabric[d].slow, fabric[d].ok) > o.slow_fraction;
  }
  std::vector<Verdict> out;
  for (const auto& link : s.links) {
    const Counts& c = link.counts;
    double loss_rate = rate(c.lost, c.loss_base);
    bool lossy = significantly_above(c.lost, c.loss_base, o.loss, o.significance) &&
                 loss_rate >= o.cross_ratio * std::max(dc_loss[link.a], dc_loss[link.b]);
    double shift = link.p50_us - link.baseline_p50_us;
    bool slow = !dc_slow[link.a] && !dc_slow[link.b] && link.baseline_p50_us > 0 &&
                c.ok >= o.interdc_min_answers &&
                shift >= std::max(o.interdc_shift_us, o.interdc_shift_ratio * link.baseline_p50_us);
    if (!lossy && !slow) continue;
    Verdict v;
    v.kind = "inter_dc_link";
    v.type = ComponentType::kInterDc;
    v.dc = s.dcs[link.a].name;
    v.peer_dc = s.dcs[link.b].name;
    if (v.peer_dc < v.dc) std::swap(v.dc, v.peer_dc);
    v.component = fmt::format("inter_dc:{}~{}", v.dc, v.peer_dc);
    double conf = 0;
    std::string what;
    if (lossy) {
      conf = confidence_above(c.lost, c.loss_base, o.loss, o.significance.z);
      what = fmt::format("loss {:.3f} % ({} of {})", 100 * loss_rate, c.lost, c.loss_base);
    }
    if (slow) {
      conf = std::max(conf, clamp_confidence(0.5 + 0.5 * std::min(1.0, shift / link.p50_us)));
      if (!what.empty()) what += ", ";
      what += fmt::format("median RTT {:.2f} ms vs {:.2f} ms usually", link.p50_us / 1000,
                          link.baseline_p50_us / 1000);
    }
    v.confidence = conf;
    v.summary = fmt::format("link between {} and {} degraded: {}", v.dc, v.peer_dc, what);
    v.evidence = {{"counts", counts_json(c)},
                  {"loss", loss_rate},
                  {"p50_us", link.p50_us},
                  {"baseline_p50_us", link.baseline_p50_us}};
    out.push_back(std::move(v));
  }
  return out;
}

namespace {

/// How far spine `c`'s loss stands out of the pooled loss of the other spines in `set` (a
/// two-proportion z score), or 0 when it does not: it must be significantly above the loss
/// threshold, at least twice the others' rate, and the others must have enough probes.
double stands_out(const SpineTrace& c, const std::vector<const SpineTrace*>& set,
                  const LocalizeOptions& o) {
  uint64_t n = 0, k = 0;
  for (const auto* t : set) {
    if (t == &c) continue;
    n += t->probes;
    k += t->lost;
  }
  if (n < o.significance.min_samples) return 0;
  if (!significantly_above(c.lost, c.probes, o.loss, o.significance)) return 0;
  double pc = static_cast<double>(c.lost) / static_cast<double>(c.probes);
  double pr = static_cast<double>(k) / static_cast<double>(n);
  if (pc < 2 * pr) return 0;
  double p = static_cast<double>(c.lost + k) / static_cast<double>(c.probes + n);
  double se =
      std::sqrt(p * (1 - p) * (1.0 / static_cast<double>(c.probes) + 1.0 / static_cast<double>(n)));
  double z = se > 0 ? (pc - pr) / se : 0;
  return z >= o.significance.z ? z : 0;
}

}  // namespace

std::vector<Verdict> narrow_to_spine(const Verdict& fabric, const std::vector<SpineTrace>& traces,
                                     const LocalizeOptions& o) {
  // A traced port's loss is its forward path's (through the spine the trace saw) plus its
  // return path's, which ECMP hashes independently onto any spine: a lossy spine raises every
  // spine's rate a little (1/S of its loss) and its own by its whole loss. So the lossy spine is
  // the one that stands out of the others, not the one above the threshold.
  std::vector<const SpineTrace*> all;
  for (const auto& t : traces) all.push_back(&t);
  const SpineTrace* best = nullptr;
  double best_z = 0;
  for (const auto* t : all) {
    double z = stands_out(*t, all, o);
    if (z > best_z) {
      best_z = z;
      best = t;
    }
  }
  if (best == nullptr) return {};
  // A second spine standing out of the rest: more than one spine, the layer.
  std::vector<const SpineTrace*> rest;
  for (const auto* t : all) {
    if (t != best) rest.push_back(t);
  }
  for (const auto* t : rest) {
    if (stands_out(*t, rest, o) > 0) return {};
  }
  std::vector<const SpineTrace*> bad{best};
  Verdict v = fabric;
  v.type = ComponentType::kSpine;
  v.component = fmt::format("spine:{}/{}", fabric.dc, bad[0]->spine);
  v.confidence = confidence_above(bad[0]->lost, bad[0]->probes, o.loss, o.significance.z);
  auto per_spine = nlohmann::json::array();
  for (const auto& t : traces) {
    per_spine.push_back({{"spine", t.spine}, {"probes", t.probes}, {"lost", t.lost}});
  }
  v.summary = fmt::format("spine {} of {} drops packets: {} of {} traced probes through it lost",
                          bad[0]->spine, fabric.dc, bad[0]->lost, bad[0]->probes);
  v.evidence = {{"traceroute", per_spine}, {"fabric", fabric.evidence}};
  return {v};
}

std::vector<Verdict> localize(const Snapshot& snapshot, const LocalizeOptions& options) {
  std::vector<bool> down_servers, down_racks, problem_servers;
  auto out = find_down(snapshot, options, &down_servers, &down_racks);
  auto problems = find_server_problems(snapshot, options, down_servers, &problem_servers);
  std::vector<bool> blamed = down_racks;
  auto holes = find_black_holes(snapshot, options, down_servers, &blamed);
  auto fabric = find_rack_and_fabric(snapshot, options, &blamed);
  auto links = find_inter_dc(snapshot, options, fabric, blamed);
  for (auto* part : {&problems, &holes, &fabric, &links}) {
    for (auto& v : *part) out.push_back(std::move(v));
  }
  return out;
}

}  // namespace pingmesh::analyze
