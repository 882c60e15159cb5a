#pragma once
/// Fault localization: pure functions from a snapshot of the recent windows (plain values) to
/// verdicts naming the suspected component, with a confidence and the evidence (pairs and
/// numbers). The patterns are the paper's: server down vs. server-side problem, rack (ToR) down
/// (white cross) and rack with a problem (red cross), ToR black holes scored by the fraction of
/// their servers with the symptom, silent random drops spread over a DC's rack pairs ("red but
/// for the diagonal": the spine layer), DC-wide latency, and inter-DC link degradation.
/// See docs/ANALYZER.md for the rules and their thresholds.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "analyze/significance.hpp"

namespace pingmesh::analyze {

/// Counters over a window.
struct Counts {
  uint64_t probes = 0;
  uint64_t answered = 0;   ///< OK + DROP
  uint64_t failures = 0;   ///< TIMEOUT + REFUSED + ERROR
  uint64_t lost = 0;       ///< loss numerator (the paper's rule)
  uint64_t loss_base = 0;  ///< loss denominator
  uint64_t ok = 0;         ///< answered at once (their RTTs are measured)
  uint64_t slow = 0;       ///< OK answers slower than the slow threshold
  Counts& operator+=(const Counts& o);
};

/// A server in the snapshot.
struct ServerInfo {
  std::string name;
  uint32_t dc = 0;
  uint32_t rack = 0xffffffffu;  ///< index into Snapshot::racks, or none
  bool known = false;           ///< in the topology, or seen before the window
  int64_t batch_age_ms = -1;    ///< since its last batch arrived; -1 = never
  int64_t answer_age_ms = -1;   ///< since a probe it answered last arrived; -1 = never
  Counts as_src;
  Counts as_dst;
};

/// A rack (ToR) in the snapshot.
struct RackInfo {
  std::string name;
  uint32_t dc = 0;
  std::vector<uint32_t> servers;  ///< indices into Snapshot::servers
};

/// A DC in the snapshot.
struct DcInfo {
  std::string name;
  std::vector<uint32_t> racks;  ///< indices into Snapshot::racks
};

/// Probes from rack `src` to rack `dst` (indices into Snapshot::racks).
struct RackPair {
  uint32_t src = 0;
  uint32_t dst = 0;
  Counts counts;
};

/// Probes between two DCs (both directions), with the median RTT now and its learned baseline.
struct DcLink {
  uint32_t a = 0;  ///< a < b, indices into Snapshot::dcs
  uint32_t b = 0;
  Counts counts;
  double p50_us = 0;           ///< median RTT in the window (0 = no answers)
  double baseline_p50_us = 0;  ///< learned when healthy (0 = not yet known)
};

/// A pair whose probes failed in the window.
struct FailingPair {
  uint32_t src = 0;  ///< indices into Snapshot::servers
  uint32_t dst = 0;
  uint32_t failures = 0;
  uint32_t successes_after = 0;  ///< answered probes of the pair after its first failure
  /// src got answers from others after the pair's first failure, in a streak that began before
  /// its last failure; dst likewise answered others.
  bool src_reaches_others = false;
  bool dst_answers_others = false;
};

/// Everything the detectors look at.
struct Snapshot {
  std::vector<DcInfo> dcs;
  std::vector<RackInfo> racks;
  std::vector<ServerInfo> servers;
  std::vector<RackPair> rack_pairs;
  std::vector<DcLink> links;
  std::vector<FailingPair> failing;
};

/// Thresholds of the detectors.
struct LocalizeOptions {
  double loss = 0.001;          ///< loss ratio that counts as lossy (paper: 0.1 %)
  double slow_fraction = 0.01;  ///< fraction of slow answers that counts as slow (P99 > slow)
  Significance significance{3.09, 50, 3};
  int64_t silence_ms = 15000;         ///< no batch / no answer for this long = silent (a server)
  int64_t rack_silence_ms = 8000;     ///< the same for most servers of a rack at once (a ToR)
  uint32_t min_down_failures = 2;     ///< failed probes to a silent server before it is down
  double rack_down_fraction = 0.8;    ///< of a rack's known servers down = rack (ToR) down
  double tor_score = 0.5;             ///< black hole: fraction of a ToR's servers with the symptom
  uint32_t tor_min_servers = 2;       ///< ... and at least this many servers
  double layer_fraction = 0.5;        ///< ToRs of a DC blamed above this fraction = layer above
  double cross_ratio = 4;             ///< red cross: rate in the rack's cross vs. the rest
  double rack_server_fraction = 0.5;  ///< ... and this fraction of its servers elevated
  double interdc_shift_us = 1000;     ///< inter-DC median shift that counts (and >= 20 %)
  double interdc_shift_ratio = 0.2;   ///< ... relative to the baseline
  uint64_t interdc_min_answers = 20;  ///< answers a link needs for its median to count
};

/// What a verdict blames.
enum class ComponentType : uint8_t { kServer = 0, kRack, kSpineLayer, kSpine, kDc, kInterDc };
/// "server", "rack", "spine_layer", "spine", "dc", "inter_dc".
std::string_view to_string(ComponentType t);

/// A verdict. `component` is the canonical id: "server:<name>", "rack:<dc>/<rack>",
/// "spine_layer:<dc>", "spine:<dc>/<spine>", "dc:<dc>", "inter_dc:<a>~<b>" (a < b).
struct Verdict {
  std::string kind;  ///< server_down, server_problem, rack_down, rack_problem, tor_black_hole,
                     ///< fabric_black_hole, fabric_loss, fabric_latency, dc_loss, dc_latency,
                     ///< inter_dc_link
  ComponentType type = ComponentType::kServer;
  std::string component;
  std::string dc;       ///< DC of the component (inter-DC: first DC)
  std::string peer_dc;  ///< inter-DC: second DC
  std::string rack;
  std::string server;
  double confidence = 0;  ///< heuristic in [0, 1]
  std::string summary;
  nlohmann::json evidence = nlohmann::json::object();
};

/// The API form of a verdict.
nlohmann::json to_json(const Verdict& v);

/// Runs every detector in order, each explaining away what earlier ones blamed: down servers and
/// racks, server-side problems, ToR black holes, red crosses, the spine layer / DC, inter-DC links.
std::vector<Verdict> localize(const Snapshot& snapshot, const LocalizeOptions& options);

/// Server and rack (ToR) down. Marks the servers and racks it blames in *down_servers / *down_racks
/// (sized to the snapshot).
std::vector<Verdict> find_down(const Snapshot& s, const LocalizeOptions& o,
                               std::vector<bool>* down_servers, std::vector<bool>* down_racks);
/// Servers slow or unreachable as targets only (sending fine, their rack fine).
std::vector<Verdict> find_server_problems(const Snapshot& s, const LocalizeOptions& o,
                                          const std::vector<bool>& down_servers,
                                          std::vector<bool>* problem_servers);
/// ToR black holes; a DC whose ToRs mostly score gets one fabric_black_hole verdict instead.
std::vector<Verdict> find_black_holes(const Snapshot& s, const LocalizeOptions& o,
                                      const std::vector<bool>& excluded_servers,
                                      std::vector<bool>* blamed_racks);
/// Red crosses (rack problems) for loss and latency, then what is left spread over a DC:
/// fabric_loss/fabric_latency (spine layer) when the diagonal's rate is at most 1/cross_ratio
/// of the rest's, dc_loss/dc_latency when the diagonal is significantly bad too, and nothing
/// while the data cannot tell the two apart. Racks in *blamed_racks are left out; racks it blames are
/// added.
std::vector<Verdict> find_rack_and_fabric(const Snapshot& s, const LocalizeOptions& o,
                                          std::vector<bool>* blamed_racks);
/// Inter-DC links with loss or a median shift, unless their DCs explain it: the DC-level
/// verdicts, or what probes between the (not blamed) racks of either DC see.
std::vector<Verdict> find_inter_dc(const Snapshot& s, const LocalizeOptions& o,
                                   const std::vector<Verdict>& dc_verdicts,
                                   const std::vector<bool>& blamed_racks);

/// The spine found by the TCP traceroute step: per spine, probes whose path (learned by
/// traceroute with the probe's source port) crossed it, and how many of them were lost.
struct SpineTrace {
  std::string spine;
  uint64_t probes = 0;
  uint64_t lost = 0;
};
/// Narrows a fabric_loss verdict to one spine when exactly one spine's loss is significantly
/// above `o.loss` and the others' is not; returns that spine's verdict (type kSpine) or nothing.
std::vector<Verdict> narrow_to_spine(const Verdict& fabric, const std::vector<SpineTrace>& traces,
                                     const LocalizeOptions& o);

}  // namespace pingmesh::analyze
