#include "agent/result_log.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace pingmesh::agent {

ResultLog::ResultLog(std::string path, uint64_t max_bytes)
    : path_(std::move(path)), max_bytes_(std::max<uint64_t>(max_bytes, 4096)) {
  file_ = std::fopen(path_.c_str(), "ae");
  if (file_ == nullptr) {
    throw std::runtime_error(
        fmt::format("cannot open result log {}: {}", path_, std::strerror(errno)));
  }
  std::fseek(file_, 0, SEEK_END);
  long pos = std::ftell(file_);
  size_ = pos > 0 ? static_cast<uint64_t>(pos) : 0;
}

ResultLog::~ResultLog() {
  if (file_ != nullptr) std::fclose(file_);
}

std::string ResultLog::to_json_line(const ProbeResult& r) {
  nlohmann::ordered_json j;
  j["ts_us"] = r.timestamp_us;
  j["peer"] = r.peer ? r.peer->name : "";
  j["addr"] = r.peer ? r.peer->address : "";
  j["dc"] = r.peer ? r.peer->dc : "";
  j["rack"] = r.peer ? r.peer->rack : "";
  j["proto"] = model::to_string(r.protocol);
  j["port"] = r.port;
  j["dscp"] = r.dscp;
  j["level"] = model::to_string(r.level);
  j["outcome"] = to_string(r.outcome);
  j["rtt_us"] = r.rtt_us;
  if (r.retransmits) j["retransmits"] = r.retransmits;
  if (r.payload_bytes) j["payload"] = r.payload_bytes;
  if (r.payload_rtt_us) j["payload_rtt_us"] = r.payload_rtt_us;
  if (r.ttfb_us) j["ttfb_us"] = r.ttfb_us;
  if (r.connect_us) j["connect_us"] = r.connect_us;
  if (r.seq) j["seq"] = r.seq;
  if (r.duplicates) j["duplicates"] = r.duplicates;
  if (r.reordered) j["reordered"] = true;
  return j.dump();
}

void ResultLog::rotate() {
  std::fclose(file_);
  std::string old = path_ + ".1";
  if (std::rename(path_.c_str(), old.c_str()) != 0) ++write_errors_;
  file_ = std::fopen(path_.c_str(), "we");
  size_ = 0;
  if (file_ == nullptr) {
    ++write_errors_;
    spdlog::error("agent: cannot reopen result log {}: {}", path_, std::strerror(errno));
  }
}

void ResultLog::write(const std::vector<ProbeResult>& results) {
  for (const auto& r : results) {
    std::string line = to_json_line(r);
    line.push_back('\n');
    if (size_ + line.size() > max_bytes_) rotate();
    if (file_ == nullptr) {
      file_ = std::fopen(path_.c_str(), "ae");
      if (file_ == nullptr) {
        ++write_errors_;
        return;
      }
    }
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size()) ++write_errors_;
    size_ += line.size();
  }
  if (file_ != nullptr) std::fflush(file_);
}

}  // namespace pingmesh::agent
