#include "agent/wire.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace pingmesh::agent {

namespace {

constexpr uint8_t kMagic[4] = {'P', 'M', 'S', 'H'};
constexpr uint8_t kVersion = 1;

void put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
uint32_t get32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
void put64(uint8_t* p, uint64_t v) {
  put32(p, static_cast<uint32_t>(v >> 32));
  put32(p + 4, static_cast<uint32_t>(v));
}
uint64_t get64(const uint8_t* p) { return uint64_t{get32(p)} << 32 | get32(p + 4); }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

}  // namespace

void encode_udp_probe(std::span<uint8_t> buf, UdpType type, uint32_t seq, uint64_t token) {
  std::memset(buf.data(), 0, buf.size());
  std::memcpy(buf.data(), kMagic, 4);
  buf[4] = kVersion;
  buf[5] = static_cast<uint8_t>(type);
  put32(buf.data() + 8, seq);
  put64(buf.data() + 12, token);
}

bool decode_udp_probe(std::span<const uint8_t> buf, UdpType* type, uint32_t* seq, uint64_t* token) {
  if (buf.size() < kUdpHeaderBytes || buf.size() > kMaxDatagramBytes) return false;
  if (std::memcmp(buf.data(), kMagic, 4) != 0 || buf[4] != kVersion) return false;
  if (buf[5] != static_cast<uint8_t>(UdpType::kRequest) &&
      buf[5] != static_cast<uint8_t>(UdpType::kReply)) {
    return false;
  }
  *type = static_cast<UdpType>(buf[5]);
  *seq = get32(buf.data() + 8);
  *token = get64(buf.data() + 12);
  return true;
}

bool make_udp_reply(std::span<uint8_t> buf) {
  UdpType type;
  uint32_t seq;
  uint64_t token;
  if (!decode_udp_probe(buf, &type, &seq, &token) || type != UdpType::kRequest) return false;
  buf[5] = static_cast<uint8_t>(UdpType::kReply);
  return true;
}

uint16_t internet_checksum(std::span<const uint8_t> buf) {
  uint32_t sum = 0;
  std::size_t i = 0;
  for (; i + 1 < buf.size(); i += 2) sum += uint32_t{buf[i]} << 8 | buf[i + 1];
  if (i < buf.size()) sum += uint32_t{buf[i]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

void encode_icmp_echo(std::span<uint8_t> buf, bool v6, uint16_t id, uint16_t seq, uint64_t token) {
  std::memset(buf.data(), 0, buf.size());
  buf[0] = v6 ? 128 : 8;  // echo request
  buf[4] = static_cast<uint8_t>(id >> 8);
  buf[5] = static_cast<uint8_t>(id);
  buf[6] = static_cast<uint8_t>(seq >> 8);
  buf[7] = static_cast<uint8_t>(seq);
  put64(buf.data() + 8, token);
  if (!v6) {
    uint16_t c = internet_checksum(buf);
    buf[2] = static_cast<uint8_t>(c >> 8);
    buf[3] = static_cast<uint8_t>(c);
  }
}

bool decode_icmp_echo_reply(std::span<const uint8_t> buf, bool v6, bool has_ip_header, uint16_t* id,
                            uint16_t* seq, uint64_t* token) {
  if (has_ip_header) {
    if (buf.empty()) return false;
    std::size_t ihl = static_cast<std::size_t>(buf[0] & 0x0f) * 4;
    if (ihl < 20 || buf.size() < ihl) return false;
    buf = buf.subspan(ihl);
  }
  if (buf.size() < 16) return false;
  if (buf[0] != (v6 ? 129 : 0) || buf[1] != 0) return false;  // echo reply
  *id = static_cast<uint16_t>(buf[4] << 8 | buf[5]);
  *seq = static_cast<uint16_t>(buf[6] << 8 | buf[7]);
  *token = get64(buf.data() + 8);
  return true;
}

std::string http_probe_request(std::string_view host, uint16_t port, uint32_t size) {
  bool v6 = host.find(':') != std::string_view::npos;
  return fmt::format(
      "GET /ping?size={} HTTP/1.1\r\nHost: {}{}{}:{}\r\nUser-Agent: pingmesh-agent\r\n"
      "Connection: close\r\n\r\n",
      size, v6 ? "[" : "", host, v6 ? "]" : "", port);
}

HttpResponseParser::State HttpResponseParser::feed(std::string_view data) {
  if (state_ == State::kHead) {
    std::size_t old = head_.size();
    head_.append(data);
    auto end = head_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
    if (end == std::string::npos) {
      if (head_.size() > 8192) state_ = State::kError;
      return state_;
    }
    std::size_t body_in_head = head_.size() - (end + 4);
    head_.resize(end + 2);
    if (parse_head() == State::kError) return state_;
    state_ = State::kBody;
    body_bytes_ += body_in_head;
    head_.clear();
    head_.shrink_to_fit();
  } else if (state_ == State::kBody) {
    body_bytes_ += data.size();
  } else {
    return state_;
  }
  if (has_length_ && body_bytes_ >= content_length_) {
    state_ = body_bytes_ == content_length_ ? State::kDone : State::kError;
  }
  return state_;
}

HttpResponseParser::State HttpResponseParser::on_eof() {
  if (state_ == State::kBody && !has_length_) state_ = State::kDone;
  if (state_ != State::kDone) state_ = State::kError;
  return state_;
}

HttpResponseParser::State HttpResponseParser::parse_head() {
  std::string_view h = head_;
  auto eol = h.find("\r\n");
  std::string_view line = h.substr(0, eol);
  // "HTTP/1.1 200 OK"
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || line[8] != ' ') {
    return state_ = State::kError;
  }
  auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, status_);
  if (ec != std::errc() || p != line.data() + 12) return state_ = State::kError;
  h.remove_prefix(eol + 2);
  while (!h.empty()) {
    eol = h.find("\r\n");
    std::string_view field = h.substr(0, eol);
    h.remove_prefix(eol == std::string_view::npos ? h.size() : eol + 2);
    auto colon = field.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = field.substr(0, colon);
    std::string_view value = field.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (iequals(name, "content-length")) {
      auto [q, e2] = std::from_chars(value.data(), value.data() + value.size(), content_length_);
      if (e2 != std::errc() || q != value.data() + value.size()) return state_ = State::kError;
      has_length_ = true;
    } else if (iequals(name, "transfer-encoding")) {
      return state_ = State::kError;  // our responders never chunk; a 64 KiB cap needs a length
    }
  }
  return state_;
}

}  // namespace pingmesh::agent
