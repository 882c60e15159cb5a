// Ingest: body decoding, authentication, deduplication, aggregation and the durable ack.
#include <google/protobuf/arena.h>
#include <google/protobuf/util/json_util.h>
#include <snappy.h>
#include <spdlog/spdlog.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include "collector/collector.hpp"
#include "collector/metrics_set.hpp"

namespace pingmesh::collector {

namespace {

constexpr std::size_t kMaxDecodedBytes = 256 << 20;

bool gunzip(std::string_view in, std::string* out, std::string* error) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
    *error = "gzip: cannot initialise zlib";
    return false;
  }
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  out->clear();
  int rc = Z_OK;
  char buf[64 * 1024];
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out->append(buf, sizeof buf - zs.avail_out);
    if (out->size() > kMaxDecodedBytes) {
      rc = Z_MEM_ERROR;
      break;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    *error = rc == Z_MEM_ERROR ? "gzip: decoded body too large" : "gzip: malformed body";
    return false;
  }
  return true;
}

std::string_view lower_trim(std::string_view s, std::string* buf) {
  auto semi = s.find(';');
  s = s.substr(0, semi);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  buf->assign(s);
  for (auto& c : *buf) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return *buf;
}

std::string dedup_key(const BatchView& batch) {
  std::string k(batch.agent);
  k.push_back('\0');
  uint64_t id = batch.batch_id;
  k.append(reinterpret_cast<const char*>(&id), sizeof id);
  return k;
}

nlohmann::json counts_json(const IngestCounts& c) {
  nlohmann::json rejected = nlohmann::json::object();
  for (int i = 0; i < kRejectReasons; ++i) {
    if (c.rejected[i]) rejected[std::string(to_string(static_cast<Reject>(i)))] = c.rejected[i];
  }
  return {{"accepted", c.accepted}, {"clamped", c.clamped}, {"rejected", rejected}};
}

}  // namespace

std::optional<BodyFormat> body_format(std::string_view content_type,
                                      std::string_view content_encoding, std::string* error) {
  std::string t, e;
  std::string_view type = lower_trim(content_type, &t);
  std::string_view enc = lower_trim(content_encoding, &e);
  if (type == "application/json") {
    if (!enc.empty() && enc != "identity") {
      *error = "JSON bodies must not be compressed";
      return std::nullopt;
    }
    return BodyFormat::kJson;
  }
  if (!type.empty() && type != "application/x-protobuf" && type != "application/protobuf" &&
      type != "application/octet-stream") {
    *error = "unsupported Content-Type '" + std::string(content_type) +
             "' (use application/x-protobuf or application/json)";
    return std::nullopt;
  }
  if (enc.empty() || enc == "identity") return BodyFormat::kProtobuf;
  if (enc == "snappy") return BodyFormat::kSnappy;
  if (enc == "gzip") return BodyFormat::kGzip;
  *error = "unsupported Content-Encoding '" + std::string(content_encoding) +
           "' (use snappy, gzip or identity)";
  return std::nullopt;
}

namespace {

/// Decompresses a protobuf body into `buf` (or returns it as is); nullopt with a message when
/// malformed.
std::optional<std::string_view> decompress(std::string_view body, BodyFormat format,
                                           std::string* buf, std::string* error) {
  switch (format) {
    case BodyFormat::kSnappy: {
      std::size_t n = 0;
      if (!snappy::GetUncompressedLength(body.data(), body.size(), &n) || n > kMaxDecodedBytes) {
        *error = "snappy: malformed or too large body (block format expected)";
        return std::nullopt;
      }
      buf->resize(n);
      if (!snappy::RawUncompress(body.data(), body.size(), buf->data())) {
        *error = "snappy: malformed or too large body (block format expected)";
        return std::nullopt;
      }
      return std::string_view(*buf);
    }
    case BodyFormat::kGzip:
      if (!gunzip(body, buf, error)) return std::nullopt;
      return std::string_view(*buf);
    default:
      return body;
  }
}

}  // namespace

