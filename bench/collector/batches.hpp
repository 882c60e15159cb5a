#pragma once
// Synthetic result batches shared by the collector benchmarks and the load generator.

#include <snappy.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "pingmesh.pb.h"

namespace pingmesh::bench {

inline std::string server_name(int s) { return "srv" + std::to_string(s); }
inline std::string rack_name(int s) { return "rack" + std::to_string(s / 40); }
inline std::string dc_name(int s) { return "dc" + std::to_string(s / 1000); }

/// The batch of agent `a` of `agents` (40 per rack, 25 racks per DC): one result per peer, for
/// `peers` peers (TCP; RTT lognormal around 250 us; 0.1 % drops), timestamps from ts_s on.
inline v1::ResultBatch make_batch(int a, int agents, int peers, int64_t ts_s, uint64_t batch_id,
                                  std::mt19937_64& rng) {
  std::lognormal_distribution<double> rtt(std::log(250.0), 0.4);
  std::bernoulli_distribution drop(0.001);
  v1::ResultBatch b;
  b.set_agent(server_name(a));
  b.set_dc(dc_name(a));
  b.set_rack(rack_name(a));
  b.set_batch_id(batch_id);
  for (int p = 0; p < peers; ++p) {
    int t = (a + 1 + p * 7) % agents;
    auto* peer = b.add_peers();
    peer->set_name(server_name(t));
    peer->set_dc(dc_name(t));
    peer->set_rack(rack_name(t));
    auto* r = b.add_results();
    r->set_peer(static_cast<uint32_t>(p));
    r->set_timestamp_us(ts_s * 1'000'000 + p * 1000);
    r->set_protocol(v1::TCP);
    r->set_port(9001);
    bool d = drop(rng);
    r->set_outcome(d ? v1::DROP : v1::OK);
    r->set_rtt_us(static_cast<uint32_t>(d ? 3'000'000 : rtt(rng)));
  }
  return b;
}

inline void put_varint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

/// A snappy-compressed body kept without its length preamble, so a few raw bytes can be appended
/// per request without compressing again (a literal element at the end of the stream).
struct SnappyBody {
  std::string elements;
  uint64_t raw_len = 0;
  int results = 0;

  static SnappyBody of(const std::string& raw, int results) {
    std::string z;
    snappy::Compress(raw.data(), raw.size(), &z);
    std::size_t i = 0;  // skip the preamble (uncompressed length varint)
    while (static_cast<uint8_t>(z[i]) & 0x80) ++i;
    return {z.substr(i + 1), raw.size(), results};
  }
  /// The body with `suffix` (raw bytes, at most 60) appended to what it decompresses to.
  std::string with_suffix(const std::string& suffix) const {
    std::string out;
    put_varint(&out, raw_len + suffix.size());
    out.append(elements);
    if (!suffix.empty()) {
      out.push_back(static_cast<char>((suffix.size() - 1) << 2));  // literal, length <= 60
      out.append(suffix);
    }
    return out;
  }
  /// A ResultBatch body with batch_id (field 5) set to `id`: protobuf keeps the last value of a
  /// repeated scalar field, so the appended field overrides any earlier one.
  std::string with_batch_id(uint64_t id) const {
    std::string suffix;
    put_varint(&suffix, 5 << 3);
    put_varint(&suffix, id);
    return with_suffix(suffix);
  }
};

}  // namespace pingmesh::bench
