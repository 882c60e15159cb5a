// Collector life cycle and background work: start-up replay, window flush, roll-ups, retention.
#include "collector/collector.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>

#include "collector/metrics_set.hpp"

namespace pingmesh::collector {

namespace {

const std::string kFlushedKey = "flushed_until";

std::string rolled_key(int64_t g) { return "rolled_until_" + std::to_string(g); }

metrics::Registry& pick(metrics::Registry* given, std::unique_ptr<metrics::Registry>& own) {
  if (given) return *given;
  own = std::make_unique<metrics::Registry>();
  return *own;
}

}  // namespace

int64_t RetentionOptions::of(int64_t g) const {
  switch (g) {
    case 60: return minute_s;
    case 600: return ten_minutes_s;
    case 3600: return hour_s;
    default: return day_s;
  }
}

Collector::Metrics::Metrics(metrics::Registry* registry)
    : r(pick(registry, own)),
      batches_accepted(r.counter("pingmesh_collector_batches_total",
                                 "Result batches received, by outcome.", {{"outcome", "accepted"}})),
      batches_duplicate(r.counter("pingmesh_collector_batches_total",
                                  "Result batches received, by outcome.",
                                  {{"outcome", "duplicate"}})),
      batches_rejected(r.counter("pingmesh_collector_batches_total",
                                 "Result batches received, by outcome.", {{"outcome", "rejected"}})),
      batches_throttled(r.counter("pingmesh_collector_batches_total",
                                  "Result batches received, by outcome.",
                                  {{"outcome", "throttled"}})),
      batches_unauthorized(r.counter("pingmesh_collector_batches_total",
                                     "Result batches received, by outcome.",
                                     {{"outcome", "unauthorized"}})),
      batches_bad(r.counter("pingmesh_collector_batches_total",
                            "Result batches received, by outcome.", {{"outcome", "malformed"}})),
      results(r.counter("pingmesh_collector_results_total", "Probe results aggregated.")),
      clamped(r.counter("pingmesh_collector_results_clamped_total",
                        "Results with a timestamp slightly in the future, counted at now.")),
      batch_results(r.histogram("pingmesh_collector_batch_results", "Results per batch.",
                                metrics::exponential_buckets(10, 4, 8))),
      wal_fsync_seconds(r.histogram("pingmesh_collector_wal_fsync_seconds",
                                    "Duration of WAL group writes with fdatasync.",
                                    metrics::exponential_buckets(0.0001, 2.5, 12))),
      store_write_seconds(r.histogram("pingmesh_collector_store_write_seconds",
                                      "Duration of store transactions writing tiles.",
                                      metrics::exponential_buckets(0.001, 2.5, 12))),
      store_errors(r.counter("pingmesh_collector_store_errors_total",
                             "Failed store writes (retried at the next tick).")),
      tiles_written(r.counter("pingmesh_collector_tiles_written_total",
                              "Tiles written to the store (windows and roll-ups).")),
      rollups(r.counter("pingmesh_collector_rollups_total",
                        "Roll-up windows computed (10 min, 1 h, 1 day).")),
      retention_deleted(r.counter("pingmesh_collector_retention_deleted_total",
                                  "Tiles deleted by retention.")),
      replayed_records(r.counter("pingmesh_collector_wal_replayed_records_total",
                                 "WAL records replayed at start-up.")),
      windows_open(r.gauge("pingmesh_collector_windows_open",
                           "Windows in memory (open or waiting to be stored).")),
      live_cells(r.gauge("pingmesh_collector_live_aggregates",
                         "Aggregates held by open windows, all levels.")),
      flush_lag_seconds(r.gauge("pingmesh_collector_flush_lag_seconds",
                                "Now minus the start of the oldest window not yet stored.")),
      wal_bytes(r.gauge("pingmesh_collector_wal_bytes", "Bytes in WAL segments.")),
      wal_segments(r.gauge("pingmesh_collector_wal_segments", "WAL segment files.")) {
  for (int i = 0; i < kRejectReasons; ++i) {
    rejected[i] = &r.counter("pingmesh_collector_results_rejected_total",
                             "Results not counted, by reason.",
                             {{"reason", std::string(to_string(static_cast<Reject>(i)))}});
  }
}

Collector::Collector(CollectorOptions options, metrics::Registry* registry,
                     std::function<bool(std::string_view)> known_server)
    : options_(std::move(options)),
      known_server_(std::move(known_server)),
      metrics_(std::make_unique<Metrics>(registry)),
      aggregator_(options_.windows, &names_) {
  if (options_.data_dir.empty()) throw std::invalid_argument("collector: data_dir is required");
  if (!options_.clock_us) {
    options_.clock_us = [] {
      return std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  std::filesystem::create_directories(options_.data_dir);
  store_ = open_sqlite_store(options_.data_dir + "/collector.db");
  names_.load(store_->names());
  names_.take_changes();
  flushed_until_ = store_->meta(kFlushedKey).value_or(0);
  for (std::size_t i = 0; i + 1 < kGranularities.size(); ++i) {
    complete_until_[i] = store_->meta(rolled_key(kGranularities[i])).value_or(0);
  }
  complete_until_[3] = flushed_until_.load();
  aggregator_.set_open_from(flushed_until_);

  wal_ = std::make_unique<Wal>(WalOptions{options_.data_dir + "/wal", options_.wal_segment_bytes,
                                          options_.wal_sync, &metrics_->wal_fsync_seconds});
  uint64_t failed = 0;
  DecodedBatch decoded;
  replayed_ = wal_->replay([&](const WalRecord& rec) {
    std::string error;
    if (!decoded.decode(rec.payload, rec.format, &error)) {
      ++failed;
      return;
    }
    dedup_insert(decoded.view, rec.received_us);
    aggregator_.add(decoded.view, rec.received_us, rec.accept_from_s);
  });
  metrics_->replayed_records.inc(static_cast<double>(replayed_));
  if (replayed_ || failed) {
    spdlog::info("collector: replayed {} WAL record(s) ({} undecodable) into {} window(s)",
                 replayed_, failed, aggregator_.windows().size());
  }
}

Collector::~Collector() { stop(); }

int64_t Collector::now_us() const { return options_.clock_us(); }

bool Collector::healthy() const { return !wal_->failed(); }

void Collector::start() {
  std::lock_guard lock(thread_mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] {
    std::unique_lock lock(thread_mu_);
    while (!stopping_) {
      lock.unlock();
      try {
        tick();
      } catch (const std::exception& e) {
        spdlog::error("collector: background work failed: {}", e.what());
      }
      lock.lock();
      thread_cv_.wait_for(lock, std::chrono::milliseconds(options_.tick_ms),
                          [this] { return stopping_; });
    }
  });
}

void Collector::stop() {
  {
    std::lock_guard lock(thread_mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  thread_cv_.notify_all();
  thread_.join();
  try {
    tick();
  } catch (const std::exception& e) {
    spdlog::error("collector: final flush failed: {}", e.what());
  }
}

void Collector::tick() {
  std::lock_guard lock(tick_mu_);
  flush();
  rollup();
  apply_retention();
  auto& m = *metrics_;
  {
    std::lock_guard agg(agg_mu_);
    m.windows_open.set(static_cast<double>(aggregator_.windows().size() + flushing_.size()));
    m.live_cells.set(static_cast<double>(aggregator_.cell_count()));
  }
  m.flush_lag_seconds.set(static_cast<double>(now_us() / 1'000'000 - flushed_until_.load()));
  m.wal_bytes.set(static_cast<double>(wal_->bytes()));
  m.wal_segments.set(static_cast<double>(wal_->segments()));
}

void Collector::flush() {
  int64_t now_s = now_us() / 1'000'000;
  int64_t open_from = 0;
  {
    std::lock_guard lock(agg_mu_);
    for (auto& w : aggregator_.close(now_s)) flushing_.push_back(std::move(w));
    open_from = aggregator_.open_from();
  }
  // Store closed windows oldest first; each transaction carries the watermark it establishes.
  while (true) {
    std::shared_ptr<Window> w;
    {
      std::lock_guard lock(agg_mu_);
      if (flushing_.empty()) break;
      w = flushing_.front();
    }
    std::vector<Tile> tiles;
    for (int l = 0; l < kLevels; ++l) {
      const Cells& cells = w->levels[l];
      std::unordered_map<uint32_t, std::vector<uint32_t>> by_scope;
      for (uint32_t c = 0; c < cells.size(); ++c) by_scope[cells.scope(c)].push_back(c);
      for (auto& [scope, list] : by_scope) {
        tiles.push_back({{static_cast<Level>(l), scope, options_.windows.window_s, w->start_s},
                         encode_tile(cells, list)});
      }
    }
    auto fresh = names_.take_changes();
    unsaved_names_.insert(unsaved_names_.end(), fresh.begin(), fresh.end());
    int64_t watermark = w->start_s + options_.windows.window_s;
    std::vector<std::pair<std::string, int64_t>> meta{{kFlushedKey, watermark}};
    // The first window ever stored anchors the roll-ups.
    for (std::size_t i = 0; i + 1 < kGranularities.size(); ++i) {
      if (complete_until_[i] == 0) {
        int64_t g = kGranularities[i];
        meta.emplace_back(rolled_key(g), w->start_s / g * g);
      }
    }
    auto t0 = std::chrono::steady_clock::now();
    try {
      store_->write(tiles, unsaved_names_, meta);
    } catch (const std::exception& e) {
      metrics_->store_errors.inc();
      spdlog::error("collector: cannot store window {}: {}", w->start_s, e.what());
      return;  // retried at the next tick; the WAL still holds the window
    }
    metrics_->store_write_seconds.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    metrics_->tiles_written.inc(static_cast<double>(tiles.size()));
    unsaved_names_.clear();
    for (std::size_t i = 1; i < meta.size(); ++i) complete_until_[i - 1] = meta[i].second;
    {
      std::lock_guard lock(agg_mu_);
      flushing_.pop_front();
      flushed_until_ = watermark;
      complete_until_[3] = watermark;
    }
    if (options_.on_window_stored) options_.on_window_stored(w, names_);
  }
  // Nothing left in flight: empty windows up to open_from are complete too.
  if (open_from > flushed_until_.load()) {
    try {
      auto fresh = names_.take_changes();
      unsaved_names_.insert(unsaved_names_.end(), fresh.begin(), fresh.end());
      store_->write({}, unsaved_names_, {{kFlushedKey, open_from}});
      unsaved_names_.clear();
      std::lock_guard lock(agg_mu_);
      if (flushing_.empty()) {
        flushed_until_ = open_from;
        complete_until_[3] = open_from;
      }
    } catch (const std::exception& e) {
      metrics_->store_errors.inc();
      spdlog::error("collector: cannot store the watermark: {}", e.what());
      return;
    }
  }
  wal_->release(flushed_until_.load());
}

void Collector::rollup() {
  // One window per granularity per tick keeps each tick short; a backlog drains over ticks.
  for (std::size_t i = kGranularities.size() - 1; i-- > 0;) {
    int64_t g = kGranularities[i];
    int64_t f = kGranularities[i + 1];
    int64_t start = complete_until_[i].load();
    if (start == 0 || start + g > complete_until_[i + 1].load()) continue;
    std::vector<Tile> tiles;
    Cells cells;
    TileId current{};
    bool have = false;
    auto emit = [&] {
      if (!have || cells.empty()) return;
      std::vector<uint32_t> all(cells.size());
      for (uint32_t c = 0; c < cells.size(); ++c) all[c] = c;
      tiles.push_back({{current.level, current.scope, g, start}, encode_tile(cells, all)});
      cells = Cells();
    };
    bool ok = true;
    store_->scan(f, start, start + g, [&](const TileId& id, std::string_view data) {
      if (!have || id.level != current.level || id.scope != current.scope) {
        emit();
        current = id;
        have = true;
      }
      ok = decode_tile(data, [&](const Key& k, std::string_view* in) {
        return cells.stats(cells.find_or_add(k, id.scope)).merge_encoded(in);
      }) && ok;
    });
    emit();
    if (!ok) spdlog::warn("collector: skipped malformed tiles rolling up {}s at {}", g, start);
    try {
      auto t0 = std::chrono::steady_clock::now();
      store_->write(tiles, {}, {{rolled_key(g), start + g}});
      metrics_->store_write_seconds.observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    } catch (const std::exception& e) {
      metrics_->store_errors.inc();
      spdlog::error("collector: cannot store the {}s roll-up at {}: {}", g, start, e.what());
      return;
    }
    metrics_->tiles_written.inc(static_cast<double>(tiles.size()));
    metrics_->rollups.inc();
    complete_until_[i] = start + g;
  }
}

void Collector::apply_retention() {
  int64_t now_s = now_us() / 1'000'000;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  for (int64_t g : kGranularities) {
    int64_t before = now_s - options_.retention.of(g);
    while (std::chrono::steady_clock::now() < deadline) {
      std::size_t n = store_->delete_before(g, before, options_.retention_batch);
      metrics_->retention_deleted.inc(static_cast<double>(n));
      if (n < options_.retention_batch) break;
    }
  }
}

Coverage Collector::coverage() const {
  Coverage c;
  for (std::size_t i = 0; i < c.complete_until.size(); ++i) {
    c.complete_until[i] = complete_until_[i].load();
  }
  return c;
}

void Collector::collect(Level level, const std::vector<uint32_t>& scopes, int64_t from_s,
                        int64_t to_s, int64_t max_granularity_s, bool sketch,
                        const Target& target, bool lockstep, const Key* last_key) {
  auto merge_cell = [&](const Key& k, int64_t start, std::string_view* in) {
    Stats* s = target(k, start);
    if (!s) return skip_stats(in);
    if (sketch) return s->merge_encoded(in);
    return s->merge_encoded_counters(in) && Sketch::skip_encoded(in);
  };
  std::vector<Piece> pieces;
  {
    // Coverage and live windows are read under one lock, so a window being stored right now is
    // counted exactly once (live here, or stored before the coverage was taken).
    std::lock_guard lock(agg_mu_);
    pieces = cover(from_s, to_s, coverage(), max_granularity_s);
    auto visit = [&](const Window& w) {
      if (w.start_s < from_s || w.start_s >= to_s) return;
      const Cells& cells = w.at(level);
      for (uint32_t c = 0; c < cells.size(); ++c) {
        if (std::find(scopes.begin(), scopes.end(), cells.scope(c)) == scopes.end()) continue;
        if (Stats* s = target(cells.key(c), w.start_s)) {
          if (sketch) {
            s->merge(cells.stats(c));
          } else {
            s->merge_counters(cells.stats(c));
          }
        }
      }
    };
    for (const auto& w : flushing_) visit(*w);
    for (const auto& [start, w] : aggregator_.windows()) visit(*w);
  }
  // Stored pieces, lockstep: the tiles of the range, read one run of equal granularity at a time,
  // then merged in lockstep (tiles are sorted by key: every tile's cell of one key, then the next
  // key), so each target Stats stays in cache while all its tiles merge into it. Tiles are held
  // in memory up to kLockstepBytes at a time.
  constexpr std::size_t kLockstepBytes = 64 << 20;
  if (!lockstep) {
    // Streaming: each tile decoded straight from the store's buffer (queries reading a few
    // cells of many tiles, where holding tiles for a lockstep merge would only cost copies).
    for (std::size_t i = 0; i < pieces.size();) {
      if (pieces[i].granularity_s == 0) {
        ++i;
        continue;
      }
      std::size_t j = i + 1;
      int64_t g = pieces[i].granularity_s;
      while (j < pieces.size() && pieces[j].granularity_s == g &&
             pieces[j].start_s == pieces[j - 1].start_s + g) {
        ++j;
      }
      int64_t run_from = pieces[i].start_s, run_to = pieces[j - 1].start_s + g;
      for (uint32_t scope : scopes) {
        store_->read(level, scope, g, run_from, run_to, [&](int64_t start, std::string_view data) {
          TileReader r(data);
          bool ok = true;
          while (ok && r.next()) {
            if (last_key && *last_key < r.key()) break;  // sorted: nothing wanted further on
            ok = merge_cell(r.key(), start, r.stats());
          }
          if (!ok || !r.ok()) {
            spdlog::warn("collector: malformed tile level={} scope={} g={} start={}",
                         to_string(level), scope, g, start);
          }
        });
      }
      i = j;
    }
    return;
  }
  for (uint32_t scope : scopes) {
    std::vector<std::pair<int64_t, OwnedBytes>> tiles;
    std::size_t held = 0;
    auto merge_held = [&] {
      merge_lockstep(tiles, merge_cell, level, scope);
      tiles.clear();
      held = 0;
    };
    for (std::size_t i = 0; i < pieces.size();) {
      if (pieces[i].granularity_s == 0) {
        ++i;
        continue;
      }
      std::size_t j = i + 1;
      int64_t g = pieces[i].granularity_s;
      while (j < pieces.size() && pieces[j].granularity_s == g &&
             pieces[j].start_s == pieces[j - 1].start_s + g) {
        ++j;
      }
      int64_t run_from = pieces[i].start_s, run_to = pieces[j - 1].start_s + g;
      store_->read_owned(level, scope, g, run_from, run_to, [&](int64_t start, OwnedBytes&& data) {
        if (held > 0 && held + data.size() > kLockstepBytes) merge_held();
        held += data.size();
        tiles.emplace_back(start, std::move(data));
      });
      i = j;
    }
    merge_held();
  }
}

void Collector::merge_lockstep(
    const std::vector<std::pair<int64_t, OwnedBytes>>& tiles,
    const std::function<bool(const Key&, int64_t, std::string_view*)>& merge_cell, Level level,
    uint32_t scope) {
  std::vector<TileReader> readers;
  std::vector<char> live;
  readers.reserve(tiles.size());
  for (const auto& [start, data] : tiles) {
    readers.emplace_back(data.view());
    live.push_back(readers.back().next());
  }
  std::vector<char> bad(tiles.size(), 0);
  while (true) {
    const Key* min = nullptr;
    for (std::size_t i = 0; i < readers.size(); ++i) {
      if (live[i] && (!min || readers[i].key() < *min)) min = &readers[i].key();
    }
    if (!min) break;
    const Key k = *min;
    for (std::size_t i = 0; i < readers.size(); ++i) {
      if (!live[i] || !(readers[i].key() == k)) continue;
      if (!merge_cell(k, tiles[i].first, readers[i].stats())) {
        bad[i] = 1;
        live[i] = 0;
        continue;
      }
      live[i] = readers[i].next();
    }
  }
  for (std::size_t i = 0; i < readers.size(); ++i) {
    if (bad[i] || !readers[i].ok()) {
      spdlog::warn("collector: malformed tile level={} scope={} start={}", to_string(level), scope,
                   tiles[i].first);
    }
  }
}

}  // namespace pingmesh::collector