bool decode_batch(std::string_view body, BodyFormat format, v1::ResultBatch* batch,
                  std::string* error) {
  if (format == BodyFormat::kJson) {
    auto status = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(body.data(), body.size()), batch);
    if (!status.ok()) {
      *error = "invalid JSON batch: " + std::string(status.message());
      return false;
    }
    return true;
  }
  thread_local std::string buf;
  auto raw = decompress(body, format, &buf, error);
  if (!raw) return false;
  if (!batch->ParseFromArray(raw->data(), static_cast<int>(raw->size()))) {
    *error = "malformed protobuf ResultBatch";
    return false;
  }
  return true;
}

bool DecodedBatch::decode(std::string_view body, BodyFormat format, std::string* error) {
  proto = nullptr;
  arena->Reset();
  if (format == BodyFormat::kJson) {
    auto* b = google::protobuf::Arena::CreateMessage<v1::ResultBatch>(arena.get());
    if (!decode_batch(body, format, b, error)) return false;
    proto = b;
    from_proto(*b, &view);
    return true;
  }
  auto r = decompress(body, format, &buf, error);
  if (!r) return false;
  raw = *r;
  if (!parse_batch(raw, &view)) {
    *error = "malformed protobuf ResultBatch";
    return false;
  }
  return true;
}

const v1::ResultBatch& DecodedBatch::message() {
  if (!proto) {
    auto* b = google::protobuf::Arena::CreateMessage<v1::ResultBatch>(arena.get());
    b->ParseFromArray(raw.data(), static_cast<int>(raw.size()));  // parse_batch accepted it
    proto = b;
  }
  return *proto;
}

bool Collector::dedup_insert(const BatchView& batch, int64_t now_us) {
  if (batch.batch_id == 0) return true;
  std::string key = dedup_key(batch);
  std::lock_guard lock(dedup_mu_);
  int64_t horizon = now_us - options_.dedup_window_s * 1'000'000;
  while (!dedup_order_.empty() && dedup_order_.front().first < horizon) {
    auto it = dedup_.find(dedup_order_.front().second);
    if (it != dedup_.end() && it->second == dedup_order_.front().first) dedup_.erase(it);
    dedup_order_.pop_front();
  }
  auto [it, added] = dedup_.try_emplace(key, now_us);
  if (!added) return false;
  dedup_order_.emplace_back(now_us, std::move(key));
  return true;
}

void Collector::dedup_erase(const BatchView& batch) {
  if (batch.batch_id == 0) return;
  std::lock_guard lock(dedup_mu_);
  dedup_.erase(dedup_key(batch));
}

IngestStatus Collector::ingest(const v1::ResultBatch& batch) {
  std::string payload = batch.SerializeAsString();
  BatchView view;
  from_proto(batch, &view);
  return ingest_decoded(
      view, [&batch]() -> const v1::ResultBatch& { return batch; }, payload, BodyFormat::kProtobuf);
}

IngestStatus Collector::ingest_body(std::string_view body, BodyFormat format) {
  IngestStatus st;
  std::size_t inflight = inflight_bytes_.fetch_add(body.size()) + body.size();
  struct Release {
    std::atomic<std::size_t>& n;
    std::size_t size;
    ~Release() { n.fetch_sub(size); }
  } release{inflight_bytes_, body.size()};
  if (inflight > options_.max_inflight_bytes) {
    metrics_->batches_throttled.inc();
    st.http_status = 429;
    st.retry_after_s = 1;
    st.error = "collector overloaded (bodies in flight over the limit); retry later";
    return st;
  }
  thread_local DecodedBatch decoded;  // buffers reused by every batch of this thread
  if (!decoded.decode(body, format, &st.error)) {
    metrics_->batches_bad.inc();
    st.http_status = 400;
    return st;
  }
  return ingest_decoded(
      decoded.view, []() -> const v1::ResultBatch& { return decoded.message(); }, body, format);
}

