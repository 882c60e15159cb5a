#pragma once
/// LEB128 varints and zigzag encoding for the compact storage formats (sketches, tiles, WAL).
/// Decoders take a string_view by pointer, consume what they read, and return false on truncated
/// or malformed input instead of throwing.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace pingmesh::collector::varint {

/// Appends v as an unsigned LEB128 varint.
inline void put(std::string* out, uint64_t v) {
  char buf[10];
  int n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(static_cast<uint8_t>(v) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, static_cast<std::size_t>(n));
}

/// Reads an unsigned varint; false when truncated or longer than 10 bytes.
inline bool get(std::string_view* in, uint64_t* v) {
  if (!in->empty() && static_cast<uint8_t>(in->front()) < 0x80) {  // one byte: the common case
    *v = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    return true;
  }
  uint64_t result = 0;
  int shift = 0;
  std::size_t i = 0;
  while (i < in->size() && shift < 64) {
    auto b = static_cast<uint8_t>((*in)[i++]);
    result |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = result;
      in->remove_prefix(i);
      return true;
    }
    shift += 7;
  }
  return false;
}

/// Zigzag-maps a signed value to unsigned (0,-1,1,-2 -> 0,1,2,3).
inline uint64_t zigzag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t unzigzag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

/// Appends a double as 8 little-endian bytes (x86-64 and arm64 are little-endian).
inline void put_double(std::string* out, double d) {
  char buf[8];
  std::memcpy(buf, &d, 8);
  out->append(buf, 8);
}

inline bool get_double(std::string_view* in, double* d) {
  if (in->size() < 8) return false;
  std::memcpy(d, in->data(), 8);
  in->remove_prefix(8);
  return true;
}

}  // namespace pingmesh::collector::varint
