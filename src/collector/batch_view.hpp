#pragma once
/// A decoded result batch as the aggregator needs it, without protobuf message objects: the
/// strings are views into the decoded body and the results are plain structs. parse_batch()
/// reads the wire format of pingmesh.v1.ResultBatch directly (one pass, no allocation beyond the
/// two vectors, which callers reuse), so ingest parses each body once. A batch decoded with
/// protobuf (JSON bodies, in-process callers) converts with from_proto(). Pure.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pingmesh.pb.h"

namespace pingmesh::collector {

/// The fields of pingmesh.v1.Peer the collector uses.
struct PeerView {
  std::string_view name, dc, rack;
};

/// The fields of pingmesh.v1.Result the collector uses (enums as their raw wire values).
struct ResultView {
  int64_t timestamp_us = 0;
  uint32_t peer = 0;
  int32_t protocol = 0;
  int32_t outcome = 0;
  uint32_t dscp = 0;
  uint32_t rtt_us = 0;
};

struct BatchView {
  std::string_view agent, dc, rack;
  uint64_t batch_id = 0;
  std::vector<PeerView> peers;
  std::vector<ResultView> results;
  void clear();
};

/// Parses a serialized (uncompressed) ResultBatch into `out` (whose strings then point into
/// `data`). Accepts exactly what protobuf accepts for this message: unknown fields are skipped,
/// the last value of a repeated scalar wins, strings must be valid UTF-8. False on malformed
/// input.
bool parse_batch(std::string_view data, BatchView* out);

/// Fills `out` from a protobuf message (strings then point into `batch`).
void from_proto(const v1::ResultBatch& batch, BatchView* out);

/// True when `s` is valid UTF-8 (what protobuf requires of proto3 strings).
bool valid_utf8(std::string_view s);

}  // namespace pingmesh::collector
