#pragma once
/// Conversion of buffered results into the wire batch (pingmesh.v1.ResultBatch) and its
/// snappy-compressed encoding. Pure functions.

#include <cstdint>
#include <string>
#include <vector>

#include "agent/result.hpp"
#include "pingmesh.pb.h"

namespace pingmesh::agent {

/// The probing agent as the batch names it.
struct AgentIdentity {
  std::string name;
  std::string dc;
  std::string rack;
  std::string address;
};

/// A batch id unique per agent: the agent's start time (Unix milliseconds, low 40 bits, so a
/// restart never reuses an id) and a per-run sequence (low 24 bits). Retries of one batch reuse
/// its id. Ids of different agents may coincide: the collector keys on (agent, batch_id).
uint64_t make_batch_id(int64_t start_unix_ms, uint64_t seq);

/// Builds a batch; peers are listed once (in order of first use) and results index into them.
v1::ResultBatch build_batch(const AgentIdentity& agent, uint64_t batch_id,
                            const std::vector<ProbeResult>& results, uint64_t dropped_before);

/// Serialises and snappy-compresses a batch (the body of POST /api/v1/results with
/// Content-Encoding: snappy).
std::string encode_batch(const v1::ResultBatch& batch);

/// Inverse of encode_batch; false when the body is not a snappy-compressed batch.
bool decode_batch(const std::string& body, v1::ResultBatch* out);

}  // namespace pingmesh::agent
