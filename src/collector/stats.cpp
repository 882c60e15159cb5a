#include "collector/stats.hpp"

#include <algorithm>

#include "collector/varint.hpp"

namespace pingmesh::collector {

namespace {

constexpr std::string_view kLevelNames[kLevels] = {"pair",       "rack_pair",  "dc_pair",
                                                   "server_src", "server_dst", "rack"};
constexpr std::string_view kProtocolNames[] = {"", "icmp", "tcp", "udp", "http"};

}  // namespace

std::string_view to_string(Level level) { return kLevelNames[static_cast<int>(level)]; }

std::optional<Level> parse_level(std::string_view s) {
  for (int i = 0; i < kLevels; ++i) {
    if (kLevelNames[i] == s) return static_cast<Level>(i);
  }
  return std::nullopt;
}

std::string_view to_string(Protocol p) {
  auto i = static_cast<std::size_t>(p);
  return i < std::size(kProtocolNames) ? kProtocolNames[i] : "";
}

std::optional<Protocol> parse_protocol(std::string_view s) {
  for (std::size_t i = 1; i < std::size(kProtocolNames); ++i) {
    if (kProtocolNames[i] == s) return static_cast<Protocol>(i);
  }
  return std::nullopt;
}

void Stats::merge(const Stats& o) {
  merge_counters(o);
  rtt.merge(o.rtt);
}

void Stats::merge_counters(const Stats& o) {
  probes += o.probes;
  ok += o.ok;
  drops += o.drops;
  timeouts += o.timeouts;
  refused += o.refused;
  errors += o.errors;
  lost += o.lost;
  loss_base += o.loss_base;
}

std::optional<double> Stats::loss() const {
  if (loss_base == 0) return std::nullopt;
  return static_cast<double>(lost) / static_cast<double>(loss_base);
}

void Stats::serialize(std::string* out) const {
  for (uint64_t v : {probes, ok, drops, timeouts, refused, errors, lost, loss_base}) {
    varint::put(out, v);
  }
  rtt.serialize(out);
}

bool Stats::merge_encoded_counters(std::string_view* in) {
  uint64_t v[8];
  for (auto& x : v) {
    if (!varint::get(in, &x)) return false;
  }
  probes += v[0];
  ok += v[1];
  drops += v[2];
  timeouts += v[3];
  refused += v[4];
  errors += v[5];
  lost += v[6];
  loss_base += v[7];
  return true;
}

bool Stats::merge_encoded(std::string_view* in) {
  return merge_encoded_counters(in) && rtt.merge_encoded(in);
}

bool skip_stats(std::string_view* in) {
  uint64_t v;
  for (int i = 0; i < 8; ++i) {
    if (!varint::get(in, &v)) return false;
  }
  return Sketch::skip_encoded(in);
}

uint32_t Cells::find(const Key& key) const {
  if (table_.empty()) return kNone;
  std::size_t mask = table_.size() - 1;
  for (std::size_t i = hash(key) & mask;; i = (i + 1) & mask) {
    const Slot& slot = table_[i];
    if (slot.cell == 0) return kNone;
    if (slot.key == key) return slot.cell - 1;
  }
}

uint32_t Cells::find_or_add(const Key& key, uint32_t scope) {
  if ((keys_.size() + 1) * 2 > table_.size()) grow();
  std::size_t mask = table_.size() - 1;
  for (std::size_t i = hash(key) & mask;; i = (i + 1) & mask) {
    Slot& slot = table_[i];
    if (slot.cell == 0) {
      auto cell = static_cast<uint32_t>(keys_.size());
      keys_.push_back(key);
      scopes_.push_back(scope);
      stats_.emplace_back();
      slot = {key, cell + 1};
      return cell;
    }
    if (slot.key == key) return slot.cell - 1;
  }
}

void Cells::grow() {
  std::size_t n = std::max<std::size_t>(16, table_.size() * 2);
  table_.assign(n, Slot{});
  std::size_t mask = n - 1;
  for (uint32_t cell = 0; cell < keys_.size(); ++cell) {
    std::size_t i = hash(keys_[cell]) & mask;
    while (table_[i].cell != 0) i = (i + 1) & mask;
    table_[i] = {keys_[cell], cell + 1};
  }
}

void Cells::merge(const Key& key, uint32_t scope, const Stats& stats) {
  stats_[find_or_add(key, scope)].merge(stats);
}

std::size_t Cells::memory_bytes() const {
  std::size_t bytes = table_.capacity() * sizeof(Slot) + keys_.capacity() * sizeof(Key) +
                      scopes_.capacity() * sizeof(uint32_t) + stats_.capacity() * sizeof(Stats);
  return bytes;
}

std::string encode_tile(const Cells& cells, const std::vector<uint32_t>& cell_numbers) {
  std::vector<uint32_t> order = cell_numbers;
  std::sort(order.begin(), order.end(),
            [&](uint32_t x, uint32_t y) { return cells.key(x) < cells.key(y); });
  std::string out;
  out.reserve(order.size() * 48);
  varint::put(&out, order.size());
  uint32_t prev_a = 0;
  for (uint32_t cell : order) {
    const Key& k = cells.key(cell);
    varint::put(&out, k.a - prev_a);  // keys are sorted: a never decreases
    varint::put(&out, k.b);
    varint::put(&out, k.protocol);
    varint::put(&out, k.dscp);
    prev_a = k.a;
    cells.stats(cell).serialize(&out);
  }
  return out;
}

TileReader::TileReader(std::string_view data) : data_(data) { ok_ = varint::get(&data_, &left_); }

bool TileReader::next() {
  if (!ok_) return false;
  if (started_ && data_.size() == before_) ok_ = false;  // the caller must consume the stats
  started_ = true;
  if (!ok_) return false;
  if (left_ == 0) {
    ok_ = data_.empty();
    return false;
  }
  --left_;
  uint64_t da, b, p, d;
  if (!varint::get(&data_, &da) || !varint::get(&data_, &b) || !varint::get(&data_, &p) ||
      !varint::get(&data_, &d) || b > 0xffffffffu || p > 255 || d > 255) {
    ok_ = false;
    return false;
  }
  key_.a = static_cast<uint32_t>(key_.a + da);
  key_.b = static_cast<uint32_t>(b);
  key_.protocol = static_cast<uint8_t>(p);
  key_.dscp = static_cast<uint8_t>(d);
  before_ = data_.size();
  return true;
}

bool decode_tile(std::string_view data,
                 const std::function<bool(const Key&, std::string_view* stats)>& fn) {
  TileReader r(data);
  while (r.next()) {
    if (!fn(r.key(), r.stats())) return false;
  }
  return r.ok();
}

}  // namespace pingmesh::collector
