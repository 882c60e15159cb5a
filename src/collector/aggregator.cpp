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
  }
  return w.get();
}

void Aggregator::resolve(Slot* slot, Window* w, const PeerInfo& src, const PeerInfo& dst,
                         uint8_t protocol, uint8_t dscp) {
  slot->window = w->start_s;
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

IngestCounts Aggregator::add(const v1::ResultBatch& batch, int64_t now_us, int64_t accept_from_s,
                             int64_t* used_accept_from_s) {
  IngestCounts counts;
  const int64_t bound =
      std::max({open_from_, accept_from_s, first_open(floor_div(now_us, 1'000'000))});
  if (used_accept_from_s) *used_accept_from_s = bound;
  const PeerInfo* src_ptr = intern(batch.agent(), batch.dc(), batch.rack());
  if (!src_ptr) {
    counts.rejected[static_cast<int>(Reject::kBadSource)] += batch.results_size();
    return counts;
  }
  const PeerInfo src = *src_ptr;  // a peer entry may be updated below if the source is a peer
  const int npeers = batch.peers_size();
  batch_peers_.assign(static_cast<std::size_t>(npeers), nullptr);
  for (int i = 0; i < npeers; ++i) {
    const auto& p = batch.peers(i);
    batch_peers_[i] = intern(p.name(), p.dc(), p.rack());
  }
  slots_.assign(static_cast<std::size_t>(npeers), Slot{});

  const int64_t window_us = options_.window_s * 1'000'000;
  const int64_t max_ts = now_us + options_.max_future_s * 1'000'000;
  Window* cur = nullptr;
  int64_t cur_start_us = 0, cur_end_us = 0;
  for (const auto& r : batch.results()) {
    uint32_t peer = r.peer();
    if (peer >= static_cast<uint32_t>(npeers) || !batch_peers_[peer]) {
      ++counts.rejected[static_cast<int>(Reject::kBadPeer)];
      continue;
    }
    int protocol = r.protocol();
    int outcome = r.outcome();
    if (protocol < 1 || protocol > 4 || outcome < 1 || outcome > 5) {
      ++counts.rejected[static_cast<int>(Reject::kBadProtocol)];
      continue;
    }
    uint32_t rtt = r.rtt_us();
    if (rtt > options_.max_rtt_us) {
      ++counts.rejected[static_cast<int>(Reject::kRttAbsurd)];
      continue;
    }
    int64_t ts = r.timestamp_us();
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
    }
    auto dscp = static_cast<uint8_t>(std::min<uint32_t>(r.dscp(), 63));
    Slot& slot = slots_[peer];
    if (slot.window != cur->start_s || slot.protocol != protocol || slot.dscp != dscp) {
      resolve(&slot, cur, src, *batch_peers_[peer], static_cast<uint8_t>(protocol), dscp);
    }
    auto p = static_cast<Protocol>(protocol);
    auto o = static_cast<Outcome>(outcome);
    int index = rtt > 0 ? Sketch::index_of(rtt) : 0;
    for (int l = 0; l < kLevels; ++l) {
      uint32_t cell = slot.cells[l];
      if (cell != Cells::kNone) cur->levels[l].stats(cell).add(p, o, rtt, index);
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
