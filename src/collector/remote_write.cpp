// Prometheus remote write of closed windows: sample mapping, WriteRequest encoding, snappy, the
// bounded queue and the sending thread with retries. See remote_write.hpp.
#include "collector/remote_write.hpp"

#include <snappy.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace pingmesh::collector {

// ---------------------------------------------------------------------------------------------
// Configuration

namespace {

std::invalid_argument bad(std::string_view key, const std::string& msg) {
  return std::invalid_argument(std::string(key) + ": " + msg);
}

bool valid_label_name(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

template <class T>
T parse_uint(std::string_view key, std::string_view v, T min, T max) {
  unsigned long long n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() ||
      n < static_cast<unsigned long long>(min) || n > static_cast<unsigned long long>(max)) {
    throw bad(key, "must be an integer in " + std::to_string(min) + ".." + std::to_string(max) +
                       ", got '" + std::string(v) + "'");
  }
  return static_cast<T>(n);
}

/// "500ms", "10s", "2m", or a plain number of seconds.
std::chrono::milliseconds parse_duration_ms(std::string_view key, std::string_view v) {
  long long n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  std::string_view unit(end, static_cast<std::size_t>(v.data() + v.size() - end));
  long long mult = unit.empty() || unit == "s" ? 1000 : unit == "ms" ? 1 : unit == "m" ? 60000 : 0;
  if (v.empty() || ec != std::errc() || mult == 0 || n <= 0) {
    throw bad(key,
              "expected a positive duration like 500ms, 10s or 1m, got '" + std::string(v) + "'");
  }
  return std::chrono::milliseconds(n * mult);
}

const std::vector<std::string> kReserved{"__name__",   "level",    "protocol", "src_dc",
                                         "dst_dc",     "src_rack", "dst_rack", "src_server",
                                         "dst_server", "dscp",     "quantile"};

}  // namespace

const std::vector<std::string>& remote_write_keys() {
  static const std::vector<std::string> keys{
      "remote-write-url",      "remote-write-bearer-token",  "remote-write-username",
      "remote-write-password", "remote-write-pairs",         "remote-write-batch-size",
      "remote-write-timeout",  "remote-write-queue-samples", "remote-write-label"};
  return keys;
}

bool set_remote_write_option(RemoteWriteOptions* o, std::string_view key, std::string_view v) {
  if (key == "remote-write-url") {
    o->url = v;
  } else if (key == "remote-write-bearer-token") {
    o->bearer_token = v;
  } else if (key == "remote-write-username") {
    o->username = v;
  } else if (key == "remote-write-password") {
    o->password = v;
  } else if (key == "remote-write-pairs") {
    if (v == "true" || v == "1" || v == "yes" || v == "on") {
      o->pairs = true;
    } else if (v == "false" || v == "0" || v == "no" || v == "off") {
      o->pairs = false;
    } else {
      throw bad(key, "must be true or false, got '" + std::string(v) + "'");
    }
  } else if (key == "remote-write-batch-size") {
    o->batch_samples = parse_uint<std::size_t>(key, v, 1, 1'000'000);
  } else if (key == "remote-write-timeout") {
    o->timeout = parse_duration_ms(key, v);
  } else if (key == "remote-write-queue-samples") {
    o->max_queue_samples = parse_uint<std::size_t>(key, v, 1000, 100'000'000);
  } else if (key == "remote-write-label") {
    auto eq = v.find('=');
    if (eq == std::string_view::npos) {
      throw bad(key, "expected name=value, got '" + std::string(v) + "'");
    }
    o->external_labels.emplace_back(std::string(v.substr(0, eq)), std::string(v.substr(eq + 1)));
  } else {
    return false;
  }
  return true;
}

