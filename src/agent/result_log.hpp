#pragma once
/// The optional local result log (as the paper's agent kept): one JSON object per line, rotated
/// to "<file>.1" when it would grow past its size cap, so it takes at most twice the cap on
/// disk. Not thread-safe; written by the event loop thread only (buffered, flushed per call).

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "agent/result.hpp"

namespace pingmesh::agent {

class ResultLog {
 public:
  /// Opens (appends to) `path`. Throws std::runtime_error when it cannot be opened.
  ResultLog(std::string path, uint64_t max_bytes);
  ~ResultLog();
  ResultLog(const ResultLog&) = delete;
  ResultLog& operator=(const ResultLog&) = delete;

  /// Appends one line per result; write errors are counted, not thrown.
  void write(const std::vector<ProbeResult>& results);
  uint64_t write_errors() const { return write_errors_; }

  /// The JSON line of one result (without the newline).
  static std::string to_json_line(const ProbeResult& r);

 private:
  void rotate();
  std::string path_;
  uint64_t max_bytes_;
  std::FILE* file_ = nullptr;
  uint64_t size_ = 0;
  uint64_t write_errors_ = 0;
};

}  // namespace pingmesh::agent
