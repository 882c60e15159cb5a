#include "analyze/simulate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "collector/aggregator.hpp"
#include "collector/names.hpp"
#include "pinglist/generator.hpp"

namespace pingmesh::analyze::sim {

namespace {

constexpr std::string_view kKindNames[] = {"server_down", "tor_down",     "tor_black_hole",
                                           "spine_drop",  "uplink_delay", "inter_dc"};
constexpr int64_t kTimeoutMs = 5000;                  ///< the agent's probe timeout
constexpr int64_t kSynOffsetsMs[] = {0, 1000, 3000};  ///< SYN retransmissions (RTO 1 s, doubled)
constexpr double kBaseLossPerCrossing = 5e-6;
constexpr double kSpikeProbability = 1e-4;
constexpr uint16_t kPort = 9001;

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t mix(uint64_t a, uint64_t b) { return mix(a ^ mix(b)); }

/// SplitMix64.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() { return mix(state += 0x9e3779b97f4a7c15ULL); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double normal() {
    double u = std::max(uniform(), 1e-300), v = uniform();
    return std::sqrt(-2 * std::log(u)) * std::cos(2 * M_PI * v);
  }
};

/// The fabric and the probe plan, built once and shared read-only by the workers.
struct Net {
  FabricSpec spec;
  std::vector<std::string> dc_names;
  std::vector<std::string> rack_names;           ///< global rack index = dc * racks_per_dc + rack
  std::vector<std::string> names;                ///< per server (plan order)
  std::vector<uint32_t> dc, rack, ip;            ///< per server
  std::vector<std::vector<uint32_t>> targets;    ///< per server: pinglist targets
  std::vector<std::vector<uint32_t>> phases;     ///< per server and target: probe phase (ms)
  std::vector<std::vector<uint32_t>> by_second;  ///< servers whose batch phase is in second s
  std::vector<uint32_t> batch_phase;
  std::vector<double> inter_dc_ms;  ///< base RTT between DCs [a * dcs + b]
};

Net build_net(const SimOptions& o) {
  Net net;
  net.spec = o.fabric;
  const auto& f = o.fabric;
  auto topo = std::make_shared<model::Topology>();
  topo->rules = model::default_rules();
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>> placement;
  for (int d = 0; d < f.dcs; ++d) {
    model::Datacenter dc;
    dc.name = fmt::format("dc{}", d);
    dc.ipv6 = false;
    dc.inter_dc_servers = static_cast<uint32_t>(f.inter_dc_servers);
    dc.interval_ms = static_cast<uint32_t>(o.probe_interval_ms);
    topo->dcs.push_back(dc);
    net.dc_names.push_back(dc.name);
    for (int r = 0; r < f.racks_per_dc; ++r) {
      model::Rack rack;
      rack.dc = dc.name;
      rack.name = fmt::format("{}-r{:03}", dc.name, r);
      topo->racks.push_back(rack);
      net.rack_names.push_back(rack.name);
      for (int s = 0; s < f.servers_per_rack; ++s) {
        model::Server srv;
        srv.name = fmt::format("{}-s{:02}", rack.name, s);
        srv.dc = dc.name;
        srv.rack = rack.name;
        srv.addresses.push_back(
            *net::IpAddress::parse(fmt::format("10.{}.{}.{}", d, r % 256, (r / 256) * 64 + s + 1)));
        srv.last_seen_ms = 1;
        placement[srv.name] = {static_cast<uint32_t>(d),
                               static_cast<uint32_t>(d * f.racks_per_dc + r)};
        topo->servers.push_back(std::move(srv));
      }
    }
  }
  pinglist::Liveness alive(topo->servers.size(), true);
  auto plan = pinglist::generate(topo, alive);
  std::size_t n = plan.servers.size();
  net.names.resize(n);
  net.dc.resize(n);
  net.rack.resize(n);
  net.ip.resize(n);
  net.targets.resize(n);
  net.phases.resize(n);
  net.batch_phase.resize(n);
  net.by_second.resize(static_cast<std::size_t>((o.batch_ms + 999) / 1000));
  std::vector<pinglist::CompactEntry> entries;
  for (uint32_t i = 0; i < n; ++i) {
    const auto& s = *plan.servers[i];
    // expected_component() names servers by construction order; the plan's order (by name)
    // must be the same.
    if (s.name != topo->servers[i].name) {
      throw std::invalid_argument("simulator: fabric too large for its naming scheme");
    }
    net.names[i] = s.name;
    auto [d, r] = placement.at(s.name);
    net.dc[i] = d;
    net.rack[i] = r;
    net.ip[i] = static_cast<uint32_t>(mix(i) & 0xffffffffu);
    entries_of(plan, i, &entries);
    for (const auto& e : entries) {
      for (std::size_t p = 0; p < plan.probe_sets[e.probes].size(); ++p) {
        net.targets[i].push_back(e.target);
        net.phases[i].push_back(static_cast<uint32_t>(mix(i, e.target * 7 + p) %
                                                      static_cast<uint64_t>(o.probe_interval_ms)));
      }
    }
    net.batch_phase[i] = static_cast<uint32_t>(mix(i, 0xba7c) % static_cast<uint64_t>(o.batch_ms));
    net.by_second[net.batch_phase[i] / 1000].push_back(i);
  }
  net.inter_dc_ms.resize(static_cast<std::size_t>(f.dcs * f.dcs));
  for (int a = 0; a < f.dcs; ++a) {
    for (int b = 0; b < f.dcs; ++b) {
      net.inter_dc_ms[static_cast<std::size_t>(a * f.dcs + b)] = 2.0 + 3.0 * std::abs(a - b);
    }
  }
  return net;
}

