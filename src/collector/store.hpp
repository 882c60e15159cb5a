#pragma once
/// Storage of closed windows. The unit is a tile (see stats.hpp): the aggregates of one level and
/// scope over one window of one granularity (60 s, 600 s, 3600 s, 86400 s), so a DC's rack
/// matrix over an hour reads six 10-minute tiles, never the server pairs. The interface suits an
/// embedded database (SqliteStore) or a remote key-value/TSDB backend.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "collector/names.hpp"
#include "collector/stats.hpp"

namespace pingmesh::collector {

/// An uninitialised byte buffer (tile data read for a query).
class OwnedBytes {
 public:
  explicit OwnedBytes(std::size_t n) : p_(new char[n]), n_(n) {}
  char* data() { return p_.get(); }
  std::string_view view() const { return {p_.get(), n_}; }
  std::size_t size() const { return n_; }

 private:
  std::unique_ptr<char[]> p_;
  std::size_t n_;
};

/// A tile with its encoded aggregates (encode_tile()).
struct Tile {
  TileId id;
  std::string data;
};

class AggregateStore {
 public:
  virtual ~AggregateStore() = default;
  /// Writes tiles (replacing equal ids), name rows and meta values in one atomic transaction.
  /// Throws std::runtime_error on failure (nothing is then written).
  virtual void write(const std::vector<Tile>& tiles, const std::vector<NameRow>& names,
                     const std::vector<std::pair<std::string, int64_t>>& meta) = 0;
  /// Calls fn(start_s, data) for the tiles of (level, scope, granularity) starting in
  /// [from_s, to_s), oldest first.
  virtual void read(Level level, uint32_t scope, int64_t granularity_s, int64_t from_s,
                    int64_t to_s, const std::function<void(int64_t, std::string_view)>& fn) = 0;
  /// read(), handing each tile's data over in a buffer the callee may keep (queries merging
  /// several tiles in lockstep). The default copies; implementations may read straight into it.
  virtual void read_owned(Level level, uint32_t scope, int64_t granularity_s, int64_t from_s,
                          int64_t to_s, const std::function<void(int64_t, OwnedBytes&&)>& fn) {
    read(level, scope, granularity_s, from_s, to_s, [&fn](int64_t start, std::string_view data) {
      OwnedBytes b(data.size());
      std::copy(data.begin(), data.end(), b.data());
      fn(start, std::move(b));
    });
  }
  /// Calls fn(id, data) for every tile of a granularity starting in [from_s, to_s), ordered by
  /// level, scope and start (roll-ups).
  virtual void scan(int64_t granularity_s, int64_t from_s, int64_t to_s,
                    const std::function<void(const TileId&, std::string_view)>& fn) = 0;
  /// The persisted names dictionary.
  virtual std::vector<NameRow> names() = 0;
  /// A meta value (watermarks), or nullopt.
  virtual std::optional<int64_t> meta(const std::string& key) = 0;
  /// Deletes at most `limit` tiles of a granularity that start before `before_s`; returns the
  /// number deleted (callers loop, so no single statement holds the database long).
  virtual std::size_t delete_before(int64_t granularity_s, int64_t before_s, std::size_t limit) = 0;
  /// Number of stored tiles of a granularity.
  virtual std::size_t count(int64_t granularity_s) = 0;
};

/// SQLite implementation: one database file (WAL journal, synchronous=FULL), a writer connection
/// and a reader connection so queries do not wait behind a write transaction. Thread-safe.
/// Throws std::runtime_error from the constructor when the file cannot be opened or migrated.
std::unique_ptr<AggregateStore> open_sqlite_store(const std::string& path);

}  // namespace pingmesh::collector
