#include "collector/remote_write.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <regex>

#include "prometheus/remote.pb.h"

namespace pingmesh::collector {
namespace {

using namespace std::chrono_literals;
using LabelMap = std::map<std::string, std::string>;

constexpr int64_t kNowUs = 1'700'000'000'000'000;

LabelMap to_map(std::span<const LabelRef> labels) {
  LabelMap m;
  for (const auto& [n, v] : labels) m.emplace(n, v);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Encoding

TEST(RemoteWriteEncoding, DecodesWithProtobufAfterSnappyRoundTrip) {
  WriteRequestEncoder enc;
  std::vector<LabelRef> a{
      {"__name__", "pingmesh_probes_total"}, {"dst_dc", "dc2"}, {"src_dc", "dc1"}};
  std::vector<LabelRef> b{{"__name__", "pingmesh_rtt_seconds"},
                          {"quantile", "0.99"},
                          {"src_dc", std::string_view("d\xc3\xa9", 3)}};  // UTF-8 value
  enc.add(a, 12345, 1'700'000'060'000);
  enc.add(b, 0.000271, 1'700'000'060'000);
  EXPECT_EQ(enc.samples(), 2u);
  std::string raw = enc.take();
  EXPECT_EQ(enc.samples(), 0u);
  EXPECT_EQ(enc.bytes(), 0u);

  std::string compressed = snappy_compress(raw);
  auto back = snappy_uncompress(compressed);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, raw);
  EXPECT_FALSE(snappy_uncompress("\xff\xff\xff\xff not snappy").has_value());

  prometheus::WriteRequest req;
  ASSERT_TRUE(req.ParseFromString(*back));
  ASSERT_EQ(req.timeseries_size(), 2);
  const auto& s0 = req.timeseries(0);
  ASSERT_EQ(s0.labels_size(), 3);
  EXPECT_EQ(s0.labels(0).name(), "__name__");
  EXPECT_EQ(s0.labels(0).value(), "pingmesh_probes_total");
  EXPECT_EQ(s0.labels(2).name(), "src_dc");
  EXPECT_EQ(s0.labels(2).value(), "dc1");
  ASSERT_EQ(s0.samples_size(), 1);
  EXPECT_EQ(s0.samples(0).value(), 12345);
  EXPECT_EQ(s0.samples(0).timestamp(), 1'700'000'060'000);
  const auto& s1 = req.timeseries(1);
  EXPECT_EQ(s1.labels(1).value(), "0.99");
  EXPECT_EQ(s1.labels(2).value(), "d\xc3\xa9");
  EXPECT_DOUBLE_EQ(s1.samples(0).value(), 0.000271);

  // And the generated serializer produces the same bytes (field order and wire types agree).
  EXPECT_EQ(req.SerializeAsString(), raw);
}

TEST(RemoteWriteEncoding, LongLabelsNeedMultiByteLengths) {
  WriteRequestEncoder enc;
  std::string big(300, 'x');
  std::vector<LabelRef> l{{"__name__", "m"}, {"v", big}};
  enc.add(l, -1.5, 0);
  prometheus::WriteRequest req;
  ASSERT_TRUE(req.ParseFromString(enc.take()));
  EXPECT_EQ(req.timeseries(0).labels(1).value(), big);
  EXPECT_EQ(req.timeseries(0).samples(0).value(), -1.5);
}

// ---------------------------------------------------------------------------------------------
// Mapping windows to series

/// One window with results of s1 (dc1/r1) to p0 (dc1/r1), p1 (dc1/r2) and p2 (dc2/r9).
std::unique_ptr<Window> make_window(Names* names, int rtt_scale, int drops) {
  Aggregator agg({}, names);
  v1::ResultBatch b;
  b.set_agent("s1");
  b.set_dc("dc1");
  b.set_rack("r1");
  auto add_peer = [&](const char* name, const char* dc, const char* rack) {
    auto* p = b.add_peers();
    p->set_name(name);
    p->set_dc(dc);
    p->set_rack(rack);
  };
  add_peer("p0", "dc1", "r1");
  add_peer("p1", "dc1", "r2");
  add_peer("p2", "dc2", "r9");
  auto add = [&](uint32_t peer, v1::Outcome o, uint32_t rtt, v1::Protocol p = v1::TCP) {
    auto* r = b.add_results();
    r->set_peer(peer);
    r->set_outcome(o);
    r->set_rtt_us(rtt);
    r->set_timestamp_us(kNowUs - 1000);
    r->set_protocol(p);
  };
  for (int i = 1; i <= 100; ++i) add(0, v1::OK, static_cast<uint32_t>(i * rtt_scale));
  for (int i = 0; i < drops; ++i) add(0, v1::DROP, 3'000'000);
  add(1, v1::OK, 400);
  add(1, v1::TIMEOUT, 0);
  add(2, v1::TIMEOUT, 0);  // TCP: a failure, not loss -> no loss ratio, no RTT
  add(2, v1::TIMEOUT, 0, v1::UDP);
  add(2, v1::OK, 2000, v1::UDP);
  agg.add(b, kNowUs);
  auto closed = agg.close_all();
  EXPECT_EQ(closed.size(), 1u);
  return std::move(closed.front());
}

struct Collected {
  LabelMap labels;
  double value;
  int64_t ts;
};

std::vector<Collected> run_map(SeriesMapper& m, const Window& w, const Names& names) {
  std::vector<Collected> out;
  m.map(w, 60, names, [&](std::span<const LabelRef> labels, double v, int64_t ts) {
    // Sorted by name, names valid, no duplicates, no empty values: what the spec requires.
    for (std::size_t i = 0; i < labels.size(); ++i) {
      EXPECT_TRUE(
          std::regex_match(std::string(labels[i].first), std::regex("[a-zA-Z_][a-zA-Z0-9_]*")));
      EXPECT_FALSE(labels[i].second.empty()) << labels[i].first;
      if (i > 0) {
        EXPECT_LT(labels[i - 1].first, labels[i].first);
      }
    }
    out.push_back({to_map(labels), v, ts});
  });
  return out;
}

const Collected* find(const std::vector<Collected>& v, const LabelMap& want) {
  const Collected* hit = nullptr;
  for (const auto& c : v) {
    bool ok = true;
    for (const auto& [k, val] : want) {
      auto it = c.labels.find(k);
      if (it == c.labels.end() || it->second != val) ok = false;
    }
    if (ok) {
      EXPECT_EQ(hit, nullptr) << "more than one series matches";
      hit = &c;
    }
  }
  return hit;
}

TEST(SeriesMapper, DcAndRackPairSeriesWithPrometheusNames) {
  Names names;
  auto w = make_window(&names, 10, 2);
  SeriesMapper m(false, {{"cluster", "lab"}});
  auto out = run_map(m, *w, names);
  int64_t end_ms = (w->start_s + 60) * 1000;

  for (const auto& c : out) {
    EXPECT_EQ(c.ts, end_ms);
    EXPECT_EQ(c.labels.at("cluster"), "lab");
    EXPECT_NE(c.labels.at("level"), "pair");  // server pairs are off by default
    EXPECT_FALSE(c.labels.contains("src_server"));
    static const std::regex name(
        "pingmesh_(probes_total|probe_failures_total|probe_drops_total|probe_loss_base_total|"
        "loss_ratio|rtt_seconds)");
    EXPECT_TRUE(std::regex_match(c.labels.at("__name__"), name)) << c.labels.at("__name__");
    EXPECT_EQ(c.labels.contains("quantile"), c.labels.at("__name__") == "pingmesh_rtt_seconds");
  }

  // dc1 -> dc1 TCP: s1->p0 (100 OK, 2 DROP) + s1->p1 (1 OK, 1 TIMEOUT).
  LabelMap dc11{{"level", "dc_pair"}, {"src_dc", "dc1"}, {"dst_dc", "dc1"}, {"protocol", "tcp"}};
  auto with = [](LabelMap m, std::string k, std::string v) {
    m[k] = v;
    return m;
  };
  const auto* probes = find(out, with(dc11, "__name__", "pingmesh_probes_total"));
  ASSERT_NE(probes, nullptr);
  EXPECT_EQ(probes->value, 104);
  EXPECT_FALSE(probes->labels.contains("src_rack"));
  EXPECT_EQ(find(out, with(dc11, "__name__", "pingmesh_probe_failures_total"))->value, 1);
  EXPECT_EQ(find(out, with(dc11, "__name__", "pingmesh_probe_drops_total"))->value, 2);
  EXPECT_EQ(find(out, with(dc11, "__name__", "pingmesh_probe_loss_base_total"))->value, 103);
  EXPECT_DOUBLE_EQ(find(out, with(dc11, "__name__", "pingmesh_loss_ratio"))->value, 2.0 / 103);

  // Quantiles equal the collector's own sketch quantiles, in seconds.
  const Stats& dc_stats = w->at(Level::kDcPair).stats(w->at(Level::kDcPair).find(Key{1, 1, 2, 0}));
  for (const auto& [q, text] : kExportQuantiles) {
    auto* c = find(
        out, with(with(dc11, "__name__", "pingmesh_rtt_seconds"), "quantile", std::string(text)));
    ASSERT_NE(c, nullptr) << text;
    EXPECT_DOUBLE_EQ(c->value, dc_stats.rtt.quantile(q) / 1e6);
  }
  EXPECT_NEAR(
      find(out, with(with(dc11, "__name__", "pingmesh_rtt_seconds"), "quantile", "0.5"))->value,
      0.000500, 0.000500 * 0.011);

  // Rack pair r1 -> r2 carries DC and rack labels.
  LabelMap r12{{"level", "rack_pair"},
               {"src_rack", "r1"},
               {"dst_rack", "r2"},
               {"src_dc", "dc1"},
               {"dst_dc", "dc1"},
               {"protocol", "tcp"},
               {"__name__", "pingmesh_probes_total"}};
  ASSERT_NE(find(out, r12), nullptr);
  EXPECT_EQ(find(out, r12)->value, 2);

  // dc1 -> dc2 TCP: one failed connect: counters, but no loss ratio and no quantiles.
  LabelMap dc12{{"level", "dc_pair"}, {"src_dc", "dc1"}, {"dst_dc", "dc2"}, {"protocol", "tcp"}};
  EXPECT_EQ(find(out, with(dc12, "__name__", "pingmesh_probes_total"))->value, 1);
  EXPECT_EQ(find(out, with(dc12, "__name__", "pingmesh_loss_ratio")), nullptr);
  EXPECT_EQ(find(out, with(dc12, "__name__", "pingmesh_rtt_seconds")), nullptr);
  // UDP: a timeout is loss.
  EXPECT_DOUBLE_EQ(
      find(out, with(with(dc12, "__name__", "pingmesh_loss_ratio"), "protocol", "udp"))->value,
      0.5);

  // 3 DC pairs (dc1->dc1 tcp, dc1->dc2 tcp, dc1->dc2 udp) + 4 rack pairs (r1->r1, r1->r2 tcp,
  // r1->r9 tcp, r1->r9 udp); each has 4 counters, plus loss and 4 quantiles where known.
  EXPECT_EQ(out.size(), 2u * 9 + 4 + 9 + 9 + 4 + 9);
}

TEST(SeriesMapper, CountersAccumulateAcrossWindowsAndGaugesDoNot) {
  Names names;
  SeriesMapper m(false, {});
  auto w1 = make_window(&names, 10, 2);
  auto w2 = make_window(&names, 20, 0);
  run_map(m, *w1, names);
  auto out = run_map(m, *w2, names);
  LabelMap dc11{{"level", "dc_pair"}, {"src_dc", "dc1"}, {"dst_dc", "dc1"}, {"protocol", "tcp"}};
  dc11["__name__"] = "pingmesh_probes_total";
  EXPECT_EQ(find(out, dc11)->value, 104 + 102);
  dc11["__name__"] = "pingmesh_probe_drops_total";
  EXPECT_EQ(find(out, dc11)->value, 2);
  dc11["__name__"] = "pingmesh_loss_ratio";
  EXPECT_EQ(find(out, dc11)->value, 0);  // this window's own loss
  EXPECT_EQ(m.tracked(), 7u);
}

TEST(SeriesMapper, ServerPairsOnlyWhenAsked) {
  Names names;
  auto w = make_window(&names, 10, 0);
  SeriesMapper m(true, {});
  auto out = run_map(m, *w, names);
  LabelMap pair{{"level", "pair"},    {"src_server", "s1"},
                {"dst_server", "p2"}, {"src_rack", "r1"},
                {"dst_rack", "r9"},   {"src_dc", "dc1"},
                {"dst_dc", "dc2"},    {"protocol", "udp"},
                {"dscp", "0"},        {"__name__", "pingmesh_probes_total"}};
  ASSERT_NE(find(out, pair), nullptr);
  EXPECT_EQ(find(out, pair)->value, 2);
}

// ---------------------------------------------------------------------------------------------
// Retry policy

TEST(RemoteWriteRetry, ClassifiesStatuses) {
  EXPECT_EQ(classify_response(200), SendVerdict::kSent);
  EXPECT_EQ(classify_response(204), SendVerdict::kSent);
  EXPECT_EQ(classify_response(0), SendVerdict::kRetry);  // network error
  EXPECT_EQ(classify_response(429), SendVerdict::kRetry);
  EXPECT_EQ(classify_response(500), SendVerdict::kRetry);
  EXPECT_EQ(classify_response(503), SendVerdict::kRetry);
  EXPECT_EQ(classify_response(400), SendVerdict::kReject);
  EXPECT_EQ(classify_response(401), SendVerdict::kReject);
  EXPECT_EQ(classify_response(404), SendVerdict::kReject);
  EXPECT_EQ(classify_response(413), SendVerdict::kReject);
}

TEST(RemoteWriteRetry, ExponentialBackoffWithEqualJitterAndCap) {
  auto d = [](int attempt, double j, int64_t ra = 0) {
    return retry_delay(attempt, 500ms, 30s, j, ra).count();
  };
  EXPECT_EQ(d(1, 0.0), 250);  // half of 500 fixed
  EXPECT_EQ(d(1, 0.999), 499);
  EXPECT_EQ(d(2, 0.0), 500);
  EXPECT_EQ(d(3, 0.5), 1500);  // 2000/2 + 2000/2*0.5
  EXPECT_EQ(d(7, 0.0), 15000);
  EXPECT_EQ(d(8, 0.0), 15000);  // 64000 capped at 30000, then halved
  EXPECT_EQ(d(50, 1.0), 30000);
  EXPECT_EQ(d(1, 0.0, 5), 5000);     // Retry-After raises the delay
  EXPECT_EQ(d(1, 0.0, 600), 30000);  // but never above the cap
  for (int a = 1; a < 12; ++a) EXPECT_LE(d(a, 0.3), d(a + 1, 0.3));
}

// ---------------------------------------------------------------------------------------------
// The writer with a fake receiver

struct FakeReceiver {
  std::mutex mu;
  std::vector<int> script;  ///< statuses to answer, in order; then `then`
  int then = 200;
  std::vector<http::ClientRequest> seen;
  std::size_t samples_ok = 0;
  http::ClientResponse operator()(const http::ClientRequest& r) {
    std::lock_guard lock(mu);
    seen.push_back(r);
    http::ClientResponse resp;
    resp.status = seen.size() <= script.size() ? script[seen.size() - 1] : then;
    if (resp.status == 429) resp.headers.emplace_back("retry-after", "0");
    if (resp.status >= 200 && resp.status < 300) {
      auto raw = snappy_uncompress(r.body);
      prometheus::WriteRequest req;
      if (raw && req.ParseFromString(*raw)) samples_ok += req.timeseries_size();
    }
    return resp;
  }
};

RemoteWriteOptions fake_options(FakeReceiver* rx) {
  RemoteWriteOptions o;
  o.url = "http://127.0.0.1:1/api/v1/write";
  o.min_backoff = 1ms;
  o.max_backoff = 5ms;
  o.batch_samples = 10;
  o.transport = [rx](const http::ClientRequest& r) { return (*rx)(r); };
  return o;
}

TEST(RemoteWriter, RetriesServerErrorsThenSendsWithTheProtocolHeaders) {
  Names names;
  std::shared_ptr<const Window> w = make_window(&names, 10, 2);
  FakeReceiver rx;
  rx.script = {503, 0, 429};
  auto o = fake_options(&rx);
  o.bearer_token = "s3cret";
  metrics::Registry reg;
  RemoteWriter writer(o, &reg);
  writer.on_window(w, 60, &names);
  ASSERT_TRUE(writer.wait_idle(10s));
  auto st = writer.stats();
  EXPECT_EQ(st.sent, 53u);  // every sample of the window (see the mapping test)
  EXPECT_EQ(rx.samples_ok, 53u);
  EXPECT_EQ(st.retries, 3u);
  EXPECT_EQ(st.failed + st.dropped, 0u);
  EXPECT_EQ(st.requests, 6u + 3);  // 53 samples in batches of 10, three failed attempts
  auto header = [](const http::ClientRequest& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return std::string();
  };
  for (const auto& r : rx.seen) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(header(r, "Content-Encoding"), "snappy");
    EXPECT_EQ(header(r, "Content-Type"), "application/x-protobuf");
    EXPECT_EQ(header(r, "X-Prometheus-Remote-Write-Version"), "0.1.0");
    EXPECT_EQ(header(r, "Authorization"), "Bearer s3cret");
  }
  // The failed request is retried first: the same body goes out until it is accepted.
  EXPECT_EQ(rx.seen[0].body, rx.seen[3].body);
  std::string text = reg.render();
  EXPECT_NE(text.find("pingmesh_collector_remote_write_samples_total{outcome=\"sent\"} 53"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("pingmesh_collector_remote_write_requests_total{outcome=\"retried\"} 3"),
            std::string::npos);
}

TEST(RemoteWriter, ClientErrorsAreDroppedNotRetried) {
  Names names;
  std::shared_ptr<const Window> w = make_window(&names, 10, 2);
  FakeReceiver rx;
  rx.script = {400};
  auto o = fake_options(&rx);
  o.username = "user";
  o.password = "pw";
  metrics::Registry reg;
  RemoteWriter writer(o, &reg);
  writer.on_window(w, 60, &names);
  ASSERT_TRUE(writer.wait_idle(10s));
  auto st = writer.stats();
  EXPECT_EQ(st.failed, 10u);  // the first batch of 10, refused
  EXPECT_EQ(st.sent, 43u);
  EXPECT_EQ(st.retries, 0u);
  EXPECT_EQ(rx.seen.size(), 6u);
  for (const auto& r : rx.seen) {
    bool found = false;
    for (const auto& [k, v] : r.headers) found |= k == "Authorization" && v == "Basic dXNlcjpwdw==";
    EXPECT_TRUE(found);
  }
}

TEST(RemoteWriter, BoundedQueueDropsOldestWhenTheReceiverIsDown) {
  Names names;
  FakeReceiver rx;
  rx.then = 503;
  auto o = fake_options(&rx);
  o.max_queue_samples = 60;  // one window is 53 samples
  metrics::Registry reg;
  RemoteWriter writer(o, &reg);
  for (int i = 0; i < 3; ++i) {
    std::shared_ptr<const Window> w = make_window(&names, 10, 2);
    writer.on_window(w, 60, &names);
    // Let the writer convert it (the pending-window bound is separate).
    for (int t = 0; t < 200 && writer.stats().queued + writer.stats().dropped < 53u * (i + 1) - 10;
         ++t) {
      std::this_thread::sleep_for(5ms);
    }
  }
  auto st = writer.stats();
  EXPECT_LE(st.queued, 60u);
  EXPECT_GE(st.dropped, 53u * 3 - 60 - 10);  // 10: the request being retried
  EXPECT_EQ(st.sent, 0u);
  EXPECT_GT(st.retries, 0u);
  writer.stop(0ms);
  st = writer.stats();
  EXPECT_EQ(st.queued, 0u);
  EXPECT_EQ(st.sent + st.failed + st.dropped, 53u * 3);  // every sample accounted for
}

TEST(RemoteWriter, StopDrainsWhatIsQueued) {
  Names names;
  FakeReceiver rx;
  auto o = fake_options(&rx);
  metrics::Registry reg;
  auto writer = std::make_unique<RemoteWriter>(o, &reg);
  writer->on_window(make_window(&names, 10, 2), 60, &names);
  writer->stop();
  EXPECT_EQ(writer->stats().sent, 53u);
  writer->on_window(make_window(&names, 10, 2), 60, &names);  // ignored after stop
  EXPECT_EQ(writer->stats().sent, 53u);
}

// ---------------------------------------------------------------------------------------------
// Configuration

TEST(RemoteWriteConfig, KeysParseAndErrorsNameTheKey) {
  RemoteWriteOptions o;
  EXPECT_TRUE(set_remote_write_option(&o, "remote-write-url", "http://vm:8428/api/v1/write"));
  EXPECT_TRUE(set_remote_write_option(&o, "remote-write-pairs", "true"));
  EXPECT_TRUE(set_remote_write_option(&o, "remote-write-batch-size", "1000"));
  EXPECT_TRUE(set_remote_write_option(&o, "remote-write-timeout", "1500ms"));
  EXPECT_TRUE(set_remote_write_option(&o, "remote-write-label", "cluster=eu-1"));
  EXPECT_FALSE(set_remote_write_option(&o, "listen", "x"));
  EXPECT_TRUE(o.pairs);
  EXPECT_EQ(o.batch_samples, 1000u);
  EXPECT_EQ(o.timeout, 1500ms);
  ASSERT_EQ(o.external_labels.size(), 1u);
  EXPECT_EQ(o.external_labels[0].second, "eu-1");
  EXPECT_NO_THROW(check_remote_write_options(o));
  const std::map<std::string, std::string> sample{{"remote-write-pairs", "false"},
                                                  {"remote-write-label", "a=b"},
                                                  {"remote-write-queue-samples", "5000"},
                                                  {"remote-write-timeout", "30s"}};
  for (const auto& key : remote_write_keys()) {
    RemoteWriteOptions x;
    auto it = sample.find(key);
    EXPECT_TRUE(set_remote_write_option(&x, key, it == sample.end() ? "7" : it->second)) << key;
  }

  auto error_of = [](std::string_view key, std::string_view value) {
    RemoteWriteOptions x;
    try {
      set_remote_write_option(&x, key, value);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error_of("remote-write-batch-size", "0").rfind("remote-write-batch-size: ", 0), 0u);
  EXPECT_EQ(error_of("remote-write-timeout", "10h").rfind("remote-write-timeout: ", 0), 0u);
  EXPECT_EQ(error_of("remote-write-pairs", "maybe").rfind("remote-write-pairs: ", 0), 0u);
  EXPECT_EQ(error_of("remote-write-label", "nolabel").rfind("remote-write-label: ", 0), 0u);

  auto check_error = [](RemoteWriteOptions x) {
    try {
      check_remote_write_options(x);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  RemoteWriteOptions x;
  EXPECT_EQ(check_error(x), "");  // off
  x.pairs = true;
  EXPECT_EQ(check_error(x).rfind("remote-write-url: ", 0), 0u);
  x.url = "ftp://x";
  EXPECT_EQ(check_error(x).rfind("remote-write-url: ", 0), 0u);
  x.url = "https://x/api/v1/write";
  EXPECT_EQ(check_error(x), "");
  x.bearer_token = "t";
  x.username = "u";
  EXPECT_EQ(check_error(x).rfind("remote-write-bearer-token: ", 0), 0u);
  x.bearer_token.clear();
  EXPECT_EQ(check_error(x).rfind("remote-write-password: ", 0), 0u);
  x.password = "p";
  EXPECT_EQ(check_error(x), "");
  x.external_labels = {{"src_dc", "a"}};
  EXPECT_EQ(check_error(x).rfind("remote-write-label: ", 0), 0u);
  x.external_labels = {{"9x", "a"}};
  EXPECT_EQ(check_error(x).rfind("remote-write-label: ", 0), 0u);
  x.external_labels = {{"cluster", "a"}};
  x.max_queue_samples = 1000;
  x.batch_samples = 5000;
  EXPECT_EQ(check_error(x).rfind("remote-write-queue-samples: ", 0), 0u);
}

}  // namespace
}  // namespace pingmesh::collector