/// One scenario's faults, with fast lookups.
struct Faults {
  std::vector<Fault> list;
  bool active(const Fault& f, int64_t t) const { return t >= f.start_ms; }
  bool server_dead(const Net& net, uint32_t s, int64_t t) const {
    for (const auto& f : list) {
      if (!active(f, t)) continue;
      if (f.kind == FaultKind::kServerDown && f.server == s) return true;
      if (f.kind == FaultKind::kTorDown && f.rack == net.rack[s]) return true;
    }
    return false;
  }
};

struct ProbeOutcome {
  v1::Outcome outcome = v1::OK;
  uint32_t rtt_us = 0;
  uint32_t retransmits = 0;
  int64_t done_ms = 0;
};

/// Standard normal quantiles at (i + 0.5) / 4096 and exp(0.709 x) of them (a lognormal with
/// P99 = 5.2 x median), so a probe draws from a table instead of calling log/cos/exp.
struct Tables {
  std::array<double, 4096> normal{};
  std::array<double, 4096> lognormal{};
  Tables() {
    Rng rng(42);
    std::vector<double> samples(1 << 20);
    for (auto& x : samples) x = rng.normal();
    std::sort(samples.begin(), samples.end());
    for (std::size_t i = 0; i < normal.size(); ++i) {
      normal[i] = samples[(2 * i + 1) * samples.size() / (2 * normal.size())];
      lognormal[i] = std::exp(0.709 * normal[i]);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

double lognormal_us(Rng& rng, double median_us) {
  return median_us * tables().lognormal[rng.next() & 4095];
}

ProbeOutcome probe(const Net& net, const Faults& faults, uint32_t src, uint32_t dst,
                   int64_t start_ms, uint64_t seed) {
  Rng rng(
      mix(seed, (static_cast<uint64_t>(src) << 32 | dst) ^ mix(static_cast<uint64_t>(start_ms))));
  ProbeOutcome out;
  if (faults.server_dead(net, dst, start_ms)) {
    out.outcome = v1::TIMEOUT;
    out.retransmits = 2;
    out.done_ms = start_ms + kTimeoutMs;
    return out;
  }
  const auto& spec = net.spec;
  bool same_rack = net.rack[src] == net.rack[dst];
  bool same_dc = net.dc[src] == net.dc[dst];
  uint32_t sport = 1024 + static_cast<uint32_t>(rng.next() % 60000);
  uint64_t fwd = mix(mix(net.ip[src], net.ip[dst]), (static_cast<uint64_t>(sport) << 16) | kPort);
  uint64_t rev = mix(mix(net.ip[dst], net.ip[src]), (static_cast<uint64_t>(kPort) << 16) | sport);
  auto spines = static_cast<uint64_t>(spec.spines_per_dc);
  // Spines crossed: forward in the source DC (and the destination DC when inter-DC), reverse
  // likewise with the reverse flow's hash.
  uint32_t fwd_src_spine = static_cast<uint32_t>(fwd % spines);
  uint32_t fwd_dst_spine = static_cast<uint32_t>((fwd >> 20) % spines);
  uint32_t rev_dst_spine = static_cast<uint32_t>(rev % spines);
  uint32_t rev_src_spine = static_cast<uint32_t>((rev >> 20) % spines);
  uint64_t pair_hash = mix(std::min(src, dst), std::max(src, dst));

  double extra_us = 0;
  double drop_fwd = 0, drop_rev = 0;  // per-crossing drop probabilities of the faults
  bool black_hole = false;
  for (const auto& f : faults.list) {
    if (!faults.active(f, start_ms)) continue;
    switch (f.kind) {
      case FaultKind::kTorBlackHole:
        if ((net.rack[src] == f.rack || net.rack[dst] == f.rack) &&
            static_cast<double>(pair_hash >> 11) * 0x1.0p-53 < f.fraction) {
          black_hole = true;
        }
        break;
      case FaultKind::kSpineDrop: {
        if (same_rack) break;
        auto add = [&](double* p) { *p = 1 - (1 - *p) * (1 - f.fraction); };
        bool src_dc = net.dc[src] == f.dc, dst_dc = net.dc[dst] == f.dc;
        if (same_dc) {
          if (src_dc && fwd_src_spine == f.spine) add(&drop_fwd);
          if (src_dc && rev_dst_spine == f.spine) add(&drop_rev);
        } else {
          if (src_dc && fwd_src_spine == f.spine) add(&drop_fwd);
          if (dst_dc && fwd_dst_spine == f.spine) add(&drop_fwd);
          if (dst_dc && rev_dst_spine == f.spine) add(&drop_rev);
          if (src_dc && rev_src_spine == f.spine) add(&drop_rev);
        }
        break;
      }
      case FaultKind::kUplinkDelay:
        if (!same_rack && (net.rack[src] == f.rack || net.rack[dst] == f.rack)) {
          extra_us += f.delay_us;
        }
        break;
      case FaultKind::kInterDc:
        if ((net.dc[src] == f.dc && net.dc[dst] == f.peer_dc) ||
            (net.dc[src] == f.peer_dc && net.dc[dst] == f.dc)) {
          extra_us += f.delay_us;
          drop_fwd = 1 - (1 - drop_fwd) * (1 - f.fraction);
          drop_rev = 1 - (1 - drop_rev) * (1 - f.fraction);
        }
        break;
      default:
        break;
    }
  }
  int crossings = same_rack ? 1 : (same_dc ? 3 : 5);
  double base_loss = kBaseLossPerCrossing * crossings;
  int attempt = 0;
  for (; attempt < 3; ++attempt) {
    if (black_hole) continue;
    bool syn = rng.uniform() >= base_loss && (drop_fwd == 0 || rng.uniform() >= drop_fwd);
    bool ack = syn && rng.uniform() >= base_loss && (drop_rev == 0 || rng.uniform() >= drop_rev);
    if (ack) break;
  }
  if (attempt == 3) {
    out.outcome = v1::TIMEOUT;
    out.retransmits = 2;
    out.done_ms = start_ms + kTimeoutMs;
    return out;
  }
  double rtt = lognormal_us(rng, same_rack ? 150 : 250) + extra_us;
  if (!same_dc) {
    rtt += 1000 * net.inter_dc_ms[net.dc[src] * static_cast<uint32_t>(spec.dcs) + net.dc[dst]] *
           (1 + 0.02 * tables().normal[rng.next() & 4095]);
  }
  if (rng.uniform() < kSpikeProbability) rtt += 2000 + 18000 * rng.uniform();
  rtt = std::max(rtt, 20.0);
  out.retransmits = static_cast<uint32_t>(attempt);
  out.outcome = attempt == 0 ? v1::OK : v1::DROP;
  out.rtt_us = static_cast<uint32_t>(rtt + 1000.0 * static_cast<double>(kSynOffsetsMs[attempt]));
  out.done_ms = start_ms + kSynOffsetsMs[attempt] + static_cast<int64_t>(rtt / 1000);
  return out;
}

/// Drives one engine through simulated time.
class Runner {
 public:
  Runner(const Net& net, const SimOptions& o, Engine* engine, uint64_t seed)
      : net_(net), o_(o), engine_(engine), seed_(seed) {
    if (o.with_collector) {
      aggregator_ =
          std::make_unique<collector::Aggregator>(collector::AggregatorOptions{}, &names_);
    }
  }

  /// Simulates (from_ms, to_ms]; calls on_events after each evaluation.
  void run(const Faults& faults, int64_t from_ms, int64_t to_ms,
           const std::function<void(int64_t, const std::vector<AlertEvent>&)>& on_events) {
    std::vector<AlertEvent> events;
    for (int64_t t = from_ms + 1000; t <= to_ms; t += 1000) {
      // Batches due in [t - 1 s, t) arrive at t.
      int64_t lo = t - 1000;
      int64_t second = (lo / 1000) % static_cast<int64_t>(net_.by_second.size());
      for (uint32_t s : net_.by_second[static_cast<std::size_t>(second)]) {
        int64_t b = lo - lo % o_.batch_ms + net_.batch_phase[s];
        if (b < lo) b += o_.batch_ms;
        if (b >= t || faults.server_dead(net_, s, b)) continue;
        send_batch(faults, s, b, t);
      }
      if (t % o_.evaluate_ms == 0) {
        events.clear();
        engine_->evaluate(t, &events);
        if (aggregator_) aggregator_->close(t / 1000);
        on_events(t, events);
        if (o_.traces) trace_rounds(faults, t);
      }
    }
  }

  uint64_t results() const { return results_; }
  int rounds() const { return rounds_; }
  uint64_t collector_accepted() const { return collector_accepted_; }
  uint64_t collector_rejected() const { return collector_rejected_; }

 private:
  void send_batch(const Faults& faults, uint32_t s, int64_t b, int64_t now_ms) {
    batch_.Clear();
    batch_.set_agent(net_.names[s]);
    batch_.set_dc(net_.dc_names[net_.dc[s]]);
    batch_.set_rack(net_.rack_names[net_.rack[s]]);
    batch_.set_batch_id(static_cast<uint64_t>(b));
    const auto& targets = net_.targets[s];
    const auto& phases = net_.phases[s];
    int64_t interval = o_.probe_interval_ms;
    for (std::size_t k = 0; k < targets.size(); ++k) {
      int64_t last = b - ((b - phases[k]) % interval + interval) % interval;
      int peer = -1;
      for (int64_t start : {last - interval, last}) {
        if (start < 0) continue;
        auto r = probe(net_, faults, s, targets[k], start, seed_);
        if (r.done_ms <= b - o_.batch_ms || r.done_ms > b) continue;
        if (peer < 0) {
          peer = batch_.peers_size();
          auto* p = batch_.add_peers();
          uint32_t t = targets[k];
          p->set_name(net_.names[t]);
          p->set_dc(net_.dc_names[net_.dc[t]]);
          p->set_rack(net_.rack_names[net_.rack[t]]);
        }
        auto* res = batch_.add_results();
        res->set_peer(static_cast<uint32_t>(peer));
        res->set_timestamp_us(start * 1000);
        res->set_protocol(v1::TCP);
        res->set_port(kPort);
        res->set_level(net_.rack[s] == net_.rack[targets[k]] ? v1::INTRA_RACK
                       : net_.dc[s] == net_.dc[targets[k]]   ? v1::INTRA_DC
                                                             : v1::INTER_DC);
        res->set_outcome(r.outcome);
        if (r.outcome == v1::OK || r.outcome == v1::DROP) res->set_rtt_us(r.rtt_us);
        res->set_retransmits(r.retransmits);
      }
    }
    results_ += static_cast<uint64_t>(batch_.results_size());
    engine_->observe(batch_, now_ms);
    if (aggregator_) {
      auto counts = aggregator_->add(batch_, now_ms * 1000);
      collector_accepted_ += counts.accepted;
      collector_rejected_ += counts.rejected_total();
    }
  }

  /// Plans a round for each DC with a fabric_loss verdict (at most one per
  /// trace.min_interval_ms) and hands the engine the results of rounds that are due.
  void trace_rounds(const Faults& faults, int64_t now_ms) {
    for (const auto& rec : engine_->verdicts(/*active_only=*/true, 0)) {
      if (rec.verdict.kind != "fabric_loss") continue;
      auto& st = trace_state_[rec.verdict.dc];
      if (st.due_ms == 0 && now_ms >= st.next_ms) {
        st.due_ms = now_ms + o_.trace_delay_ms;
        st.next_ms = now_ms + o_.trace.min_interval_ms;
      }
    }
    bool changed = false;
    for (auto& [dc, st] : trace_state_) {
      if (st.due_ms == 0 || now_ms < st.due_ms) continue;
      st.due_ms = 0;
      auto it = std::find(net_.dc_names.begin(), net_.dc_names.end(), dc);
      if (it == net_.dc_names.end()) continue;
      auto& rounds = rounds_of_[dc];
      rounds.push_back(
          trace_round(faults, static_cast<uint32_t>(it - net_.dc_names.begin()), now_ms));
      ++rounds_;
      changed = true;
    }
    if (!changed) return;
    // As the coordinator does: the engine sees, per spine, the sum of the rounds of the last
    // trace.result_ttl_ms.
    std::map<std::string, DcTraces> all;
    for (auto& [dc, rounds] : rounds_of_) {
      std::erase_if(rounds, [&](const DcTraces& r) {
        return r.updated_ms + o_.trace.result_ttl_ms < now_ms;
      });
      DcTraces sum;
      for (const auto& r : rounds) {
        for (const auto& t : r.spines) {
          auto at = std::find_if(sum.spines.begin(), sum.spines.end(),
                                 [&](const SpineTrace& x) { return x.spine == t.spine; });
          if (at == sum.spines.end()) {
            sum.spines.push_back(t);
          } else {
            at->probes += t.probes;
            at->lost += t.lost;
          }
        }
        sum.updated_ms = std::max(sum.updated_ms, r.updated_ms);
      }
      sum.evidence = {{"rounds", rounds.size()}, {"simulated", true}};
      if (!rounds.empty()) all[dc] = std::move(sum);
    }
    engine_->set_spine_traces(std::move(all));
  }

  /// One round in DC d: trace.pairs sources in distinct racks, each to a server of another rack,
  /// from trace.ports fixed source ports; each port's forward path crosses the spine its ECMP
  /// hash picks (what the traceroute's hops show), and its trace.loss_probes full-TTL probes are
  /// lost on the forward or the reverse crossing (the reply may take another spine).
  DcTraces trace_round(const Faults& faults, uint32_t d, int64_t now_ms) {
    Rng rng(mix(seed_, mix(static_cast<uint64_t>(now_ms), d + 0x7ace)));
    std::vector<uint32_t> in_dc;
    for (uint32_t i = 0; i < net_.dc.size(); ++i) {
      if (net_.dc[i] == d) in_dc.push_back(i);
    }
    auto spines = static_cast<uint64_t>(net_.spec.spines_per_dc);
    std::vector<SpineTrace> per(spines);
    for (uint64_t k = 0; k < spines; ++k) per[k].spine = fmt::format("s{}", k);
    std::vector<uint32_t> used_racks;
    for (uint32_t pair = 0, tries = 0; pair < o_.trace.pairs && tries < 1000; ++tries) {
      uint32_t src = in_dc[rng.next() % in_dc.size()];
      uint32_t dst = in_dc[rng.next() % in_dc.size()];
      if (net_.rack[src] == net_.rack[dst] || faults.server_dead(net_, src, now_ms) ||
          faults.server_dead(net_, dst, now_ms) ||
          std::find(used_racks.begin(), used_racks.end(), net_.rack[src]) != used_racks.end()) {
        continue;
      }
      used_racks.push_back(net_.rack[src]);
      ++pair;
      for (uint32_t port = o_.trace.first_port; port < o_.trace.first_port + o_.trace.ports;
           ++port) {
        uint64_t fwd = mix(mix(net_.ip[src], net_.ip[dst]), (uint64_t{port} << 16) | kPort);
        uint64_t rev = mix(mix(net_.ip[dst], net_.ip[src]), (uint64_t{kPort} << 16) | port);
        uint64_t fwd_spine = fwd % spines, rev_spine = rev % spines;
        double keep = 1;
        for (const auto& f : faults.list) {
          if (f.kind != FaultKind::kSpineDrop || f.dc != d || !faults.active(f, now_ms)) continue;
          if (f.spine == fwd_spine) keep *= 1 - f.fraction;
          if (f.spine == rev_spine) keep *= 1 - f.fraction;
        }
        auto& t = per[fwd_spine];
        for (uint32_t n = 0; n < o_.trace.loss_probes; ++n) {
          ++t.probes;
          if (rng.uniform() >= keep) ++t.lost;
        }
      }
    }
    DcTraces out;
    for (auto& t : per) {
      if (t.probes > 0) out.spines.push_back(std::move(t));
    }
    out.updated_ms = now_ms;
    return out;
  }

  struct TraceState {
    int64_t next_ms = 0;  ///< no new round before
    int64_t due_ms = 0;   ///< a planned round's results arrive (0: none planned)
  };

  const Net& net_;
  const SimOptions& o_;
  Engine* engine_;
  uint64_t seed_;
  std::map<std::string, TraceState> trace_state_;
  std::map<std::string, std::vector<DcTraces>> rounds_of_;  ///< per DC, newest last
  int rounds_ = 0;
  v1::ResultBatch batch_;
  uint64_t results_ = 0;
  uint64_t collector_accepted_ = 0, collector_rejected_ = 0;
  collector::Names names_;
  std::unique_ptr<collector::Aggregator> aggregator_;
};

/// True when two faults may be injected together: different components, and a server fault
/// not under a rack fault.
bool compatible(const Fault& a, const Fault& b, const Net& net) {
  auto rack_level = [](FaultKind k) {
    return k == FaultKind::kTorDown || k == FaultKind::kTorBlackHole ||
           k == FaultKind::kUplinkDelay;
  };
  if (expected_component(a, net.spec) == expected_component(b, net.spec)) return false;
  if (rack_level(a.kind) && rack_level(b.kind) && a.rack == b.rack) return false;
  if (a.kind == FaultKind::kServerDown && rack_level(b.kind) && net.rack[a.server] == b.rack) {
    return false;
  }
  if (b.kind == FaultKind::kServerDown && rack_level(a.kind) && net.rack[b.server] == a.rack) {
    return false;
  }
  return true;
}

Fault random_fault(const Net& net, const SimOptions& o, Rng& rng) {
  const auto& f = net.spec;
  std::vector<FaultKind> kinds = o.kinds;
  if (kinds.empty()) {
    for (int k = 0; k < kFaultKinds; ++k) kinds.push_back(static_cast<FaultKind>(k));
  }
  Fault fault;
  fault.kind = kinds[rng.next() % kinds.size()];
  fault.dc = static_cast<uint32_t>(rng.next() % static_cast<uint64_t>(f.dcs));
  fault.rack = fault.dc * static_cast<uint32_t>(f.racks_per_dc) +
               static_cast<uint32_t>(rng.next() % static_cast<uint64_t>(f.racks_per_dc));
  fault.server = static_cast<uint32_t>(rng.next() % net.names.size());
  fault.spine = static_cast<uint32_t>(rng.next() % static_cast<uint64_t>(f.spines_per_dc));
  fault.peer_dc = static_cast<uint32_t>(
      (fault.dc + 1 + rng.next() % static_cast<uint64_t>(std::max(1, f.dcs - 1))) %
      static_cast<uint64_t>(f.dcs));
  switch (fault.kind) {
    case FaultKind::kTorBlackHole:
      fault.fraction = 0.05 + 0.45 * rng.uniform();
      break;
    case FaultKind::kSpineDrop:
      fault.fraction = 0.01 + 0.01 * rng.uniform();
      break;
    case FaultKind::kUplinkDelay:
      fault.delay_us = static_cast<uint32_t>(5000 + 15000 * rng.uniform());
      break;
    case FaultKind::kInterDc: {
      uint64_t variant = rng.next() % 3;  // latency, loss, both
      if (variant != 1) fault.delay_us = static_cast<uint32_t>(5000 + 25000 * rng.uniform());
      if (variant != 0) fault.fraction = 0.01 + 0.02 * rng.uniform();
      break;
    }
    default:
      break;
  }
  fault.start_ms = o.warmup_ms + static_cast<int64_t>(rng.next() % 10000);
  return fault;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(std::min<double>(
      static_cast<double>(v.size() - 1), std::floor(q * static_cast<double>(v.size() - 1) + 0.5)));
  return v[i];
}

}  // namespace

std::string_view to_string(FaultKind k) { return kKindNames[static_cast<int>(k)]; }

std::optional<FaultKind> parse_fault_kind(std::string_view s) {
  for (int i = 0; i < kFaultKinds; ++i) {
    if (kKindNames[i] == s) return static_cast<FaultKind>(i);
  }
  return std::nullopt;
}

std::string expected_component(const Fault& f, const FabricSpec& fabric) {
  auto dc = [](uint32_t d) { return fmt::format("dc{}", d); };
  auto rack = [&](uint32_t r) {
    uint32_t d = r / static_cast<uint32_t>(fabric.racks_per_dc);
    return fmt::format("rack:{}/{}-r{:03}", dc(d), dc(d),
                       r % static_cast<uint32_t>(fabric.racks_per_dc));
  };
  switch (f.kind) {
    case FaultKind::kServerDown: {
      uint32_t per_rack = static_cast<uint32_t>(fabric.servers_per_rack);
      // Plan order is by name, which is the construction order (zero-padded names).
      uint32_t r = f.server / per_rack;
      uint32_t d = r / static_cast<uint32_t>(fabric.racks_per_dc);
      return fmt::format("server:{}-r{:03}-s{:02}", dc(d),
                         r % static_cast<uint32_t>(fabric.racks_per_dc), f.server % per_rack);
    }
    case FaultKind::kTorDown:
    case FaultKind::kTorBlackHole:
    case FaultKind::kUplinkDelay:
      return rack(f.rack);
    case FaultKind::kSpineDrop:
      return "spine_layer:" + dc(f.dc);
    case FaultKind::kInterDc: {
      auto a = dc(f.dc), b = dc(f.peer_dc);
      return fmt::format("inter_dc:{}~{}", std::min(a, b), std::max(a, b));
    }
  }
  return {};
}

std::string narrower_component(const Fault& f, const FabricSpec& fabric) {
  (void)fabric;
  if (f.kind != FaultKind::kSpineDrop) return {};
  return fmt::format("spine:dc{}/s{}", f.dc, f.spine);
}

SimReport run(const SimOptions& o, const std::function<void(int, int)>& progress) {
  auto wall_start = std::chrono::steady_clock::now();
  tables();
  Net net = build_net(o);
  SimReport report;
  report.servers = static_cast<uint32_t>(net.names.size());

  // Warm-up: healthy data until the windows are full.
  Engine warm(o.engine);
  std::vector<AlertEvent> ignored;
  warm.set_rules(default_alert_rules(), 0, &ignored);
  uint64_t warm_results = 0;
  {
    Runner runner(net, o, &warm, mix(o.seed, 0xa11));
    Faults none;
    runner.run(none, 0, o.warmup_ms, [&](int64_t t, const std::vector<AlertEvent>& events) {
      for (const auto& e : events) {
        if (e.kind == AlertEvent::Kind::kFiring) {
          ++report.warmup_alerts;
          if (report.examples.size() < 20) {
            auto it = e.alert.annotations.find("summary");
            report.examples.push_back(
                fmt::format("warm-up alert at {} s: {}", t / 1000,
                            it == e.alert.annotations.end() ? e.alert.fingerprint : it->second));
          }
        }
      }
    });
    warm_results = runner.results();
  }

  int total = o.scenarios + o.no_fault_scenarios;
  std::vector<ScenarioResult> results(static_cast<std::size_t>(total));
  std::atomic<int> next{0};
  std::mutex progress_mu;
  int done = 0;
  auto worker = [&] {
    while (true) {
      int i = next.fetch_add(1);
      if (i >= total) return;
      Rng rng(mix(o.seed, static_cast<uint64_t>(i) + 1));
      Faults faults;
      bool no_fault = i >= o.scenarios;
      if (!no_fault) {
        faults.list.push_back(random_fault(net, o, rng));
        if (rng.uniform() < o.double_fraction) {
          for (int tries = 0; tries < 100; ++tries) {
            Fault f = random_fault(net, o, rng);
            if (compatible(faults.list[0], f, net)) {
              faults.list.push_back(f);
              break;
            }
          }
        }
      }
      ScenarioResult& res = results[static_cast<std::size_t>(i)];
      res.faults = faults.list;
      for (const auto& f : faults.list) {
        res.expected.push_back(expected_component(f, o.fabric));
        res.narrower.push_back(narrower_component(f, o.fabric));
      }
      int64_t first_start = o.warmup_ms + 10000;
      for (const auto& f : faults.list) first_start = std::min(first_start, f.start_ms);
      Engine engine = warm;
      Runner runner(net, o, &engine, mix(o.seed, static_cast<uint64_t>(i) + 0x5eed));
      runner.run(faults, o.warmup_ms, first_start + o.horizon_ms,
                 [&](int64_t t, const std::vector<AlertEvent>& events) {
                   for (const auto& e : events) {
                     if (e.kind != AlertEvent::Kind::kFiring) continue;
                     if (!e.alert.rule.starts_with("localization/")) {
                       ++res.rule_alerts;
                       continue;
                     }
                     const auto& c = e.alert.labels.at("component");
                     if (res.reported.contains(c)) continue;
                     res.reported[c] = t - first_start;
                     res.kind_of[c] = e.alert.labels.at("kind");
                   }
                 });
      res.results = runner.results();
      res.trace_rounds = runner.rounds();
      res.collector_accepted = runner.collector_accepted();
      res.collector_rejected = runner.collector_rejected();
      if (progress) {
        std::lock_guard lock(progress_mu);
        progress(++done, total);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, o.threads); ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();

  std::vector<double> ttd, named;
  report.results = warm_results;
  for (int i = 0; i < total; ++i) {
    const auto& res = results[static_cast<std::size_t>(i)];
    report.results += res.results;
    report.collector_accepted += res.collector_accepted;
    report.collector_rejected += res.collector_rejected;
    if (i >= o.scenarios) {
      ++report.no_fault;
      int alarms = res.rule_alerts + static_cast<int>(res.reported.size());
      report.no_fault_false_alarms += alarms;
      if (alarms > 0 && report.examples.size() < 40) {
        std::string what;
        for (const auto& [c, t] : res.reported) what += " " + c;
        report.examples.push_back(
            fmt::format("no-fault scenario {}: {} rule alerts,{}", i, res.rule_alerts, what));
      }
      continue;
    }
    ++report.scenarios;
    (res.faults.size() == 1 ? report.single : report.double_) += 1;
    report.trace_rounds += res.trace_rounds;
    for (const auto& [component, t] : res.reported) {
      bool hit =
          std::find(res.expected.begin(), res.expected.end(), component) != res.expected.end() ||
          std::find(res.narrower.begin(), res.narrower.end(), component) != res.narrower.end();
      if (!hit) {
        ++report.false_positives;
        for (const auto& f : res.faults) ++report.per_kind[std::string(to_string(f.kind))][3];
        if (report.examples.size() < 40) {
          std::string faults;
          for (const auto& e : res.expected) faults += " " + e;
          report.examples.push_back(fmt::format(
              "scenario {}: false positive {} {} after {:.0f} s (faults:{})", i,
              res.kind_of.at(component), component, static_cast<double>(t) / 1000, faults));
        }
      }
    }
    for (std::size_t f = 0; f < res.faults.size(); ++f) {
      const auto& fault = res.faults[f];
      auto& pk = report.per_kind[std::string(to_string(fault.kind))];
      ++report.faults;
      ++pk[0];
      auto it = res.reported.find(res.expected[f]);
      auto finer =
          res.narrower[f].empty() ? res.reported.end() : res.reported.find(res.narrower[f]);
      if (fault.kind == FaultKind::kSpineDrop) {
        ++report.spine_faults;
        if (finer != res.reported.end()) {
          ++report.spine_named;
          int64_t first = fault.start_ms;
          for (const auto& g : res.faults) first = std::min(first, g.start_ms);
          named.push_back(static_cast<double>(finer->second - (fault.start_ms - first)) / 1000.0);
        }
      }
      if (it == res.reported.end() || (finer != res.reported.end() && finer->second < it->second)) {
        it = finer;
      }
      if (it == res.reported.end()) {
        ++report.false_negatives;
        if (report.examples.size() < 40) {
          std::string got;
          for (const auto& [c, t] : res.reported) got += " " + c;
          report.examples.push_back(fmt::format(
              "scenario {}: missed {} ({}, fraction {:.3f}, delay {} us); reported:{}", i,
              res.expected[f], to_string(fault.kind), fault.fraction, fault.delay_us, got));
        }
        continue;
      }
      ++report.true_positives;
      ++pk[1];
      // Reported times are relative to the first fault's start; make them relative to this one.
      int64_t first_start = fault.start_ms;
      for (const auto& g : res.faults) first_start = std::min(first_start, g.start_ms);
      double seconds = static_cast<double>(it->second - (fault.start_ms - first_start)) / 1000.0;
      ttd.push_back(seconds);
      if (seconds <= 30.0) {
        ++report.detected_within_30s;
        ++pk[2];
      }
    }
  }
  uint64_t reported = report.true_positives + report.false_positives;
  report.precision =
      reported == 0 ? 1.0
                    : static_cast<double>(report.true_positives) / static_cast<double>(reported);
  report.recall = report.faults == 0 ? 1.0
                                     : static_cast<double>(report.true_positives) /
                                           static_cast<double>(report.faults);
  report.recall_30s = report.faults == 0 ? 1.0
                                         : static_cast<double>(report.detected_within_30s) /
                                               static_cast<double>(report.faults);
  report.ttd_p50_s = percentile(ttd, 0.5);
  report.ttd_p95_s = percentile(ttd, 0.95);
  report.ttd_max_s = ttd.empty() ? 0 : *std::max_element(ttd.begin(), ttd.end());
  report.spine_named_p50_s = percentile(named, 0.5);
  report.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return report;
}

nlohmann::json to_json(const SimReport& r) {
  nlohmann::json per_kind = nlohmann::json::object();
  for (const auto& [k, v] : r.per_kind) {
    per_kind[k] = {{"faults", v[0]},
                   {"detected", v[1]},
                   {"within_30s", v[2]},
                   {"false_positives_in_scenarios", v[3]}};
  }
  return {{"servers", r.servers},
          {"scenarios", r.scenarios},
          {"single_fault", r.single},
          {"double_fault", r.double_},
          {"no_fault_scenarios", r.no_fault},
          {"faults", r.faults},
          {"true_positives", r.true_positives},
          {"false_positives", r.false_positives},
          {"false_negatives", r.false_negatives},
          {"precision", r.precision},
          {"recall", r.recall},
          {"recall_within_30s", r.recall_30s},
          {"time_to_alert_s", {{"p50", r.ttd_p50_s}, {"p95", r.ttd_p95_s}, {"max", r.ttd_max_s}}},
          {"no_fault_false_alarms", r.no_fault_false_alarms},
          {"warmup_alerts", r.warmup_alerts},
          {"results", r.results},
          {"collector_accepted", r.collector_accepted},
          {"collector_rejected", r.collector_rejected},
          {"wall_s", r.wall_s},
          {"spine_drops",
           {{"faults", r.spine_faults},
            {"spine_named", r.spine_named},
            {"spine_named_p50_s", r.spine_named_p50_s},
            {"trace_rounds", r.trace_rounds}}},
          {"per_kind", per_kind},
          {"examples", r.examples}};
}

std::string format_report(const SimReport& r, const SimOptions& o) {
  std::string out = fmt::format(
      "fabric: {} DCs x {} racks x {} servers = {} servers, {} spines per DC, {} inter-DC "
      "servers per DC\n"
      "scenarios: {} ({} single, {} double fault) + {} without fault; seed {}\n"
      "probe results simulated: {} in {:.1f} s wall\n"
      "precision {:.2f} %  recall {:.2f} %  recall within 30 s {:.2f} %\n"
      "time from fault start to firing alert: p50 {:.1f} s, p95 {:.1f} s, max {:.1f} s\n"
      "false alarms: {} in no-fault scenarios, {} during warm-up\n",
      o.fabric.dcs, o.fabric.racks_per_dc, o.fabric.servers_per_rack, r.servers,
      o.fabric.spines_per_dc, o.fabric.inter_dc_servers, r.scenarios, r.single, r.double_,
      r.no_fault, o.seed, r.results, r.wall_s, 100 * r.precision, 100 * r.recall,
      100 * r.recall_30s, r.ttd_p50_s, r.ttd_p95_s, r.ttd_max_s, r.no_fault_false_alarms,
      r.warmup_alerts);
  out += fmt::format("{:<16} {:>7} {:>9} {:>11} {:>18}\n", "fault", "faults", "detected",
                     "within 30s", "FP in scenarios");
  for (const auto& [k, v] : r.per_kind) {
    out += fmt::format("{:<16} {:>7} {:>9} {:>11} {:>18}\n", k, v[0], v[1], v[2], v[3]);
  }
  if (r.spine_faults > 0) {
    out += o.traces ? fmt::format(
                          "spine drops narrowed to the spine by traceroute: {} of {} "
                          "(p50 {:.1f} s after the fault started; {} trace rounds)\n",
                          r.spine_named, r.spine_faults, r.spine_named_p50_s, r.trace_rounds)
                    : std::string("spine drops: traceroutes off (--no-traces)\n");
  }
  if (o.with_collector) {
    out += fmt::format("collector aggregator: {} results accepted, {} rejected\n",
                       r.collector_accepted, r.collector_rejected);
  }
  for (const auto& e : r.examples) out += "  " + e + "\n";
  return out;
}

}  // namespace pingmesh::analyze::sim
