#include "collector/batch_view.hpp"

#include <cstring>

namespace pingmesh::collector {

namespace {

/// A bounded reader over wire-format bytes.
struct Reader {
  const uint8_t* p;
  const uint8_t* end;

  bool varint(uint64_t* v) {
    if (p < end && *p < 0x80) {  // one byte: the common case
      *v = *p++;
      return true;
    }
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
      uint8_t b = *p++;
      r |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *v = r;
        return true;
      }
    }
    return false;
  }
  /// A field tag as protobuf reads it: at most 5 bytes, truncated to 32 bits; field 0 invalid.
  bool tag(uint32_t* field, uint32_t* wire) {
    uint32_t t = 0;
    for (int i = 0;; ++i) {
      if (i == 5 || p >= end) return false;
      uint8_t b = *p++;
      t |= static_cast<uint32_t>(b & 0x7f) << (7 * i);
      if (!(b & 0x80)) break;
    }
    *field = t >> 3;
    *wire = t & 7;
    return *field != 0;
  }
  bool bytes(std::string_view* s) {
    uint64_t n;
    if (!varint(&n) || n > static_cast<uint64_t>(end - p)) return false;
    *s = std::string_view(reinterpret_cast<const char*>(p), n);
    p += n;
    return true;
  }
  /// Skips a field of `wire_type` (unknown field, or a known number with another wire type);
  /// a group (deprecated, still accepted by protobuf) up to its matching end tag.
  bool skip(uint32_t wire_type, uint32_t field, int depth = 0) {
    uint64_t v;
    std::string_view s;
    switch (wire_type) {
      case 3: {
        if (depth > 64) return false;  // protobuf's recursion limit is 100
        while (true) {
          uint32_t f, w;
          if (!tag(&f, &w)) return false;
          if (w == 4) return f == field;
          if (!skip(w, f, depth + 1)) return false;
        }
      }
      case 0:
        return varint(&v);
      case 1:
        if (end - p < 8) return false;
        p += 8;
        return true;
      case 2:
        return bytes(&s);
      case 5:
        if (end - p < 4) return false;
        p += 4;
        return true;
      default:
        return false;  // groups (deprecated) and invalid wire types
    }
  }
};

bool string_field(Reader* r, std::string_view* s) { return r->bytes(s) && valid_utf8(*s); }

bool parse_peer(std::string_view data, PeerView* peer) {
  Reader r{reinterpret_cast<const uint8_t*>(data.data()),
           reinterpret_cast<const uint8_t*>(data.data()) + data.size()};
  while (r.p < r.end) {
    uint32_t field, wire;
    if (!r.tag(&field, &wire)) return false;
    bool ok;
    std::string_view other;
    if (wire == 2 && field >= 1 && field <= 4) {
      ok = string_field(&r, field == 1   ? &peer->name
                            : field == 3 ? &peer->dc
                            : field == 4 ? &peer->rack
                                         : &other);
    } else {
      ok = r.skip(wire, field);
    }
    if (!ok) return false;
  }
  return true;
}

bool parse_result(std::string_view data, ResultView* res) {
  Reader r{reinterpret_cast<const uint8_t*>(data.data()),
           reinterpret_cast<const uint8_t*>(data.data()) + data.size()};
  while (r.p < r.end) {
    uint32_t field, wire;
    if (!r.tag(&field, &wire)) return false;
    if (wire != 0 || field > 16) {
      if (!r.skip(wire, field)) return false;
      continue;
    }
    uint64_t v;
    if (!r.varint(&v)) return false;
    switch (field) {  // protobuf truncates varints to the field's width
      case 1:
        res->peer = static_cast<uint32_t>(v);
        break;
      case 2:
        res->timestamp_us = static_cast<int64_t>(v);
        break;
      case 3:
        res->protocol = static_cast<int32_t>(v);
        break;
      case 5:
        res->dscp = static_cast<uint32_t>(v);
        break;
      case 7:
        res->outcome = static_cast<int32_t>(v);
        break;
      case 8:
        res->rtt_us = static_cast<uint32_t>(v);
        break;
      default:
        break;  // port, level, retransmits, ...: not aggregated
    }
  }
  return true;
}

}  // namespace

void BatchView::clear() {
  agent = dc = rack = {};
  batch_id = 0;
  peers.clear();
  results.clear();
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const uint8_t* end = p + s.size();
  while (p < end) {
    // Eight ASCII bytes at a time.
    if (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      if ((w & 0x8080808080808080ULL) == 0) {
        p += 8;
        continue;
      }
    }
    uint8_t c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    for (int k = 1; k <= n; ++k) {
      if ((p[k] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (p[k] & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    p += n + 1;
  }
  return true;
}

bool parse_batch(std::string_view data, BatchView* out) {
  out->clear();
  Reader r{reinterpret_cast<const uint8_t*>(data.data()),
           reinterpret_cast<const uint8_t*>(data.data()) + data.size()};
  // A result encodes in at least 2 bytes: reserve for the common case of results-only bodies.
  out->results.reserve(data.size() / 24);
  std::string_view s;
  while (r.p < r.end) {
    uint32_t field, wire;
    if (!r.tag(&field, &wire)) return false;
    bool ok = true;
    if (wire == 2 && field >= 1 && field <= 4) {
      ok = string_field(&r, field == 1   ? &out->agent
                            : field == 2 ? &out->dc
                            : field == 3 ? &out->rack
                                         : &s);
    } else if (wire == 2 && field == 6) {
      ok = r.bytes(&s) && parse_peer(s, &out->peers.emplace_back());
    } else if (wire == 2 && field == 7) {
      ok = r.bytes(&s) && parse_result(s, &out->results.emplace_back());
    } else if (wire == 0 && field == 5) {
      ok = r.varint(&out->batch_id);
    } else {
      ok = r.skip(wire, field);
    }
    if (!ok) return false;
  }
  return true;
}

void from_proto(const v1::ResultBatch& batch, BatchView* out) {
  out->clear();
  out->agent = batch.agent();
  out->dc = batch.dc();
  out->rack = batch.rack();
  out->batch_id = batch.batch_id();
  out->peers.reserve(static_cast<std::size_t>(batch.peers_size()));
  for (const auto& p : batch.peers()) out->peers.push_back({p.name(), p.dc(), p.rack()});
  out->results.reserve(static_cast<std::size_t>(batch.results_size()));
  for (const auto& r : batch.results()) {
    out->results.push_back({r.timestamp_us(), r.peer(), static_cast<int32_t>(r.protocol()),
                            static_cast<int32_t>(r.outcome()), r.dscp(), r.rtt_us()});
  }
}

}  // namespace pingmesh::collector
