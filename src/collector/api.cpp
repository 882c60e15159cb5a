// Query API: matrix, series, top-N and SLA over the store and the live windows.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "collector/collector.hpp"

namespace pingmesh::collector {

namespace {

using http::Response;

struct Range {
  int64_t from = 0;
  int64_t to = 0;
};

/// Common query parameters.
struct Params {
  Range range;
  Metric metric = Metric::kP99;
  Protocol protocol = Protocol::kTcp;
};

std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

/// Parses from/to (Unix seconds; default the last `default_span_s`), metric and protocol.
/// Snaps the range outwards to minutes. Returns an error response on bad input.
std::optional<Response> parse_params(const http::Request& req, int64_t now_s,
                                     int64_t default_span_s, Metric default_metric, Params* p) {
  int64_t to = now_s, from = 0;
  if (auto v = req.query_param("to")) {
    auto t = parse_int(*v);
    if (!t || *t <= 0) return Response::error(400, "'to' must be Unix seconds", "to");
    to = *t;
  }
  from = to - default_span_s;
  if (auto v = req.query_param("from")) {
    auto f = parse_int(*v);
    if (!f || *f <= 0) return Response::error(400, "'from' must be Unix seconds", "from");
    from = *f;
  }
  if (from >= to) return Response::error(400, "'from' must be before 'to'", "from");
  if (to - from > 800LL * 86400) {
    return Response::error(400, "time range longer than 800 days", "from");
  }
  p->range = {from / 60 * 60, (to + 59) / 60 * 60};
  p->metric = default_metric;
  if (auto v = req.query_param("metric")) {
    auto m = parse_metric(*v);
    if (!m) {
      return Response::error(
          400, "unknown metric '" + *v + "' (p50, p90, p99, p999, p9999, loss, probes, mean, "
               "max, min)", "metric");
    }
    p->metric = *m;
  }
  if (auto v = req.query_param("protocol")) {
    auto pr = parse_protocol(*v);
    if (!pr) return Response::error(400, "unknown protocol '" + *v + "'", "protocol");
    p->protocol = *pr;
  }
  return std::nullopt;
}

void append_cell(std::string* out, const MetricValue& v) {
  if (v.missing) {
    fmt::format_to(std::back_inserter(*out), "{{\"value\":null,\"samples\":{},\"missing\":true}}",
                   v.samples);
  } else {
    fmt::format_to(std::back_inserter(*out), "{{\"value\":{},\"samples\":{},\"missing\":false}}",
                   v.value, v.samples);
  }
}

nlohmann::json value_json(const MetricValue& v) {
  return {{"value", v.missing ? nlohmann::json(nullptr) : nlohmann::json(v.value)},
          {"samples", v.samples},
          {"missing", v.missing}};
}

nlohmann::json quantity(const MetricValue& v) {
  return v.missing ? nlohmann::json(nullptr) : nlohmann::json(v.value);
}

std::string names_json(const std::vector<std::string>& names) { return nlohmann::json(names).dump(); }

}  // namespace

void Collector::register_routes(http::Router& router) {
  router.add("POST", "/api/v1/results", [this](const http::Request& r) { return handle_results(r); });
  router.add("GET", "/api/v1/matrix", [this](const http::Request& r) { return handle_matrix(r); });
  router.add("GET", "/api/v1/series", [this](const http::Request& r) { return handle_series(r); });
  router.add("GET", "/api/v1/top", [this](const http::Request& r) { return handle_top(r); });
  router.add("GET", "/api/v1/sla", [this](const http::Request& r) { return handle_sla(r); });
}

/// Servers of a whole-DC server matrix (level=server without src_rack): 2,000² cells are ~40 MB
/// of JSON, about what a browser still draws.
constexpr std::size_t kMaxDcServerMatrix = 2000;

http::Response Collector::handle_matrix(const http::Request& req) {
  Params p;
  if (auto err = parse_params(req, now_us() / 1'000'000, 600, Metric::kP99, &p)) return *err;
  std::string level = req.query_param("level").value_or("dc");
  std::vector<uint32_t> rows, cols;
  std::vector<std::string> row_names, col_names;
  Level agg_level;
  uint32_t scope = 0;
  std::vector<uint32_t> scopes;  // when more than `scope`
  std::optional<int> dscp;
  nlohmann::json extra = nlohmann::json::object();
  auto find_dc = [&](std::string* name, uint32_t* id) -> std::optional<Response> {
    auto dc = req.query_param("dc");
    if (!dc || dc->empty()) return Response::error(400, "'dc' is required at this level", "dc");
    auto found = names_.find_dc(*dc);
    if (!found) return Response::error(404, "no data for dc '" + *dc + "'", "dc");
    *name = *dc;
    *id = *found;
    return std::nullopt;
  };
  if (level == "dc") {
    agg_level = Level::kDcPair;
    rows = cols = names_.dcs();
    for (uint32_t id : rows) row_names.push_back(names_.dc_name(id));
    col_names = row_names;
  } else if (level == "rack") {
    std::string dc;
    uint32_t dc_id = 0;
    if (auto err = find_dc(&dc, &dc_id)) return *err;
    agg_level = Level::kRackPair;
    scope = dc_id;
    rows = cols = names_.racks_of(dc_id);
    for (uint32_t id : rows) row_names.push_back(names_.rack_name(id));
    col_names = row_names;
    extra["dc"] = dc;
  } else if (level == "server" && req.query_param("src_rack").value_or("").empty()) {
    // Every server of a DC against every other, grouped by rack (the paper's whole-DC view).
    std::string dc;
    uint32_t dc_id = 0;
    if (auto err = find_dc(&dc, &dc_id)) return *err;
    if (req.query_param("dst_rack")) {
      return Response::error(400, "'dst_rack' needs 'src_rack'", "src_rack");
    }
    agg_level = Level::kPair;
    scopes = names_.racks_of(dc_id);  // pair stats are kept per source rack
    for (uint32_t rack : scopes) {
      for (uint32_t id : names_.servers_of(rack)) rows.push_back(id);
    }
    if (rows.size() > kMaxDcServerMatrix) {
      return Response::error(400,
                             "dc '" + dc + "' has " + std::to_string(rows.size()) +
                                 " servers; at most " + std::to_string(kMaxDcServerMatrix) +
                                 " at level=server without 'src_rack': pick a rack pair",
                             "src_rack");
    }
    cols = rows;
    for (uint32_t id : rows) row_names.push_back(names_.server_name(id));
    col_names = row_names;
    extra["dc"] = dc;
  } else if (level == "server") {
    std::string dc;
    uint32_t dc_id = 0;
    if (auto err = find_dc(&dc, &dc_id)) return *err;
    auto src_rack = req.query_param("src_rack");
    std::string dst_rack = req.query_param("dst_rack").value_or(*src_rack);
    auto src_id = names_.find_rack(dc_id, *src_rack);
    if (!src_id) return Response::error(404, "no data for rack '" + *src_rack + "'", "src_rack");
    auto dst_id = names_.find_rack(dc_id, dst_rack);
    if (!dst_id) return Response::error(404, "no data for rack '" + dst_rack + "'", "dst_rack");
    if (auto v = req.query_param("dscp")) {
      auto d = parse_int(*v);
      if (!d || *d < 0 || *d > 63) return Response::error(400, "'dscp' must be 0..63", "dscp");
      dscp = static_cast<int>(*d);
    }
    agg_level = Level::kPair;
    scope = *src_id;
    rows = names_.servers_of(*src_id);
    cols = names_.servers_of(*dst_id);
    for (uint32_t id : rows) row_names.push_back(names_.server_name(id));
    for (uint32_t id : cols) col_names.push_back(names_.server_name(id));
    extra["dc"] = dc;
    extra["src_rack"] = *src_rack;
    extra["dst_rack"] = dst_rack;
  } else {
    return Response::error(400, "'level' must be dc, rack or server", "level");
  }

  // Position of an id in rows/cols (ids are dense, so a vector beats a hash map here).
  constexpr uint32_t kAbsent = 0xffffffffu;
  std::vector<uint32_t> row_pos, col_pos;
  auto index = [&](const std::vector<uint32_t>& ids, std::vector<uint32_t>* pos) {
    uint32_t top = ids.empty() ? 0 : *std::max_element(ids.begin(), ids.end());
    pos->assign(top + 1, kAbsent);
    for (uint32_t i = 0; i < ids.size(); ++i) (*pos)[ids[i]] = i;
  };
  index(rows, &row_pos);
  index(cols, &col_pos);
  std::vector<Stats> grid(rows.size() * cols.size());
  auto proto = static_cast<uint8_t>(p.protocol);
  if (scopes.empty()) scopes = {scope};
  collect(
      agg_level, scopes, p.range.from, p.range.to, 86400, needs_sketch(p.metric),
      [&](const Key& k, int64_t) -> Stats* {
        if (k.protocol != proto || (dscp && k.dscp != *dscp)) return nullptr;
        uint32_t r = k.a < row_pos.size() ? row_pos[k.a] : kAbsent;
        uint32_t c = k.b < col_pos.size() ? col_pos[k.b] : kAbsent;
        if (r == kAbsent || c == kAbsent) return nullptr;
        return &grid[static_cast<std::size_t>(r) * cols.size() + c];
      },
      /*lockstep=*/needs_sketch(p.metric));

  std::string out;
  out.reserve(128 + grid.size() * 48);
  extra["level"] = level;
  extra["metric"] = std::string(to_string(p.metric));
  extra["unit"] = std::string(unit_of(p.metric));
  extra["protocol"] = std::string(to_string(p.protocol));
  extra["from"] = p.range.from;
  extra["to"] = p.range.to;
  std::string head = extra.dump();
  out.append(head, 0, head.size() - 1);  // reopen the object to append the large arrays
  out += ",\"rows\":" + names_json(row_names) + ",\"cols\":" + names_json(col_names);
  out += ",\"cells\":[";
  for (std::size_t r = 0; r < rows.size(); ++r) {
    out += r ? ",[" : "[";
    for (std::size_t c = 0; c < cols.size(); ++c) {
      if (c) out += ',';
      append_cell(&out, metric_value(grid[r * cols.size() + c], p.metric));
    }
    out += ']';
  }
  out += "]}";
  return Response::json(std::move(out));
}

http::Response Collector::handle_series(const http::Request& req) {
  Params p;
  if (auto err = parse_params(req, now_us() / 1'000'000, 3600, Metric::kP99, &p)) return *err;
  std::string scope_name = req.query_param("scope").value_or("");
  std::string src = req.query_param("src").value_or("");
  std::string dst = req.query_param("dst").value_or("");
  if (src.empty()) return Response::error(400, "'src' is required", "src");
  int64_t span = p.range.to - p.range.from;
  int64_t step = span <= 3 * 3600 ? 60 : span <= 2 * 86400 ? 600 : span <= 60 * 86400 ? 3600 : 86400;
  if (auto v = req.query_param("step")) {
    auto s = parse_int(*v);
    if (!s || *s < 60 || *s % 60 != 0) {
      return Response::error(400, "'step' must be a multiple of 60 seconds", "step");
    }
    step = *s;
  }
  p.range.from = p.range.from / step * step;
  int64_t npoints = (p.range.to - p.range.from + step - 1) / step;
  if (npoints > 10000) return Response::error(400, "too many points; raise 'step'", "step");

  Level level;
  uint32_t scope = 0;
  Key want{};
  auto need = [&](std::optional<uint32_t> id, const std::string& what,
                  const char* field) -> std::optional<Response> {
    if (!id) return Response::error(404, "no data for " + what, field);
    return std::nullopt;
  };
  auto dc_param = [&]() { return req.query_param("dc").value_or(""); };
  if (scope_name == "pair") {
    auto s = names_.find_server(src), d = names_.find_server(dst);
    if (auto e = need(s, "server '" + src + "'", "src")) return *e;
    if (auto e = need(d, "server '" + dst + "'", "dst")) return *e;
    level = Level::kPair;
    scope = names_.server_rack(*s);
    want = {*s, *d, 0, 0};
  } else if (scope_name == "rack_pair") {
    std::string dc = dc_param();
    auto dc_id = names_.find_dc(dc);
    if (auto e = need(dc_id, "dc '" + dc + "'", "dc")) return *e;
    std::string dst_dc = req.query_param("dst_dc").value_or(dc);
    auto dst_dc_id = names_.find_dc(dst_dc);
    if (auto e = need(dst_dc_id, "dc '" + dst_dc + "'", "dst_dc")) return *e;
    auto s = names_.find_rack(*dc_id, src), d = names_.find_rack(*dst_dc_id, dst);
    if (auto e = need(s, "rack '" + src + "'", "src")) return *e;
    if (auto e = need(d, "rack '" + dst + "'", "dst")) return *e;
    level = Level::kRackPair;
    scope = *dc_id;
    want = {*s, *d, 0, 0};
  } else if (scope_name == "dc_pair" || scope_name == "dc") {
    if (scope_name == "dc") dst = src;
    auto s = names_.find_dc(src), d = names_.find_dc(dst);
    if (auto e = need(s, "dc '" + src + "'", "src")) return *e;
    if (auto e = need(d, "dc '" + dst + "'", "dst")) return *e;
    level = Level::kDcPair;
    want = {*s, *d, 0, 0};
  } else if (scope_name == "server") {
    auto s = names_.find_server(src);
    if (auto e = need(s, "server '" + src + "'", "src")) return *e;
    std::string dir = req.query_param("direction").value_or("src");
    if (dir != "src" && dir != "dst") {
      return Response::error(400, "'direction' must be src or dst", "direction");
    }
    level = dir == "src" ? Level::kServerSrc : Level::kServerDst;
    scope = names_.server_dc(*s);
    want = {*s, 0, 0, 0};
  } else if (scope_name == "rack") {
    std::string dc = dc_param();
    auto dc_id = names_.find_dc(dc);
    if (auto e = need(dc_id, "dc '" + dc + "'", "dc")) return *e;
    auto s = names_.find_rack(*dc_id, src);
    if (auto e = need(s, "rack '" + src + "'", "src")) return *e;
    level = Level::kRack;
    scope = *dc_id;
    want = {*s, 0, 0, 0};
  } else {
    return Response::error(400, "'scope' must be pair, rack_pair, dc_pair, dc, server or rack",
                           "scope");
  }
  int64_t max_g = 60;
  for (int64_t g : kGranularities) {
    if (g <= step && step % g == 0) {
      max_g = g;
      break;
    }
  }
  std::vector<Stats> points(static_cast<std::size_t>(npoints));
  auto proto = static_cast<uint8_t>(p.protocol);
  const Key last{want.a, want.b, proto, 255};  // every DSCP of (a, b, protocol) sorts before
  collect(
      level, {scope}, p.range.from, p.range.to, max_g, needs_sketch(p.metric),
      [&](const Key& k, int64_t start) -> Stats* {
        if (k.a != want.a || k.b != want.b || k.protocol != proto) return nullptr;
        int64_t i = (start - p.range.from) / step;
        return i >= 0 && i < npoints ? &points[static_cast<std::size_t>(i)] : nullptr;
      },
      /*lockstep=*/false, &last);
  nlohmann::json out = {{"scope", scope_name},
                        {"src", src},
                        {"metric", std::string(to_string(p.metric))},
                        {"unit", std::string(unit_of(p.metric))},
                        {"protocol", std::string(to_string(p.protocol))},
                        {"from", p.range.from},
                        {"to", p.range.to},
                        {"step", step}};
  if (!dst.empty()) out["dst"] = dst;
  auto& arr = out["points"] = nlohmann::json::array();
  for (int64_t i = 0; i < npoints; ++i) {
    nlohmann::json pt = value_json(metric_value(points[static_cast<std::size_t>(i)], p.metric));
    pt["t"] = p.range.from + i * step;
    arr.push_back(std::move(pt));
  }
  return Response::json(out.dump());
}

http::Response Collector::handle_top(const http::Request& req) {
  Params p;
  if (auto err = parse_params(req, now_us() / 1'000'000, 600, Metric::kLoss, &p)) return *err;
  std::string level_name = req.query_param("level").value_or("rack_pair");
  int64_t n = 10, min_samples = 1;
  if (auto v = req.query_param("n")) {
    auto x = parse_int(*v);
    if (!x || *x < 1 || *x > 1000) return Response::error(400, "'n' must be 1..1000", "n");
    n = *x;
  }
  if (auto v = req.query_param("min_samples")) {
    auto x = parse_int(*v);
    if (!x || *x < 0) return Response::error(400, "'min_samples' must be >= 0", "min_samples");
    min_samples = *x;
  }
  std::optional<uint32_t> only_dc;
  if (auto v = req.query_param("dc"); v && !v->empty()) {
    only_dc = names_.find_dc(*v);
    if (!only_dc) return Response::error(404, "no data for dc '" + *v + "'", "dc");
  }
  Level level;
  std::vector<uint32_t> scopes;
  std::vector<uint32_t> dcs = only_dc ? std::vector<uint32_t>{*only_dc} : names_.dcs();
  if (level_name == "pair") {
    level = Level::kPair;
    for (uint32_t dc : dcs) {
      auto racks = names_.racks_of(dc);
      scopes.insert(scopes.end(), racks.begin(), racks.end());
    }
  } else if (level_name == "rack_pair") {
    level = Level::kRackPair;
    scopes = dcs;
  } else if (level_name == "dc_pair") {
    level = Level::kDcPair;
    scopes = {0};
  } else {
    return Response::error(400, "'level' must be pair, rack_pair or dc_pair", "level");
  }
  Cells acc;
  auto proto = static_cast<uint8_t>(p.protocol);
  collect(level, scopes, p.range.from, p.range.to, 86400, needs_sketch(p.metric),
          [&](const Key& k, int64_t) -> Stats* {
            if (k.protocol != proto) return nullptr;
            if (level == Level::kDcPair && only_dc && k.a != *only_dc) return nullptr;
            return &acc.stats(acc.find_or_add({k.a, k.b, k.protocol, 0}, 0));
          });
  struct Item {
    uint32_t cell;
    MetricValue v;
  };
  std::vector<Item> items;
  for (uint32_t c = 0; c < acc.size(); ++c) {
    MetricValue v = metric_value(acc.stats(c), p.metric);
    if (!v.missing && v.samples >= static_cast<uint64_t>(min_samples)) items.push_back({c, v});
  }
  auto top = std::min<std::size_t>(items.size(), static_cast<std::size_t>(n));
  std::partial_sort(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(top), items.end(),
                    [](const Item& x, const Item& y) { return x.v.value > y.v.value; });
  items.resize(top);
  nlohmann::json out = {{"level", level_name},
                        {"metric", std::string(to_string(p.metric))},
                        {"unit", std::string(unit_of(p.metric))},
                        {"protocol", std::string(to_string(p.protocol))},
                        {"from", p.range.from},
                        {"to", p.range.to}};
  auto& arr = out["items"] = nlohmann::json::array();
  for (const auto& it : items) {
    const Key& k = acc.key(it.cell);
    nlohmann::json j = value_json(it.v);
    if (level == Level::kPair) {
      j["src"] = names_.server_name(k.a);
      j["dst"] = names_.server_name(k.b);
      j["src_rack"] = names_.rack_name(names_.server_rack(k.a));
      j["dst_rack"] = names_.rack_name(names_.server_rack(k.b));
    } else if (level == Level::kRackPair) {
      j["src"] = names_.rack_name(k.a);
      j["dst"] = names_.rack_name(k.b);
      j["src_dc"] = names_.dc_name(names_.rack_dc(k.a));
      j["dst_dc"] = names_.dc_name(names_.rack_dc(k.b));
    } else {
      j["src"] = names_.dc_name(k.a);
      j["dst"] = names_.dc_name(k.b);
    }
    arr.push_back(std::move(j));
  }
  return Response::json(out.dump());
}

http::Response Collector::handle_sla(const http::Request& req) {
  Params p;
  if (auto err = parse_params(req, now_us() / 1'000'000, 600, Metric::kP99, &p)) return *err;
  std::vector<uint32_t> dcs;
  if (auto v = req.query_param("dc"); v && !v->empty()) {
    auto id = names_.find_dc(*v);
    if (!id) return Response::error(404, "no data for dc '" + *v + "'", "dc");
    dcs = {*id};
  } else {
    dcs = names_.dcs();
  }
  auto proto = static_cast<uint8_t>(p.protocol);
  std::unordered_map<uint32_t, Stats> dc_stats, rack_stats;
  collect(Level::kDcPair, {0}, p.range.from, p.range.to, 86400, true,
          [&](const Key& k, int64_t) -> Stats* {
            if (k.protocol != proto || k.a != k.b) return nullptr;
            return std::find(dcs.begin(), dcs.end(), k.a) == dcs.end() ? nullptr : &dc_stats[k.a];
          });
  collect(Level::kRack, dcs, p.range.from, p.range.to, 86400, true,
          [&](const Key& k, int64_t) -> Stats* {
            return k.protocol == proto ? &rack_stats[k.a] : nullptr;
          });
  auto row = [&](const Stats& s) {
    MetricValue loss = metric_value(s, Metric::kLoss);
    MetricValue p50 = metric_value(s, Metric::kP50);
    MetricValue p99 = metric_value(s, Metric::kP99);
    bool ok = (loss.missing || loss.value <= kSlaMaxLoss) && (p99.missing || p99.value <= kSlaMaxP99Us);
    return nlohmann::json{{"probes", s.probes},     {"loss", quantity(loss)},
                          {"p50_us", quantity(p50)}, {"p99_us", quantity(p99)},
                          {"ok", ok},                {"missing", s.probes == 0}};
  };
  nlohmann::json out = {{"protocol", std::string(to_string(p.protocol))},
                        {"from", p.range.from},
                        {"to", p.range.to},
                        {"thresholds", {{"loss", kSlaMaxLoss}, {"p99_us", kSlaMaxP99Us}}}};
  auto& dcs_json = out["dcs"] = nlohmann::json::array();
  auto& racks_json = out["racks"] = nlohmann::json::array();
  for (uint32_t dc : dcs) {
    nlohmann::json j = row(dc_stats[dc]);
    j["dc"] = names_.dc_name(dc);
    dcs_json.push_back(std::move(j));
    for (uint32_t rack : names_.racks_of(dc)) {
      nlohmann::json r = row(rack_stats[rack]);
      r["dc"] = names_.dc_name(dc);
      r["rack"] = names_.rack_name(rack);
      racks_json.push_back(std::move(r));
    }
  }
  return Response::json(out.dump());
}

}  // namespace pingmesh::collector
