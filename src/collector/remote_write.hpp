#pragma once
/// Prometheus remote write (protocol 0.1.0) of the collector's aggregates. When a 1-minute window
/// closes, the collector hands it to a RemoteWriter (CollectorOptions::on_window_closed); the
/// writer's own thread turns its DC-pair and rack-pair aggregates (server pairs optionally) into
/// samples, encodes them as WriteRequest protobufs (proto/prometheus/remote.proto, hand-encoded),
/// compresses them with snappy (block format) and POSTs them to the configured URL, retrying with
/// exponential backoff and jitter. The queue is bounded: when it is full the oldest requests are
/// dropped and counted; nothing here ever blocks ingest or the collector's background tick.
/// Metric names, types and labels: docs/COLLECTOR.md, "Export".

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "collector/aggregator.hpp"
#include "collector/names.hpp"
#include "collector/stats.hpp"
#include "common/http.hpp"
#include "common/metrics.hpp"

namespace pingmesh::collector {

/// Configuration of the exporter. Config keys (flags without the dashes) in parentheses.
struct RemoteWriteOptions {
  std::string url;                   ///< (remote-write-url) receiver endpoint; empty = export off
  std::string bearer_token;          ///< (remote-write-bearer-token) "Authorization: Bearer ..."
  std::string username;              ///< (remote-write-username) basic auth, with password
  std::string password;              ///< (remote-write-password)
  bool pairs = false;                ///< (remote-write-pairs) also export server-pair series (n²!)
  std::size_t batch_samples = 5000;  ///< (remote-write-batch-size) samples per request
  std::chrono::milliseconds timeout{10000};   ///< (remote-write-timeout) per request
  std::size_t max_queue_samples = 2'000'000;  ///< (remote-write-queue-samples) queue bound
  /// (remote-write-label, repeatable "name=value") labels added to every series, e.g. a cluster.
  std::vector<std::pair<std::string, std::string>> external_labels;
  std::chrono::milliseconds min_backoff{500};    ///< first retry delay (before jitter)
  std::chrono::milliseconds max_backoff{30000};  ///< retry delays double up to this
  /// A request still failing this long after it was queued is given up (counted as failed).
  std::chrono::milliseconds max_retry_age{10 * 60 * 1000};
  /// Closed windows waiting to be converted (each holds its aggregates in memory); when more
  /// arrive the oldest is dropped and counted.
  std::size_t max_pending_windows = 2;
  /// Sends one request; tests inject a fake. Default: a libcurl http::Client.
  std::function<http::ClientResponse(const http::ClientRequest&)> transport;
};

/// Applies one config key given as text (a flag value or a YAML scalar). Returns false when `key`
/// is not a remote-write key; throws std::invalid_argument "KEY: message" for a bad value.
/// Keys: remote-write-url, -bearer-token, -username, -password, -pairs (true/false),
/// -batch-size (1..1000000), -timeout (a duration: 500ms, 10s, 1m), -queue-samples
/// (1000..100000000), -label (name=value, adds one).
bool set_remote_write_option(RemoteWriteOptions* options, std::string_view key,
                             std::string_view value);
/// Every key set_remote_write_option() accepts.
const std::vector<std::string>& remote_write_keys();
/// Checks a whole configuration (URL scheme, auth combination, ranges, label names). Throws
/// std::invalid_argument "KEY: message".
void check_remote_write_options(const RemoteWriteOptions& options);

/// A label as name and value (the name must be a valid Prometheus label name).
using LabelRef = std::pair<std::string_view, std::string_view>;

/// Builds an uncompressed WriteRequest by appending series of one sample each.
class WriteRequestEncoder {
 public:
  /// Appends a TimeSeries with `labels` (which must include "__name__", sorted by name, no
  /// duplicates) and one sample.
  void add(std::span<const LabelRef> labels, double value, int64_t timestamp_ms);
  std::size_t samples() const { return samples_; }
  std::size_t bytes() const { return out_.size(); }
  /// The encoded WriteRequest; the encoder is empty afterwards.
  std::string take();