void check_remote_write_options(const RemoteWriteOptions& o) {
  if (o.url.empty()) {
    if (!o.bearer_token.empty() || !o.username.empty() || !o.password.empty() || o.pairs ||
        !o.external_labels.empty()) {
      throw bad("remote-write-url", "required when other remote-write-* settings are given");
    }
    return;
  }
  if (!o.url.starts_with("http://") && !o.url.starts_with("https://")) {
    throw bad("remote-write-url", "must start with http:// or https://, got '" + o.url + "'");
  }
  if (o.url.size() <= (o.url.starts_with("https://") ? 8u : 7u)) {
    throw bad("remote-write-url", "has no host: '" + o.url + "'");
  }
  if (!o.bearer_token.empty() && (!o.username.empty() || !o.password.empty())) {
    throw bad("remote-write-bearer-token", "give either a bearer token or a username/password");
  }
  if (o.username.empty() != o.password.empty()) {
    throw bad(o.username.empty() ? "remote-write-username" : "remote-write-password",
              "basic auth needs both remote-write-username and remote-write-password");
  }
  if (o.batch_samples < 1 || o.batch_samples > 1'000'000) {
    throw bad("remote-write-batch-size", "must be in 1..1000000");
  }
  if (o.timeout.count() <= 0) throw bad("remote-write-timeout", "must be positive");
  if (o.max_queue_samples < o.batch_samples) {
    throw bad("remote-write-queue-samples",
              "must be at least remote-write-batch-size (" + std::to_string(o.batch_samples) + ")");
  }
  std::vector<std::string_view> seen;
  for (const auto& [name, value] : o.external_labels) {
    if (!valid_label_name(name) || name.starts_with("__")) {
      throw bad("remote-write-label",
                "'" + name + "' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting __)");
    }
    if (std::find(kReserved.begin(), kReserved.end(), name) != kReserved.end()) {
      throw bad("remote-write-label", "'" + name + "' is a label the exporter sets itself");
    }
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      throw bad("remote-write-label", "'" + name + "' is given twice");
    }
    if (value.empty()) throw bad("remote-write-label", "'" + name + "' has an empty value");
    seen.push_back(name);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

namespace {

void put_varint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

/// A length-delimited field (wire type 2).
void put_bytes(std::string* out, int field, std::string_view bytes) {
  out->push_back(static_cast<char>(field << 3 | 2));
  put_varint(out, bytes.size());
  out->append(bytes);
}

std::size_t varint_size(uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

}  // namespace

void WriteRequestEncoder::add(std::span<const LabelRef> labels, double value,
                              int64_t timestamp_ms) {
  series_.clear();
  for (const auto& [name, val] : labels) {
    // Label { string name = 1; string value = 2; }
    std::size_t len =
        1 + varint_size(name.size()) + name.size() + 1 + varint_size(val.size()) + val.size();
    series_.push_back(static_cast<char>(1 << 3 | 2));  // TimeSeries.labels = 1
    put_varint(&series_, len);
    put_bytes(&series_, 1, name);
    put_bytes(&series_, 2, val);
  }
  // Sample { double value = 1; int64 timestamp = 2; }
  char sample[1 + 8 + 1 + 10];
  std::size_t n = 0;
  sample[n++] = static_cast<char>(1 << 3 | 1);  // fixed64
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  for (int i = 0; i < 8; ++i) sample[n++] = static_cast<char>(bits >> (8 * i));
  sample[n++] = static_cast<char>(2 << 3 | 0);  // varint
  auto ts = static_cast<uint64_t>(timestamp_ms);
  while (ts >= 0x80) {
    sample[n++] = static_cast<char>(ts | 0x80);
    ts >>= 7;
  }
  sample[n++] = static_cast<char>(ts);
  put_bytes(&series_, 2, std::string_view(sample, n));  // TimeSeries.samples = 2
  put_bytes(&out_, 1, series_);                         // WriteRequest.timeseries = 1
  ++samples_;
}

std::string WriteRequestEncoder::take() {
  std::string out;
  out.swap(out_);
  samples_ = 0;
  return out;
}

std::string snappy_compress(std::string_view raw) {
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

std::optional<std::string> snappy_uncompress(std::string_view compressed) {
  std::string out;
  if (!snappy::Uncompress(compressed.data(), compressed.size(), &out)) return std::nullopt;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Retry policy

SendVerdict classify_response(int status) {
  if (status >= 200 && status < 300) return SendVerdict::kSent;
  if (status == 0 || status == 429 || status >= 500) return SendVerdict::kRetry;
  return SendVerdict::kReject;
}

std::chrono::milliseconds retry_delay(int attempt, std::chrono::milliseconds min_backoff,
                                      std::chrono::milliseconds max_backoff, double jitter01,
                                      int64_t retry_after_s) {
  double base =
      static_cast<double>(min_backoff.count()) * std::pow(2.0, std::clamp(attempt - 1, 0, 40));
  base = std::min(base, static_cast<double>(max_backoff.count()));
  double jitter = std::clamp(jitter01, 0.0, 1.0);
  double d = base / 2 + base / 2 * jitter;
  if (retry_after_s > 0) d = std::max(d, static_cast<double>(retry_after_s) * 1000.0);
  d = std::min(d, static_cast<double>(max_backoff.count()));
  return std::chrono::milliseconds(static_cast<int64_t>(d));
}

// ---------------------------------------------------------------------------------------------
// Mapping windows to samples

SeriesMapper::SeriesMapper(bool pairs,
                           std::vector<std::pair<std::string, std::string>> external_labels)
    : pairs_(pairs), external_(std::move(external_labels)) {}

std::size_t SeriesMapper::tracked() const {
  std::size_t n = 0;
  for (const auto& m : totals_) n += m.size();
  return n;
}

std::size_t SeriesMapper::map(const Window& w, int64_t window_s, const Names& names,
                              const Sink& sink) {
  std::size_t n = 0;
  int64_t ts_ms = (w.start_s + window_s) * 1000;
  ++windows_seen_;
  map_level(Level::kDcPair, w, ts_ms, names, sink, &n);
  map_level(Level::kRackPair, w, ts_ms, names, sink, &n);
  if (pairs_) map_level(Level::kPair, w, ts_ms, names, sink, &n);
  // Forget series silent for an hour of windows (bounded memory under churn; a returning series
  // restarts its counters, which PromQL sees as a reset).
  if (windows_seen_ % 60 == 0) {
    for (auto& m : totals_) {
      std::erase_if(m, [&](const auto& kv) { return kv.second.last_window < windows_seen_ - 60; });
    }
  }
  return n;
}

void SeriesMapper::map_level(Level level, const Window& w, int64_t ts_ms, const Names& names,
                             const Sink& sink, std::size_t* n) {
  const Cells& cells = w.at(level);
  auto& totals = totals_[static_cast<int>(level)];
  std::vector<LabelRef> base;
  std::vector<LabelRef> labels;
  std::string src_dc, dst_dc, src_rack, dst_rack, src_server, dst_server, dscp;
  const std::string level_name(to_string(level));
  for (uint32_t c = 0; c < cells.size(); ++c) {
    const Key& k = cells.key(c);
    const Stats& s = cells.stats(c);
    switch (level) {
      case Level::kDcPair:
        src_dc = names.dc_name(k.a);
        dst_dc = names.dc_name(k.b);
        break;
      case Level::kRackPair:
        src_rack = names.rack_name(k.a);
        dst_rack = names.rack_name(k.b);
        src_dc = names.dc_name(names.rack_dc(k.a));
        dst_dc = names.dc_name(names.rack_dc(k.b));
        break;
      default:  // kPair
        src_server = names.server_name(k.a);
        dst_server = names.server_name(k.b);
        src_rack = names.rack_name(names.server_rack(k.a));
        dst_rack = names.rack_name(names.server_rack(k.b));
        src_dc = names.dc_name(names.server_dc(k.a));
        dst_dc = names.dc_name(names.server_dc(k.b));
        dscp = std::to_string(k.dscp);
        break;
    }
    base.clear();
    for (const auto& [ln, lv] : external_) base.emplace_back(ln, lv);
    base.emplace_back("level", level_name);
    base.emplace_back("protocol", to_string(static_cast<Protocol>(k.protocol)));
    base.emplace_back("src_dc", src_dc);
    base.emplace_back("dst_dc", dst_dc);
    if (level != Level::kDcPair) {
      base.emplace_back("src_rack", src_rack);
      base.emplace_back("dst_rack", dst_rack);
    }
    if (level == Level::kPair) {
      base.emplace_back("src_server", src_server);
      base.emplace_back("dst_server", dst_server);
      base.emplace_back("dscp", dscp);
    }
    // Prometheus ignores empty label values; leave them out (e.g. a server with no rack).
    std::erase_if(base, [](const LabelRef& l) { return l.second.empty(); });

    auto emit = [&](std::string_view metric, double value, std::string_view quantile) {
      labels.assign(base.begin(), base.end());
      labels.emplace_back("__name__", metric);
      if (!quantile.empty()) labels.emplace_back("quantile", quantile);
      std::sort(labels.begin(), labels.end(),
                [](const LabelRef& x, const LabelRef& y) { return x.first < y.first; });
      sink(labels, value, ts_ms);
      ++*n;
    };

    Totals& t = totals[k];
    t.probes += s.probes;
    t.failures += s.failures();
    t.lost += s.lost;
    t.loss_base += s.loss_base;
    t.last_window = windows_seen_;
    emit(kMetricProbes, static_cast<double>(t.probes), {});
    emit(kMetricFailures, static_cast<double>(t.failures), {});
    emit(kMetricDrops, static_cast<double>(t.lost), {});
    emit(kMetricLossBase, static_cast<double>(t.loss_base), {});
    if (auto loss = s.loss()) emit(kMetricLoss, *loss, {});
    if (s.rtt.count() > 0) {
      for (const auto& [q, text] : kExportQuantiles)
        emit(kMetricRtt, s.rtt.quantile(q) / 1e6, text);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The writer

struct RemoteWriter::Metrics {
  explicit Metrics(metrics::Registry& r)
      : sent(r.counter("pingmesh_collector_remote_write_samples_total",
                       "Remote-write samples, by outcome: sent (acknowledged), failed (refused "
                       "by the receiver or given up after retries), dropped (queue full, or "
                       "left at shutdown).",
                       {{"outcome", "sent"}})),
        failed(r.counter("pingmesh_collector_remote_write_samples_total",
                         "Remote-write samples, by outcome: sent (acknowledged), failed (refused "
                         "by the receiver or given up after retries), dropped (queue full, or "
                         "left at shutdown).",
                         {{"outcome", "failed"}})),
        dropped(r.counter("pingmesh_collector_remote_write_samples_total",
                          "Remote-write samples, by outcome: sent (acknowledged), failed (refused "
                          "by the receiver or given up after retries), dropped (queue full, or "
                          "left at shutdown).",
                          {{"outcome", "dropped"}})),
        req_sent(r.counter("pingmesh_collector_remote_write_requests_total",
                           "Remote-write requests, by outcome.", {{"outcome", "sent"}})),
        req_retried(r.counter("pingmesh_collector_remote_write_requests_total",
                              "Remote-write requests, by outcome.", {{"outcome", "retried"}})),
        req_rejected(r.counter("pingmesh_collector_remote_write_requests_total",
                               "Remote-write requests, by outcome.", {{"outcome", "rejected"}})),
        req_given_up(r.counter("pingmesh_collector_remote_write_requests_total",
                               "Remote-write requests, by outcome.", {{"outcome", "given_up"}})),
        windows_dropped(r.counter("pingmesh_collector_remote_write_windows_dropped_total",
                                  "Closed windows not exported because the exporter was behind.")),
        queue_samples(r.gauge("pingmesh_collector_remote_write_queue_samples",
                              "Samples encoded and waiting to be sent.")),
        lag_seconds(r.gauge("pingmesh_collector_remote_write_lag_seconds",
                            "Age of the oldest request waiting to be sent (0 when none).")),
        last_sent(r.gauge("pingmesh_collector_remote_write_last_sent_timestamp_seconds",
                          "Timestamp of the newest sample the receiver acknowledged.")),
        request_seconds(r.histogram("pingmesh_collector_remote_write_request_seconds",
                                    "Duration of remote-write requests.",
                                    metrics::exponential_buckets(0.001, 2.5, 12))) {}
  metrics::Counter &sent, &failed, &dropped;
  metrics::Counter &req_sent, &req_retried, &req_rejected, &req_given_up;
  metrics::Counter& windows_dropped;
  metrics::Gauge &queue_samples, &lag_seconds, &last_sent;
  metrics::Histogram& request_seconds;
};

namespace {

std::string base64(std::string_view in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8 |
                 static_cast<uint8_t>(in[i + 2]);
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
  }
  if (i + 1 == in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8;
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
  }
  return out;
}

}  // namespace

RemoteWriter::RemoteWriter(RemoteWriteOptions options, metrics::Registry* registry)
    : options_(std::move(options)),
      metrics_(std::make_unique<Metrics>(*registry)),
      mapper_(options_.pairs, options_.external_labels) {
  if (!options_.transport) {
    client_ = std::make_unique<http::Client>();
    options_.transport = [this](const http::ClientRequest& r) { return client_->perform(r); };
  }
  if (!options_.bearer_token.empty()) {
    auth_header_ = "Bearer " + options_.bearer_token;
  } else if (!options_.username.empty()) {
    auth_header_ = "Basic " + base64(options_.username + ":" + options_.password);
  }
  thread_ = std::thread([this] { run(); });
}

RemoteWriter::~RemoteWriter() { stop(); }

void RemoteWriter::on_window(std::shared_ptr<const Window> window, int64_t window_s,
                             const Names* names) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    pending_.push_back({std::move(window), window_s, names});
    while (pending_.size() > std::max<std::size_t>(options_.max_pending_windows, 1)) {
      spdlog::warn("remote write: exporter behind, dropping window {}",
                   pending_.front().window->start_s);
      pending_.pop_front();
      ++stats_.windows_dropped;
      metrics_->windows_dropped.inc();
    }
  }
  cv_.notify_all();
}

void RemoteWriter::stop(std::chrono::milliseconds drain) {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    drain_ = drain;
  }
  cv_.notify_all();
  thread_.join();
}

RemoteWriter::Stats RemoteWriter::stats() const {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.queued = queued_samples_;
  return s;
}

bool RemoteWriter::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_for(lock, timeout,
                           [this] { return pending_.empty() && queue_.empty() && !busy_; });
}

void RemoteWriter::push(Request r) {
  // Under mu_. Make room by dropping the oldest requests: fresh data is worth more, and the
  // receiver would refuse samples older than what it already holds anyway.
  r.queued_at = std::chrono::steady_clock::now();
  r.not_before = r.queued_at;
  while (!queue_.empty() && queued_samples_ + r.samples > options_.max_queue_samples) {
    queued_samples_ -= queue_.front().samples;
    stats_.dropped += queue_.front().samples;
    metrics_->dropped.inc(static_cast<double>(queue_.front().samples));
    queue_.pop_front();
  }
  queued_samples_ += r.samples;
  queue_.push_back(std::move(r));
}

void RemoteWriter::convert(const Pending& p) {
  WriteRequestEncoder enc;
  int64_t max_ts = 0;
  std::vector<Request> out;
  auto cut = [&] {
    if (enc.samples() == 0) return;
    Request r;
    r.samples = enc.samples();
    r.max_ts_ms = max_ts;
    r.body = snappy_compress(enc.take());
    out.push_back(std::move(r));
  };
  std::size_t n = mapper_.map(*p.window, p.window_s, *p.names,
                              [&](std::span<const LabelRef> labels, double v, int64_t ts) {
                                enc.add(labels, v, ts);
                                max_ts = std::max(max_ts, ts);
                                if (enc.samples() >= options_.batch_samples) cut();
                              });
  cut();
  spdlog::debug("remote write: window {} -> {} samples in {} request(s)", p.window->start_s, n,
                out.size());
  std::lock_guard lock(mu_);
  for (auto& r : out) push(std::move(r));
}

bool RemoteWriter::attempt(Request* r, bool final) {
  http::ClientRequest req;
  req.method = "POST";
  req.url = options_.url;
  req.timeout = options_.timeout;
  req.headers = {{"Content-Encoding", "snappy"},
                 {"Content-Type", "application/x-protobuf"},
                 {"X-Prometheus-Remote-Write-Version", "0.1.0"},
                 {"User-Agent", "pingmesh-collector"}};
  if (!auth_header_.empty()) req.headers.emplace_back("Authorization", auth_header_);
  req.body = r->body;  // the transport takes a copy; retries need the body again
  auto t0 = std::chrono::steady_clock::now();
  http::ClientResponse resp = options_.transport(req);
  auto now = std::chrono::steady_clock::now();
  metrics_->request_seconds.observe(std::chrono::duration<double>(now - t0).count());
  ++r->attempts;
  std::lock_guard lock(mu_);
  ++stats_.requests;
  switch (classify_response(resp.status)) {
    case SendVerdict::kSent:
      stats_.sent += r->samples;
      metrics_->sent.inc(static_cast<double>(r->samples));
      metrics_->req_sent.inc();
      metrics_->last_sent.set(
          std::max(metrics_->last_sent.value(), static_cast<double>(r->max_ts_ms) / 1000.0));
      return true;
    case SendVerdict::kReject: {
      std::string body = resp.body.substr(0, 300);
      spdlog::error("remote write: {} refused {} samples with {}: {}", options_.url, r->samples,
                    resp.status, body);
      stats_.failed += r->samples;
      metrics_->failed.inc(static_cast<double>(r->samples));
      metrics_->req_rejected.inc();
      return true;
    }
    case SendVerdict::kRetry:
      break;
  }
  std::string why = resp.status == 0 ? resp.error : "HTTP " + std::to_string(resp.status);
  if (final || now - r->queued_at > options_.max_retry_age) {
    spdlog::error("remote write: giving up {} samples after {} attempt(s): {}", r->samples,
                  r->attempts, why);
    stats_.failed += r->samples;
    metrics_->failed.inc(static_cast<double>(r->samples));
    metrics_->req_given_up.inc();
    return true;
  }
  int64_t retry_after = 0;
  if (auto h = resp.header("retry-after"); !h.empty()) {
    std::from_chars(h.data(), h.data() + h.size(), retry_after);
  }
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  double jitter = static_cast<double>(rng_ >> 11) / 9007199254740992.0;
  auto delay =
      retry_delay(r->attempts, options_.min_backoff, options_.max_backoff, jitter, retry_after);
  r->not_before = now + delay;
  ++stats_.retries;
  metrics_->req_retried.inc();
  if (r->attempts == 1 || r->attempts % 10 == 0) {
    spdlog::warn("remote write: {} failed ({}), attempt {}; retrying in {} ms", options_.url, why,
                 r->attempts, delay.count());
  }
  return false;
}

void RemoteWriter::update_gauges() {
  // Under mu_.
  metrics_->queue_samples.set(static_cast<double>(queued_samples_));
  double lag = 0;
  if (!queue_.empty()) {
    lag = std::chrono::duration<double>(std::chrono::steady_clock::now() - queue_.front().queued_at)
              .count();
  }
  metrics_->lag_seconds.set(lag);
}

void RemoteWriter::run() {
  std::unique_lock lock(mu_);
  std::chrono::steady_clock::time_point deadline{};
  while (true) {
    update_gauges();
    if (!pending_.empty()) {
      Pending p = std::move(pending_.front());
      pending_.pop_front();
      busy_ = true;
      lock.unlock();
      try {
        convert(p);
      } catch (const std::exception& e) {
        spdlog::error("remote write: cannot encode window {}: {}", p.window->start_s, e.what());
      }
      p = {};
      lock.lock();
      busy_ = false;
      continue;
    }
    if (stopping_ && deadline == std::chrono::steady_clock::time_point{}) {
      deadline = std::chrono::steady_clock::now() + drain_;
    }
    bool draining = stopping_;
    if (draining && (queue_.empty() || std::chrono::steady_clock::now() >= deadline)) {
      for (const auto& r : queue_) {
        stats_.dropped += r.samples;
        metrics_->dropped.inc(static_cast<double>(r.samples));
      }
      if (!queue_.empty()) {
        spdlog::warn("remote write: {} samples not sent at shutdown", queued_samples_);
      }
      queue_.clear();
      queued_samples_ = 0;
      update_gauges();
      idle_cv_.notify_all();
      return;
    }
    if (queue_.empty()) {
      idle_cv_.notify_all();
      cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    if (!draining && queue_.front().not_before > now) {
      cv_.wait_until(lock, queue_.front().not_before,
                     [this] { return stopping_ || !pending_.empty(); });
      continue;
    }
    Request r = std::move(queue_.front());
    queue_.pop_front();
    queued_samples_ -= r.samples;
    busy_ = true;
    lock.unlock();
    bool done = attempt(&r, draining);
    lock.lock();
    busy_ = false;
    if (!done) {
      // Back at the head: requests go out in order, so a receiver sees each series' samples in
      // time order. Room may have been made meanwhile only by dropping older requests.
      queued_samples_ += r.samples;
      queue_.push_front(std::move(r));
      while (queued_samples_ > options_.max_queue_samples && queue_.size() > 1) {
        // The queue grew while we were sending: drop the oldest after the head.
        auto it = std::next(queue_.begin());
        queued_samples_ -= it->samples;
        stats_.dropped += it->samples;
        metrics_->dropped.inc(static_cast<double>(it->samples));
        queue_.erase(it);
      }
    }
  }
}

}  // namespace pingmesh::collector
