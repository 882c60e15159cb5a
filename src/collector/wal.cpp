#include "collector/wal.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "common/metrics.hpp"

namespace pingmesh::collector {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kHeader = 25;
constexpr uint32_t kMaxPayload = 1u << 30;

void put_u32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put_i64(char* p, int64_t v) { std::memcpy(p, &v, 8); }
uint32_t get_u32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
int64_t get_i64(const char* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

uint32_t checksum(const char* header_rest, std::string_view payload) {
  uLong c = crc32(0L, reinterpret_cast<const Bytef*>(header_rest), kHeader - 8);
  c = crc32(c, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size()));
  return static_cast<uint32_t>(c);
}

/// Parses "wal-<digits>.log"; false for other names.
bool parse_name(const std::string& name, uint64_t* seq) {
  if (name.size() != 24 || name.rfind("wal-", 0) != 0 || name.substr(20) != ".log") return false;
  *seq = 0;
  for (std::size_t i = 4; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    *seq = *seq * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return true;
}

}  // namespace

Wal::Wal(WalOptions options) : options_(std::move(options)) {
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec) throw std::system_error(ec, "cannot create WAL directory " + options_.dir);
}

Wal::~Wal() {
  if (fd_ >= 0) ::close(fd_);
}

std::string Wal::path_of(uint64_t seq) const {
  char name[32];
  std::snprintf(name, sizeof name, "wal-%016llu.log", static_cast<unsigned long long>(seq));
  return options_.dir + "/" + name;
}

void Wal::open_segment(uint64_t seq) {
  if (fd_ >= 0) ::close(fd_);
  std::string path = path_of(seq);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "cannot create WAL segment " + path);
  }
  // Make the new file's directory entry durable, so a synced record is found after a crash.
  int dfd = ::open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    if (options_.sync) ::fsync(dfd);
    ::close(dfd);
  }
  segments_.push_back({seq, 0, 0});
}

uint64_t Wal::replay(const std::function<void(const WalRecord&)>& fn, uint64_t* torn) {
  std::lock_guard lock(mu_);
  std::vector<uint64_t> seqs;
  for (const auto& entry : fs::directory_iterator(options_.dir)) {
    uint64_t seq;
    if (entry.is_regular_file() && parse_name(entry.path().filename().string(), &seq)) {
      seqs.push_back(seq);
    }
  }
  std::sort(seqs.begin(), seqs.end());
  uint64_t records = 0, torn_count = 0;
  for (uint64_t seq : seqs) {
    std::ifstream in(path_of(seq), std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string data = ss.str();
    Segment seg{seq, 0, data.size()};
    std::size_t pos = 0;
    while (pos < data.size()) {
      if (data.size() - pos < kHeader) {
        ++torn_count;
        break;
      }
      const char* h = data.data() + pos;
      uint32_t len = get_u32(h);
      if (len > kMaxPayload || data.size() - pos - kHeader < len) {
        ++torn_count;
        break;
      }
      std::string_view payload(h + kHeader, len);
      if (checksum(h + 8, payload) != get_u32(h + 4) || static_cast<uint8_t>(h[24]) > 3) {
        ++torn_count;
        break;
      }
      WalRecord r{get_i64(h + 8), get_i64(h + 16), static_cast<BodyFormat>(h[24]), payload};
      seg.max_received_us = std::max(seg.max_received_us, r.received_us);
      fn(r);
      ++records;
      pos += kHeader + len;
    }
    segments_.push_back(seg);
  }
  if (torn_count) spdlog::warn("collector: WAL: ignored {} torn record(s) at segment ends", torn_count);
  if (torn) *torn = torn_count;
  open_segment(seqs.empty() ? 1 : seqs.back() + 1);
  return records;
}

bool Wal::write_all(const std::string& data, std::string* error) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd_, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = std::string("WAL write failed: ") + std::strerror(errno);
      return false;
    }
    off += static_cast<std::size_t>(n);
  }
  if (options_.sync) {
    auto t0 = std::chrono::steady_clock::now();
    if (::fdatasync(fd_) != 0) {
      *error = std::string("WAL fdatasync failed: ") + std::strerror(errno);
      return false;
    }
    if (options_.fsync_seconds) {
      options_.fsync_seconds->observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  return true;
}

bool Wal::append(const WalRecord& record, std::string* error) {
  char h[kHeader];
  put_u32(h, static_cast<uint32_t>(record.payload.size()));
  put_i64(h + 8, record.received_us);
  put_i64(h + 16, record.accept_from_s);
  h[24] = static_cast<char>(record.format);
  put_u32(h + 4, checksum(h + 8, record.payload));

  std::unique_lock lock(mu_);
  if (fd_ < 0) open_segment(segments_.empty() ? 1 : segments_.back().seq + 1);
  pending_.append(h, kHeader);
  pending_.append(record.payload);
  pending_max_us_ = std::max(pending_max_us_, record.received_us);
  uint64_t ticket = next_ticket_++;
  while (durable_ticket_ < ticket && !failed_) {
    if (writing_) {
      cv_.wait(lock);
      continue;
    }
    writing_ = true;
    std::string data = std::move(pending_);
    pending_.clear();
    uint64_t last = next_ticket_ - 1;
    int64_t max_us = pending_max_us_;
    pending_max_us_ = 0;
    lock.unlock();
    std::string err;
    bool ok = write_all(data, &err);
    lock.lock();
    writing_ = false;
    if (ok) {
      durable_ticket_ = last;
      Segment& seg = segments_.back();
      seg.bytes += data.size();
      seg.max_received_us = std::max(seg.max_received_us, max_us);
      if (seg.bytes >= options_.segment_bytes) {
        try {
          open_segment(seg.seq + 1);
        } catch (const std::system_error& e) {
          ok = false;
          err = e.what();
        }
      }
    }
    if (!ok) {
      failed_ = true;
      error_ = err;
      spdlog::error("collector: {}; refusing further batches", err);
    }
    cv_.notify_all();
  }
  if (failed_ && durable_ticket_ < ticket) {
    if (error) *error = error_;
    return false;
  }
  return true;
}

std::size_t Wal::release(int64_t stored_before_s) {
  std::vector<uint64_t> doomed;
  {
    std::lock_guard lock(mu_);
    while (segments_.size() > 1 &&
           segments_.front().max_received_us < stored_before_s * 1'000'000) {
      doomed.push_back(segments_.front().seq);
      segments_.pop_front();
    }
  }
  for (uint64_t seq : doomed) {
    std::error_code ec;
    fs::remove(path_of(seq), ec);
    if (ec) spdlog::warn("collector: cannot remove WAL segment {}: {}", path_of(seq), ec.message());
  }
  return doomed.size();
}

uint64_t Wal::bytes() const {
  std::lock_guard lock(mu_);
  uint64_t n = 0;
  for (const auto& s : segments_) n += s.bytes;
  return n;
}

std::size_t Wal::segments() const {
  std::lock_guard lock(mu_);
  return segments_.size();
}

bool Wal::failed() const {
  std::lock_guard lock(mu_);
  return failed_;
}

}  // namespace pingmesh::collector
