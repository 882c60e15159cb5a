#include "collector/aggregator.hpp"

#include <algorithm>

namespace pingmesh::collector {

namespace {

constexpr std::string_view kRejectNames[kRejectReasons] = {
    "too_old", "future", "rtt_absurd", "bad_peer", "bad_protocol", "bad_source", "unknown_server"};

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

}  // namespace

std::string_view to_string(Reject r) { return kRejectNames[static_cast<int>(r)]; }

uint64_t IngestCounts::rejected_total() const {
  uint64_t n = 0;
  for (auto v : rejected) n += v;
  return n;
}

Aggregator::Aggregator(AggregatorOptions options, Names* names)
    : options_(options), names_(names) {}

void Aggregator::set_open_from(int64_t start_s) { open_from_ = std::max(open_from_, start_s); }

const Aggregator::PeerInfo* Aggregator::intern(std::string_view name, std::string_view dc,
                                               std::string_view rack) {
  if (name.empty() || dc.empty()) return nullptr;
  auto it = peers_.find(name);
  if (it != peers_.end() && it->second.dc == dc && it->second.rack == rack) return &it->second;
  if (it == peers_.end()) it = peers_.emplace(std::string(name), PeerInfo{}).first;
  PeerInfo& p = it->second;
  p.dc = dc;
  p.rack = rack;
  p.dc_id = names_->dc(dc);
  p.rack_id = names_->rack(p.dc_id, rack);
  p.server = names_->server(name, p.dc_id, p.rack_id);
  return &p;
}

Window* Aggregator::window(int64_t start_s) {
  auto& w = windows_[start_s];
  if (!w) {
    w = std::make_unique<Window>();
    w->start_s = start_s;
    w->serial = next_serial_++;
  }
  return w.get();
}

void Aggregator::resolve(Slot* slot, Window* w, const PeerIds& src, const PeerIds& dst,
                         uint8_t protocol, uint8_t dscp) {
  slot->window = w->serial;
  slot->protocol = protocol;
  slot->dscp = dscp;
  auto& c = slot->cells;
  Cells& pairs = w->at(Level::kPair);
  std::size_t before = pairs.size();
  c[0] = pairs.find_or_add({src.server, dst.server, protocol, dscp}, src.rack_id);
  if (pairs.size() == before) {
    const auto& links = w->pair_links[c[0]];
    std::copy(links.begin(), links.end(), c.begin() + 1);
    return;
  }
  c[1] = w->at(Level::kRackPair).find_or_add({src.rack_id, dst.rack_id, protocol, 0}, src.dc_id);
  c[2] = w->at(Level::kDcPair).find_or_add({src.dc_id, dst.dc_id, protocol, 0}, 0);
  c[3] = w->at(Level::kServerSrc).find_or_add({src.server, 0, protocol, 0}, src.dc_id);
  c[4] = w->at(Level::kServerDst).find_or_add({dst.server, 0, protocol, 0}, dst.dc_id);
  c[5] = src.dc_id == dst.dc_id
             ? w->at(Level::kRack).find_or_add({src.rack_id, 0, protocol, 0}, src.dc_id)
             : Cells::kNone;
  w->pair_links.push_back({c[1], c[2], c[3], c[4], c[5]});
}

Aggregator::AgentCache* Aggregator::agent_cache(const PeerInfo& src, const BatchView& batch) {
  // The batch's peers table, exactly, as a key: an agent re-sending the same table reuses the
  // ids (and cells) resolved for its previous batches.
  std::string& key = key_scratch_;
  key.clear();
  auto put = [&key](std::string_view s) {
    uint32_t n = static_cast<uint32_t>(s.size());
    key.append(reinterpret_cast<const char*>(&n), sizeof n);
    key.append(s);
  };
  for (const auto& p : batch.peers) {
    put(p.name);
    put(p.dc);
    put(p.rack);
  }
  auto [it, added] = agents_.try_emplace(src.server);
  AgentCache& a = it->second;
  if (!added && a.peers_key == key && a.src.dc_id == src.dc_id && a.src.rack_id == src.rack_id) {
    return &a;
  }
  cached_peers_ -= a.peers.size();
  if (cached_peers_ + batch.peers.size() > kMaxCachedPeers) {
    // Bounded memory: start over (agents re-fill the cache with their next batch).
    agents_.clear();
    cached_peers_ = 0;
    it = agents_.try_emplace(src.server).first;
  }
  AgentCache& fresh = it->second;
  fresh.src = {src.server, src.dc_id, src.rack_id};
  fresh.peers_key.swap(key);
  fresh.peers.resize(batch.peers.size());
  for (std::size_t i = 0; i < batch.peers.size(); ++i) {
    const auto& p = batch.peers[i];
    const PeerInfo* info = intern(p.name, p.dc, p.rack);
    fresh.peers[i] = info ? PeerIds{info->server, info->dc_id, info->rack_id} : PeerIds{};
  }
  fresh.slots.assign(batch.peers.size(), Slot{});
  cached_peers_ += batch.peers.size();
  return &fresh;
}

IngestCounts Aggregator::add(const v1::ResultBatch& batch, int64_t now_us, int64_t accept_from_s,
                             int64_t* used_accept_from_s) {
  BatchView& view = view_scratch_;
  from_proto(batch, &view);
  return add(view, now_us, accept_from_s, used_accept_from_s);
}

IngestCounts Aggregator::add(const BatchView& batch, int64_t now_us, int64_t accept_from_s,
                             int64_t* used_accept_from_s) {
  IngestCounts counts;
  const int64_t bound =
      std::max({open_from_, accept_from_s, first_open(floor_div(now_us, 1'000'000))});
  if (used_accept_from_s) *used_accept_from_s = bound;
  const PeerInfo* src_info = intern(batch.agent, batch.dc, batch.rack);
  if (!src_info) {
    counts.rejected[static_cast<int>(Reject::kBadSource)] += batch.results.size();
    return counts;
  }
  AgentCache* agent = agent_cache(*src_info, batch);
  const PeerIds src = agent->src;
  const PeerIds* peers = agent->peers.data();
  Slot* slots = agent->slots.data();
  const auto npeers = static_cast<uint32_t>(agent->peers.size());

  const int64_t window_us = options_.window_s * 1'000'000;
  const int64_t max_ts = now_us + options_.max_future_s * 1'000'000;
  Window* cur = nullptr;
  int64_t cur_start_us = 0, cur_end_us = 0;
  std::array<Stats*, kLevels> base{};
  const std::size_t n = batch.results.size();
  const ResultView* results = batch.results.data();
  // Prefetch in two stages: the Stats of the result kFar ahead, then, once that Stats is in
  // cache, the bucket the result kNear ahead will increment (a spilled sketch's array is a
  // separate allocation: without this it is the last cache miss of the loop).
  constexpr std::size_t kFar = 16, kNear = 8;
  for (std::size_t i = 0; i < n; ++i) {
    if (cur && i + kFar < n) {
      uint32_t ahead = results[i + kFar].peer;
      if (ahead < npeers && slots[ahead].window == cur->serial) {
        const Slot& s = slots[ahead];
        for (int l : {0, 4, 1}) {  // pair, target server, rack pair: the likely cache misses
          const char* c = reinterpret_cast<const char*>(base[l] + s.cells[l]);
          __builtin_prefetch(c, 1);
          __builtin_prefetch(c + 64, 1);
          __builtin_prefetch(c + 120, 1);
        }
      }
    }
    if (cur && i + kNear < n) {
      const ResultView& a = results[i + kNear];
      if (a.peer < npeers && slots[a.peer].window == cur->serial && a.rtt_us > 0 &&
          a.rtt_us < Sketch::kTableUs) {
        const Slot& s = slots[a.peer];
        int index = Sketch::index_of_us(a.rtt_us);
        for (int l : {0, 4, 1}) base[l][s.cells[l]].rtt.prefetch_bucket(index);
      }
    }
    const ResultView& r = results[i];
    uint32_t peer = r.peer;
    if (peer >= npeers || peers[peer].server == 0) {
      ++counts.rejected[static_cast<int>(Reject::kBadPeer)];
      continue;
    }
    int protocol = r.protocol;
    int outcome = r.outcome;
    if (protocol < 1 || protocol > 4 || outcome < 1 || outcome > 5) {
      ++counts.rejected[static_cast<int>(Reject::kBadProtocol)];
      continue;
    }
    uint32_t rtt = r.rtt_us;
    if (rtt > options_.max_rtt_us) {
      ++counts.rejected[static_cast<int>(Reject::kRttAbsurd)];
      continue;
    }
    int64_t ts = r.timestamp_us;
    if (ts > now_us) {
      if (ts > max_ts) {
        ++counts.rejected[static_cast<int>(Reject::kFuture)];
        continue;
      }
      ts = now_us;
      ++counts.clamped;
    }
    if (!cur || ts < cur_start_us || ts >= cur_end_us) {
      int64_t start_s = floor_div(ts, window_us) * options_.window_s;
      if (start_s < bound) {
        ++counts.rejected[static_cast<int>(Reject::kTooOld)];
        continue;
      }
      cur = window(start_s);
      cur_start_us = start_s * 1'000'000;
      cur_end_us = cur_start_us + window_us;
      for (int l = 0; l < kLevels; ++l) base[l] = cur->levels[l].data();
    }
    auto dscp = static_cast<uint8_t>(std::min<uint32_t>(r.dscp, 63));
    Slot& slot = slots[peer];
    if (slot.window != cur->serial || slot.protocol != protocol || slot.dscp != dscp) {
      resolve(&slot, cur, src, peers[peer], static_cast<uint8_t>(protocol), dscp);
      // Cells may have grown (resolve adds cells): take the arrays' current addresses.
      for (int l = 0; l < kLevels; ++l) base[l] = cur->levels[l].data();
    }
    auto p = static_cast<Protocol>(protocol);
    auto o = static_cast<Outcome>(outcome);
    int index = rtt > 0 ? Sketch::index_of_us(rtt) : 0;
    for (int l = 0; l < kLevels; ++l) {
      uint32_t cell = slot.cells[l];
      if (cell != Cells::kNone) base[l][cell].add(p, o, rtt, index);
    }
    ++cur->results;
    ++counts.accepted;
  }
  return counts;
}

int64_t Aggregator::first_open(int64_t now_s) const {
  // A window [w, w + window) accepts results until now >= w + window + grace.
  return (floor_div(now_s - options_.window_s - options_.grace_s, options_.window_s) + 1) *
         options_.window_s;
}

std::vector<std::unique_ptr<Window>> Aggregator::close(int64_t now_s) {
  set_open_from(first_open(now_s));
  std::vector<std::unique_ptr<Window>> out;
  while (!windows_.empty() && windows_.begin()->first < open_from_) {
    out.push_back(std::move(windows_.begin()->second));
    windows_.erase(windows_.begin());
  }
  return out;
}

std::vector<std::unique_ptr<Window>> Aggregator::close_all() {
  std::vector<std::unique_ptr<Window>> out;
  for (auto& [start, w] : windows_) out.push_back(std::move(w));
  windows_.clear();
  return out;
}

std::size_t Aggregator::cell_count() const {
  std::size_t n = 0;
  for (const auto& [start, w] : windows_) {
    for (const auto& c : w->levels) n += c.size();
  }
  return n;
}

}  // namespace pingmesh::collector
