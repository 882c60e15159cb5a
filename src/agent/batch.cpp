#include "agent/batch.hpp"

#include <snappy.h>

#include <unordered_map>

namespace pingmesh::agent {

uint64_t make_batch_id(int64_t start_unix_ms, uint64_t seq) {
  return (static_cast<uint64_t>(start_unix_ms) & ((uint64_t{1} << 40) - 1)) << 24 |
         (seq & ((uint64_t{1} << 24) - 1));
}

v1::ResultBatch build_batch(const AgentIdentity& agent, uint64_t batch_id,
                            const std::vector<ProbeResult>& results, uint64_t dropped_before) {
  v1::ResultBatch b;
  b.set_agent(agent.name);
  b.set_dc(agent.dc);
  b.set_rack(agent.rack);
  b.set_address(agent.address);
  b.set_batch_id(batch_id);
  b.set_dropped_before(dropped_before);
  std::unordered_map<const PeerLabels*, uint32_t> index;
  b.mutable_results()->Reserve(static_cast<int>(results.size()));
  for (const auto& r : results) {
    auto [it, added] = index.emplace(r.peer.get(), static_cast<uint32_t>(index.size()));
    if (added) {
      auto* p = b.add_peers();
      if (r.peer) {
        p->set_name(r.peer->name);
        p->set_address(r.peer->address);
        p->set_dc(r.peer->dc);
        p->set_rack(r.peer->rack);
      }
    }
    auto* out = b.add_results();
    out->set_peer(it->second);
    out->set_timestamp_us(r.timestamp_us);
    out->set_protocol(static_cast<v1::Protocol>(r.protocol));
    out->set_port(r.port);
    out->set_dscp(r.dscp);
    out->set_level(static_cast<v1::Level>(r.level));
    out->set_outcome(static_cast<v1::Outcome>(r.outcome));
    out->set_rtt_us(r.rtt_us);
    out->set_retransmits(r.retransmits);
    out->set_payload_bytes(r.payload_bytes);
    out->set_payload_rtt_us(r.payload_rtt_us);
    out->set_ttfb_us(r.ttfb_us);
    out->set_connect_us(r.connect_us);
    out->set_seq(r.seq);
    out->set_duplicates(r.duplicates);
    out->set_reordered(r.reordered);
  }
  return b;
}

std::string encode_batch(const v1::ResultBatch& batch) {
  std::string raw;
  batch.SerializeToString(&raw);
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

bool decode_batch(const std::string& body, v1::ResultBatch* out) {
  std::string raw;
  if (!snappy::Uncompress(body.data(), body.size(), &raw)) return false;
  return out->ParseFromString(raw);
}

}  // namespace pingmesh::agent