IngestStatus Collector::ingest_decoded(const BatchView& batch,
                                       const std::function<const v1::ResultBatch&()>& message,
                                       std::string_view payload, BodyFormat format) {
  IngestStatus st;
  auto& m = *metrics_;
  if (wal_->failed()) {
    st.http_status = 503;
    st.error = "collector cannot write its WAL; not accepting batches";
    return st;
  }
  const std::size_t nresults = batch.results.size();
  if (nresults > options_.max_batch_results) {
    m.batches_bad.inc();
    st.http_status = 413;
    st.error = "batch has " + std::to_string(nresults) + " results; the limit is " +
               std::to_string(options_.max_batch_results);
    return st;
  }
  if (known_server_ && !batch.agent.empty() && !known_server_(batch.agent)) {
    m.rejected[static_cast<int>(Reject::kUnknownServer)]->inc(static_cast<double>(nresults));
    m.batches_rejected.inc();
    st.counts.rejected[static_cast<int>(Reject::kUnknownServer)] = nresults;
    st.http_status = 403;
    st.error = "unknown source server '" + std::string(batch.agent) + "'";
    return st;
  }
  {
    std::lock_guard lock(agg_mu_);
    if (flushing_.size() > options_.max_flush_backlog ||
        aggregator_.cell_count() > options_.max_live_cells) {
      m.batches_throttled.inc();
      st.http_status = 429;
      st.retry_after_s = 5;
      st.error = "collector overloaded (live aggregates or store backlog over the limit)";
      return st;
    }
  }
  int64_t now = now_us();
  if (!dedup_insert(batch, now)) {
    m.batches_duplicate.inc();
    st.duplicate = true;
    return st;
  }
  int64_t bound = 0;
  {
    std::lock_guard lock(agg_mu_);
    st.counts = aggregator_.add(batch, now, 0, &bound);
  }
  if (st.counts.accepted > 0) {
    std::string err;
    if (!wal_->append({now, bound, format, payload}, &err)) {
      dedup_erase(batch);
      st.http_status = 503;
      st.error = err;
      return st;
    }
  }
  if (st.counts.accepted > 0 && options_.on_accepted) options_.on_accepted(message(), now);
  m.batches_accepted.inc();
  m.results.inc(static_cast<double>(st.counts.accepted));
  m.clamped.inc(static_cast<double>(st.counts.clamped));
  for (int i = 0; i < kRejectReasons; ++i) {
    if (st.counts.rejected[i]) m.rejected[i]->inc(static_cast<double>(st.counts.rejected[i]));
  }
  m.batch_results.observe(static_cast<double>(nresults));
  return st;
}

http::Response Collector::handle_results(const http::Request& request) {
  if (options_.agent_token.empty()) {
    if (!warned_no_token_.exchange(true)) {
      spdlog::warn("collector: no agent token configured; accepting results from anyone");
    }
  } else {
    std::string_view auth = request.header("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    bool ok = auth.size() == kBearer.size() + options_.agent_token.size() &&
              auth.substr(0, kBearer.size()) == kBearer;
    if (ok) {
      unsigned char diff = 0;  // compare in constant time
      for (std::size_t i = 0; i < options_.agent_token.size(); ++i) {
        diff |= static_cast<unsigned char>(auth[kBearer.size() + i] ^ options_.agent_token[i]);
      }
      ok = diff == 0;
    }
    if (!ok) {
      metrics_->batches_unauthorized.inc();
      auto r = http::Response::error(401, "missing or wrong agent token", "authorization");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return r;
    }
  }
  std::string error;
  auto format =
      body_format(request.header("content-type"), request.header("content-encoding"), &error);
  if (!format) {
    metrics_->batches_bad.inc();
    return http::Response::error(415, error, "content-type");
  }
  IngestStatus st = ingest_body(request.body, *format);
  if (st.http_status != 200) {
    auto r = http::Response::error(st.http_status, st.error);
    if (st.retry_after_s) r.headers.emplace_back("Retry-After", std::to_string(st.retry_after_s));
    return r;
  }
  nlohmann::json j = counts_json(st.counts);
  j["duplicate"] = st.duplicate;
  return http::Response::json(j.dump());
}

}  // namespace pingmesh::collector
