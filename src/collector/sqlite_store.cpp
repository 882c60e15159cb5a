#include <sqlite3.h>

#include <mutex>
#include <stdexcept>

#include "collector/store.hpp"

namespace pingmesh::collector {

namespace {

/// 2: sketches' dense buckets are fixed-width (version 1 files are read as they are; version 1
/// binaries refuse version 2 files).
constexpr int kSchemaVersion = 2;

/// A prepared statement, finalized on destruction.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string("collector store: cannot prepare '") + sql +
                               "': " + sqlite3_errmsg(db));
    }
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_blob(int i, std::string_view v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  /// Steps once; true when a row is available.
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(std::string("collector store: ") + sqlite3_errmsg(db_));
  }
  void run() {
    step();
    reset();
  }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  std::string_view text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col)))
             : std::string_view();
  }
  std::string_view blob(int col) const {
    auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col)))
             : std::string_view();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error(std::string("collector store: ") + msg + " in: " + sql);
  }
}

sqlite3* open_db(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error("collector store: cannot open " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 10000);
  return db;
}

class SqliteStore final : public AggregateStore {
 public:
  explicit SqliteStore(const std::string& path) {
    writer_ = open_db(path);
    exec(writer_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    {
      Stmt v(writer_, "PRAGMA user_version");
      v.step();
      int64_t version = v.i64(0);
      if (version > kSchemaVersion) {
        throw std::runtime_error("collector store: " + path + " has schema version " +
                                 std::to_string(version) + ", newer than this binary's " +
                                 std::to_string(kSchemaVersion));
      }
    }
    exec(writer_,
         "BEGIN;"
         "CREATE TABLE IF NOT EXISTS tiles(level INTEGER NOT NULL, scope INTEGER NOT NULL,"
         " granularity INTEGER NOT NULL, start INTEGER NOT NULL, data BLOB NOT NULL);"
         "CREATE UNIQUE INDEX IF NOT EXISTS tiles_key ON tiles(level, scope, granularity, start);"
         "CREATE INDEX IF NOT EXISTS tiles_time ON tiles(granularity, start);"
         "CREATE TABLE IF NOT EXISTS names(kind INTEGER NOT NULL, id INTEGER NOT NULL,"
         " name TEXT NOT NULL, parent INTEGER NOT NULL, dc INTEGER NOT NULL,"
         " PRIMARY KEY(kind, id));"
         "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
         "PRAGMA user_version=2;"
         "COMMIT;");
    reader_ = open_db(path);
    // Tiles are read straight from the mapped file instead of being copied through read().
    exec(reader_, "PRAGMA mmap_size=1073741824");
  }
  ~SqliteStore() override {
    sqlite3_close(reader_);
    sqlite3_close(writer_);
  }

  void write(const std::vector<Tile>& tiles, const std::vector<NameRow>& names,
             const std::vector<std::pair<std::string, int64_t>>& meta) override {
    std::lock_guard lock(write_mu_);
    exec(writer_, "BEGIN IMMEDIATE");
    try {
      Stmt t(writer_,
             "INSERT OR REPLACE INTO tiles(level, scope, granularity, start, data)"
             " VALUES(?,?,?,?,?)");
      for (const auto& tile : tiles) {
        t.bind(1, static_cast<int64_t>(tile.id.level))
            .bind(2, static_cast<int64_t>(tile.id.scope))
            .bind(3, tile.id.granularity_s)
            .bind(4, tile.id.start_s)
            .bind_blob(5, tile.data)
            .run();
      }
      Stmt n(writer_, "INSERT OR REPLACE INTO names(kind, id, name, parent, dc) VALUES(?,?,?,?,?)");
      for (const auto& r : names) {
        n.bind(1, static_cast<int64_t>(r.kind))
            .bind(2, static_cast<int64_t>(r.id))
            .bind(3, r.name)
            .bind(4, static_cast<int64_t>(r.parent))
            .bind(5, static_cast<int64_t>(r.dc))
            .run();
      }
      Stmt m(writer_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?,?)");
      for (const auto& [k, v] : meta) m.bind(1, k).bind(2, v).run();
      exec(writer_, "COMMIT");
    } catch (...) {
      sqlite3_exec(writer_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  void read(Level level, uint32_t scope, int64_t granularity_s, int64_t from_s, int64_t to_s,
            const std::function<void(int64_t, std::string_view)>& fn) override {
    std::lock_guard lock(read_mu_);
    Stmt s(reader_,
           "SELECT start, data FROM tiles WHERE level=? AND scope=? AND granularity=?"
           " AND start>=? AND start<? ORDER BY start");
    s.bind(1, static_cast<int64_t>(level))
        .bind(2, static_cast<int64_t>(scope))
        .bind(3, granularity_s)
        .bind(4, from_s)
        .bind(5, to_s);
    while (s.step()) fn(s.i64(0), s.blob(1));
  }

  void read_owned(Level level, uint32_t scope, int64_t granularity_s, int64_t from_s, int64_t to_s,
                  const std::function<void(int64_t, OwnedBytes&&)>& fn) override {
    std::lock_guard lock(read_mu_);
    // Row ids first, then each blob read straight into its string (one copy from the pages,
    // where sqlite3_column_blob would assemble a large blob in a buffer of its own first).
    std::vector<std::pair<int64_t, int64_t>> rows;  // (start, rowid)
    {
      Stmt s(reader_,
             "SELECT start, rowid FROM tiles WHERE level=? AND scope=? AND granularity=?"
             " AND start>=? AND start<? ORDER BY start");
      s.bind(1, static_cast<int64_t>(level))
          .bind(2, static_cast<int64_t>(scope))
          .bind(3, granularity_s)
          .bind(4, from_s)
          .bind(5, to_s);
      while (s.step()) rows.emplace_back(s.i64(0), s.i64(1));
    }
    exec(reader_, "BEGIN");  // one snapshot for all the blobs
    try {
      for (const auto& [start, rowid] : rows) {
        sqlite3_blob* blob = nullptr;
        if (sqlite3_blob_open(reader_, "main", "tiles", "data", rowid, 0, &blob) != SQLITE_OK) {
          sqlite3_blob_close(blob);
          continue;  // deleted by retention meanwhile
        }
        OwnedBytes data(static_cast<std::size_t>(sqlite3_blob_bytes(blob)));
        int rc = sqlite3_blob_read(blob, data.data(), static_cast<int>(data.size()), 0);
        sqlite3_blob_close(blob);
        if (rc != SQLITE_OK) {
          throw std::runtime_error(std::string("collector store: ") + sqlite3_errmsg(reader_));
        }
        fn(start, std::move(data));
      }
    } catch (...) {
      sqlite3_exec(reader_, "COMMIT", nullptr, nullptr, nullptr);
      throw;
    }
    exec(reader_, "COMMIT");
  }

  void scan(int64_t granularity_s, int64_t from_s, int64_t to_s,
            const std::function<void(const TileId&, std::string_view)>& fn) override {
    std::lock_guard lock(read_mu_);
    Stmt s(reader_,
           "SELECT level, scope, start, data FROM tiles WHERE granularity=? AND start>=?"
           " AND start<? ORDER BY level, scope, start");
    s.bind(1, granularity_s).bind(2, from_s).bind(3, to_s);
    while (s.step()) {
      TileId id{static_cast<Level>(s.i64(0)), static_cast<uint32_t>(s.i64(1)), granularity_s,
                s.i64(2)};
      fn(id, s.blob(3));
    }
  }

  std::vector<NameRow> names() override {
    std::lock_guard lock(read_mu_);
    Stmt s(reader_, "SELECT kind, id, name, parent, dc FROM names ORDER BY kind, id");
    std::vector<NameRow> out;
    while (s.step()) {
      out.push_back({static_cast<NameKind>(s.i64(0)), static_cast<uint32_t>(s.i64(1)),
                     std::string(s.text(2)), static_cast<uint32_t>(s.i64(3)),
                     static_cast<uint32_t>(s.i64(4))});
    }
    return out;
  }

  std::optional<int64_t> meta(const std::string& key) override {
    std::lock_guard lock(read_mu_);
    Stmt s(reader_, "SELECT value FROM meta WHERE key=?");
    s.bind(1, key);
    if (!s.step()) return std::nullopt;
    return s.i64(0);
  }

  std::size_t delete_before(int64_t granularity_s, int64_t before_s, std::size_t limit) override {
    std::lock_guard lock(write_mu_);
    Stmt s(writer_,
           "DELETE FROM tiles WHERE rowid IN (SELECT rowid FROM tiles WHERE granularity=?"
           " AND start<? LIMIT ?)");
    s.bind(1, granularity_s).bind(2, before_s).bind(3, static_cast<int64_t>(limit));
    s.step();
    return static_cast<std::size_t>(sqlite3_changes(writer_));
  }

  std::size_t count(int64_t granularity_s) override {
    std::lock_guard lock(read_mu_);
    Stmt s(reader_, "SELECT count(*) FROM tiles WHERE granularity=?");
    s.bind(1, granularity_s);
    s.step();
    return static_cast<std::size_t>(s.i64(0));
  }

 private:
  std::mutex write_mu_, read_mu_;
  sqlite3* writer_ = nullptr;
  sqlite3* reader_ = nullptr;
};

}  // namespace

std::unique_ptr<AggregateStore> open_sqlite_store(const std::string& path) {
  return std::make_unique<SqliteStore>(path);
}

}  // namespace pingmesh::collector