 private:
  std::string out_;
  std::string series_;
  std::size_t samples_ = 0;
};

/// Snappy block compression (what remote write sends) and its inverse (tests); nullopt when the
/// input is not valid snappy.
std::string snappy_compress(std::string_view raw);
std::optional<std::string> snappy_uncompress(std::string_view compressed);

/// What to do with a response: 2xx sent; 429, 5xx and transport errors (status 0) retried;
/// other statuses (4xx: the receiver refuses the data) given up.
enum class SendVerdict { kSent, kRetry, kReject };
SendVerdict classify_response(int status);
/// Delay before retry number `attempt` (1 = first retry): min_backoff * 2^(attempt-1) capped at
/// max_backoff, with "equal jitter" (half fixed, half uniform by `jitter01` in [0, 1)); a
/// Retry-After of the receiver (seconds, > 0) raises it, still capped at max_backoff.
std::chrono::milliseconds retry_delay(int attempt, std::chrono::milliseconds min_backoff,
                                      std::chrono::milliseconds max_backoff, double jitter01,
                                      int64_t retry_after_s = 0);

/// The exported metric families (docs/COLLECTOR.md lists them).
inline constexpr std::string_view kMetricProbes = "pingmesh_probes_total";
inline constexpr std::string_view kMetricFailures = "pingmesh_probe_failures_total";
inline constexpr std::string_view kMetricDrops = "pingmesh_probe_drops_total";
inline constexpr std::string_view kMetricLossBase = "pingmesh_probe_loss_base_total";
inline constexpr std::string_view kMetricLoss = "pingmesh_loss_ratio";
inline constexpr std::string_view kMetricRtt = "pingmesh_rtt_seconds";
/// Quantiles exported as pingmesh_rtt_seconds{quantile="..."}.
inline constexpr std::array<std::pair<double, std::string_view>, 4> kExportQuantiles{
    {{0.5, "0.5"}, {0.9, "0.9"}, {0.99, "0.99"}, {0.999, "0.999"}}};

/// Turns closed windows into samples. Counters (`_total`) are cumulative since the mapper was
/// created (a restart is a counter reset, which rate()/increase() handle); gauges hold the
/// window's own value. Every sample is stamped with the window's end. Not thread-safe.
class SeriesMapper {
 public:
  using Sink = std::function<void(std::span<const LabelRef> labels, double value, int64_t ts_ms)>;
  SeriesMapper(bool pairs, std::vector<std::pair<std::string, std::string>> external_labels);
  /// Emits the samples of window `w` (length window_s) through `sink`, labels sorted by name.
  /// Returns the number of samples.
  std::size_t map(const Window& w, int64_t window_s, const Names& names, const Sink& sink);
  /// Series whose counters are tracked (entries unseen for 60 windows are forgotten).
  std::size_t tracked() const;

 private:
  struct Totals {
    uint64_t probes = 0, failures = 0, lost = 0, loss_base = 0;
    int64_t last_window = 0;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const {
      uint64_t x = (static_cast<uint64_t>(k.a) << 32 | k.b) * 0x9e3779b97f4a7c15ULL;
      return x ^ ((static_cast<uint64_t>(k.protocol) << 8 | k.dscp) * 0xc2b2ae3d27d4eb4fULL);
    }
  };
  void map_level(Level level, const Window& w, int64_t ts_ms, const Names& names, const Sink& sink,
                 std::size_t* n);

  bool pairs_;
  std::vector<std::pair<std::string, std::string>> external_;
  std::array<std::unordered_map<Key, Totals, KeyHash>, kLevels> totals_;
  int64_t windows_seen_ = 0;
};

/// The exporter: a thread, a bounded queue, retries. Metrics (on `registry`):
/// pingmesh_collector_remote_write_samples_total{outcome=sent|failed|dropped},
/// ..._requests_total{outcome=sent|retried|rejected|given_up}, ..._queue_samples,
/// ..._windows_dropped_total, ..._queue_samples, ..._lag_seconds,
/// ..._last_sent_timestamp_seconds, ..._request_seconds.
class RemoteWriter {
 public:
  /// Starts the thread. `registry` must outlive the writer.
  RemoteWriter(RemoteWriteOptions options, metrics::Registry* registry);
  /// stop().
  ~RemoteWriter();
  RemoteWriter(const RemoteWriter&) = delete;
  RemoteWriter& operator=(const RemoteWriter&) = delete;

  /// Queues a closed window for export; never blocks. `names` must stay valid until stop().
  /// When more than max_pending_windows wait, the oldest is dropped (counted in
  /// windows_dropped).
  void on_window(std::shared_ptr<const Window> window, int64_t window_s, const Names* names);
  /// Converts what is pending and tries to send the queue for at most `drain` (one attempt per
  /// request, no retries), then stops the thread; what is left is counted as dropped.
  /// Idempotent.
  void stop(std::chrono::milliseconds drain = std::chrono::milliseconds(5000));

  /// Counters, for tests and logs.
  struct Stats {
    uint64_t sent = 0, failed = 0, dropped = 0;  ///< samples
    uint64_t requests = 0, retries = 0, windows_dropped = 0;
    std::size_t queued = 0;  ///< samples waiting
  };
  Stats stats() const;
  /// Blocks until nothing is pending or queued (or `timeout`); true when idle. Tests.
  bool wait_idle(std::chrono::milliseconds timeout);

 private:
  struct Pending {
    std::shared_ptr<const Window> window;
    int64_t window_s = 0;
    const Names* names = nullptr;
  };
  struct Request {
    std::string body;  ///< snappy-compressed WriteRequest
    std::size_t samples = 0;
    int64_t max_ts_ms = 0;
    std::chrono::steady_clock::time_point queued_at;
    int attempts = 0;
    std::chrono::steady_clock::time_point not_before;
  };
  struct Metrics;
  void run();
  void convert(const Pending& p);
  void push(Request r);
  /// One attempt; true when the request is done (sent or given up).
  bool attempt(Request* r, bool final);
  void update_gauges();

  RemoteWriteOptions options_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<http::Client> client_;
  SeriesMapper mapper_;
  std::string auth_header_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<Pending> pending_;
  std::deque<Request> queue_;
  std::size_t queued_samples_ = 0;
  bool busy_ = false;  ///< the thread holds a request or a window outside the lock
  bool stopping_ = false;
  std::chrono::milliseconds drain_{0};
  Stats stats_;
  uint64_t rng_ = 0x853c49e6748fea9bULL;
  std::thread thread_;
};

}  // namespace pingmesh::collector
