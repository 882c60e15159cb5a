#pragma once
/// Write-ahead log of accepted result batches: the collector acknowledges a batch only after its
/// record is on disk (fdatasync), so a crash after the ack loses nothing; at start-up the records
/// are replayed into the aggregator. Concurrent appenders share one write + fdatasync (group
/// commit): the first waiter writes everything queued, the others wait for it.
///
/// Files: <dir>/wal-<16-digit sequence>.log, each a series of records
///   u32 payload length | u32 CRC-32 of the rest | i64 received_us | i64 accept_from_s | u8 format
///   | payload (the batch body exactly as received, still compressed).
/// A torn record at the end of a file (crash mid-write) is detected by length/CRC and ignored.
/// Segments rotate at a size limit and are deleted once every window their records touch is in
/// the store (release()). Thread-safe.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace pingmesh::metrics {
class Histogram;
}

namespace pingmesh::collector {

/// How a batch body is encoded.
enum class BodyFormat : uint8_t { kProtobuf = 0, kSnappy = 1, kGzip = 2, kJson = 3 };

/// One logged batch.
struct WalRecord {
  int64_t received_us = 0;    ///< the collector's clock when the batch was accepted
  int64_t accept_from_s = 0;  ///< oldest window that accepted results then
  BodyFormat format = BodyFormat::kProtobuf;
  std::string_view payload;
};

struct WalOptions {
  std::string dir;                              ///< created if missing
  std::size_t segment_bytes = 64 << 20;         ///< rotate after this many bytes
  bool sync = true;                             ///< fdatasync before acknowledging (tests: true)
  metrics::Histogram* fsync_seconds = nullptr;  ///< observes each fdatasync, if set
};

class Wal {
 public:
  /// Opens the directory; throws std::system_error when it cannot be created or read.
  explicit Wal(WalOptions options);
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  /// Replays every intact record, oldest first, then starts a new segment for appends. Call once,
  /// before append(). Returns the number of records replayed; torn tails are counted in
  /// *torn (if given).
  uint64_t replay(const std::function<void(const WalRecord&)>& fn, uint64_t* torn = nullptr);
  /// Appends a record and returns once it is durable. False (and the WAL is then failed: every
  /// later append fails too) when writing or syncing failed; `error` (if given) says why.
  bool append(const WalRecord& record, std::string* error = nullptr);
  /// Deletes closed segments all of whose records were received before `stored_before_s` (every
  /// window they touch is then in the store). Returns the number of segments deleted.
  std::size_t release(int64_t stored_before_s);
  /// Bytes in all segments; number of segments.
  uint64_t bytes() const;
  std::size_t segments() const;
  bool failed() const;

 private:
  struct Segment {
    uint64_t seq = 0;
    int64_t max_received_us = 0;
    uint64_t bytes = 0;
  };
  std::string path_of(uint64_t seq) const;
  void open_segment(uint64_t seq);
  bool write_all(const std::string& data, std::string* error);

  WalOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Segment> segments_;  ///< back() is the one appended to
  int fd_ = -1;
  std::string pending_;           ///< records queued for the next group write
  int64_t pending_max_us_ = 0;
  uint64_t next_ticket_ = 1;      ///< ticket of the next record queued
  uint64_t durable_ticket_ = 0;   ///< records up to this ticket are on disk
  bool writing_ = false;
  bool failed_ = false;
  std::string error_;
};

}  // namespace pingmesh::collector
