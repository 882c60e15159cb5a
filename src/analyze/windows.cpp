#include "analyze/windows.hpp"

#include <algorithm>

namespace pingmesh::analyze {

namespace {

std::string rack_key(uint32_t dc_id, std::string_view name) {
  std::string k = std::to_string(dc_id);
  k += '\x1f';
  k.append(name);
  return k;
}

}  // namespace

uint32_t Directory::dc(std::string_view name) {
  if (auto it = dcs_.find(name); it != dcs_.end()) return it->second;
  auto id = static_cast<uint32_t>(dc_names_.size());
  dcs_.emplace(std::string(name), id);
  dc_names_.emplace_back(name);
  return id;
}

uint32_t Directory::rack(uint32_t dc_id, std::string_view name) {
  if (name.empty()) return kNone;
  auto key = rack_key(dc_id, name);
  if (auto it = racks_.find(key); it != racks_.end()) return it->second;
  auto id = static_cast<uint32_t>(rack_names_.size());
  racks_.emplace(std::move(key), id);
  rack_names_.emplace_back(name);
  rack_dc_.push_back(dc_id);
  return id;
}

uint32_t Directory::server(std::string_view name, uint32_t dc_id, uint32_t rack_id) {
  if (auto it = servers_.find(name); it != servers_.end()) {
    server_dc_[it->second] = dc_id;
    server_rack_[it->second] = rack_id;
    return it->second;
  }
  auto id = static_cast<uint32_t>(server_names_.size());
  servers_.emplace(std::string(name), id);
  server_names_.emplace_back(name);
  server_dc_.push_back(dc_id);
  server_rack_.push_back(rack_id);
  server_expected_.push_back(false);
  return id;
}

uint32_t Directory::find_dc(std::string_view name) const {
  auto it = dcs_.find(name);
  return it == dcs_.end() ? kNone : it->second;
}

uint32_t Directory::find_rack(uint32_t dc_id, std::string_view name) const {
  auto it = racks_.find(rack_key(dc_id, name));
  return it == racks_.end() ? kNone : it->second;
}

uint32_t Directory::find_server(std::string_view name) const {
  auto it = servers_.find(name);
  return it == servers_.end() ? kNone : it->second;
}

void Directory::set_expected(const model::Topology& topology) {
  std::fill(server_expected_.begin(), server_expected_.end(), false);
  for (const auto& dc_entry : topology.dcs) dc(dc_entry.name);
  for (const auto& r : topology.racks) rack(dc(r.dc), r.name);
  for (const auto& s : topology.servers) {
    uint32_t d = dc(s.dc);
    uint32_t id = server(s.name, d, rack(d, s.rack));
    server_expected_[id] = true;
  }
}

Windows::Windows(WindowOptions options) : options_(options), ring_(options.buckets) {
  for (auto& b : ring_) b.last_cell.fill(collector::Cells::kNone);
}

Windows::Bucket& Windows::bucket_at(int64_t now_ms) {
  int64_t index = now_ms / options_.bucket_ms;
  auto& b = ring_[static_cast<std::size_t>(index % options_.buckets)];
  if (b.index != index) {
    b.index = index;
    for (auto& c : b.cells) c = collector::Cells{};
    for (auto& s : b.slow) s.clear();
    b.last_cell.fill(collector::Cells::kNone);
  }
  return b;
}

void Windows::add(Bucket& b, WLevel level, const collector::Key& key, collector::Protocol protocol,
                  collector::Outcome outcome, uint32_t rtt_us, int rtt_index) {
  auto l = static_cast<int>(level);
  uint32_t cell = b.last_cell[l];
  if (cell == collector::Cells::kNone || !(b.last_key[l] == key)) {
    cell = b.cells[l].find_or_add(key, 0);
    b.last_key[l] = key;
    b.last_cell[l] = cell;
  }
  auto& slow = b.slow[l];
  if (cell >= slow.size()) slow.resize(cell + 1, 0);
  // Levels without quantiles pass RTT 0: the loss rule and counters are the same, and the
  // sketch only counts a zero (no bucket index, no allocation).
  if (sketch_[l]) {
    b.cells[l].stats(cell).add(protocol, outcome, rtt_us, rtt_index);
  } else {
    b.cells[l].stats(cell).add(protocol, outcome, 0, 0);
  }
  if (outcome == collector::Outcome::kOk && rtt_us > options_.slow_us) ++slow[cell];
}

ObserveCounts Windows::observe(const v1::ResultBatch& batch, int64_t now_ms) {
  ObserveCounts counts;
  counts.results = static_cast<uint64_t>(batch.results_size());
  if (batch.agent().empty() || batch.dc().empty()) {
    counts.bad = counts.results;
    return counts;
  }
  auto& dir = directory_;
  uint32_t src_dc = dir.dc(batch.dc());
  uint32_t src_rack = dir.rack(src_dc, batch.rack());
  uint32_t src = dir.server(batch.agent(), src_dc, src_rack);

  peer_ids_.assign(static_cast<std::size_t>(batch.peers_size()), Directory::kNone);
  for (int i = 0; i < batch.peers_size(); ++i) {
    const auto& p = batch.peers(i);
    if (p.name().empty() || p.dc().empty()) continue;
    uint32_t id = dir.find_server(p.name());
    // Reuse the known placement when it still matches (no string building on the hot path).
    if (id != Directory::kNone && dir.dc_name(dir.server_dc(id)) == p.dc() &&
        (p.rack().empty() ? dir.server_rack(id) == Directory::kNone
                          : dir.server_rack(id) != Directory::kNone &&
                                dir.rack_name(dir.server_rack(id)) == p.rack())) {
      peer_ids_[static_cast<std::size_t>(i)] = id;
      continue;
    }
    uint32_t d = dir.dc(p.dc());
    peer_ids_[static_cast<std::size_t>(i)] = dir.server(p.name(), d, dir.rack(d, p.rack()));
  }
  if (activity_.size() < dir.server_count()) activity_.resize(dir.server_count());
  if (tracked_by_src_.size() < dir.server_count()) tracked_by_src_.resize(dir.server_count(), 0);
  auto& me = activity_[src];
  me.last_batch_ms = now_ms;
  if (me.first_seen_ms == 0) me.first_seen_ms = now_ms;

  Bucket& b = bucket_at(now_ms);
  for (const auto& r : batch.results()) {
    if (r.peer() >= peer_ids_.size() || peer_ids_[r.peer()] == Directory::kNone ||
        r.protocol() < v1::ICMP || r.protocol() > v1::HTTP || r.outcome() < v1::OK ||
        r.outcome() > v1::ERROR) {
      ++counts.bad;
      continue;
    }
    uint32_t dst = peer_ids_[r.peer()];
    auto protocol = static_cast<collector::Protocol>(r.protocol());
    auto outcome = static_cast<collector::Outcome>(r.outcome());
    auto proto = static_cast<uint8_t>(protocol);
    uint32_t rtt = r.rtt_us();
    int index = outcome == collector::Outcome::kOk && rtt >= 1
                    ? collector::Sketch::index_of(static_cast<double>(rtt))
                    : 0;
    uint32_t dst_dc = dir.server_dc(dst);
    uint32_t dst_rack = dir.server_rack(dst);
    add(b, WLevel::kServerSrc, {src, 0, proto, 0}, protocol, outcome, rtt, index);
    add(b, WLevel::kServerDst, {dst, 0, proto, 0}, protocol, outcome, rtt, index);
    add(b, WLevel::kDcPair, {src_dc, dst_dc, proto, 0}, protocol, outcome, rtt, index);
    if (src_rack != Directory::kNone && dst_rack != Directory::kNone) {
      add(b, WLevel::kRackPair, {src_rack, dst_rack, proto, 0}, protocol, outcome, rtt, index);
    }
    if (src_dc == dst_dc) {
      if (src_rack != Directory::kNone) {
        add(b, WLevel::kRack, {src_rack, 0, proto, 0}, protocol, outcome, rtt, index);
      }
      if (dst_rack != src_rack && dst_rack != Directory::kNone) {
        add(b, WLevel::kRack, {dst_rack, 0, proto, 0}, protocol, outcome, rtt, index);
      }
    }
    bool answered = outcome == collector::Outcome::kOk || outcome == collector::Outcome::kDrop;
    int64_t ts = r.timestamp_us();
    collector::Key pair{src, dst, proto, 0};
    if (answered) {
      auto& peer = activity_[dst];
      peer.last_answer_ms = now_ms;
      if (peer.first_seen_ms == 0) peer.first_seen_ms = now_ms;
      for (auto* streak : {&peer.answering[proto], &me.reaching[proto]}) {
        if (ts - streak->last_ts_us > Activity::kStreakGapUs) streak->since_us = ts;
        streak->last_ts_us = std::max(streak->last_ts_us, ts);
      }
      if (tracked_by_src_[src] > 0) {
        auto it = pairs_.find(pair);
        if (it != pairs_.end() && ts > it->second.first_fail_us) ++it->second.successes_after;
      }
    } else {
      auto [it, inserted] = pairs_.try_emplace(pair);
      auto& t = it->second;
      if (inserted) {
        ++tracked_by_src_[src];
        t.first_fail_us = ts;
      }
      t.first_fail_us = std::min(t.first_fail_us, ts);
      t.last_fail_us = std::max(t.last_fail_us, ts);
      t.last_fail_ms = now_ms;
      ++t.failures;
    }
  }
  return counts;
}

void Windows::advance(int64_t now_ms) {
  bucket_at(now_ms);
  int64_t oldest = now_ms - horizon_ms();
  for (auto it = pairs_.begin(); it != pairs_.end();) {
    if (it->second.last_fail_ms <= oldest) {
      --tracked_by_src_[it->first.a];
      it = pairs_.erase(it);
    } else {
      ++it;
    }
  }
}

void Windows::sum(WLevel level, int64_t now_ms, int64_t window_ms, bool sketch, AggMap* out) const {
  out->clear();
  int64_t now_index = now_ms / options_.bucket_ms;
  std::size_t expect = 0;
  for (const auto& b : ring_) expect = std::max(expect, b.cells[static_cast<int>(level)].size());
  out->reserve(expect + expect / 4);
  int64_t n = std::min<int64_t>((window_ms + options_.bucket_ms - 1) / options_.bucket_ms,
                                options_.buckets);
  auto l = static_cast<int>(level);
  for (const auto& b : ring_) {
    if (b.index < 0 || b.index > now_index || b.index <= now_index - n) continue;
    const auto& cells = b.cells[l];
    for (uint32_t c = 0; c < cells.size(); ++c) {
      Agg& a = (*out)[cells.key(c)];
      if (sketch) {
        a.stats.merge(cells.stats(c));
      } else {
        a.stats.merge_counters(cells.stats(c));
      }
      a.slow += c < b.slow[l].size() ? b.slow[l][c] : 0;
    }
  }
}

}  // namespace pingmesh::analyze
