#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>
#include <iterator>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "model/topology_json.hpp"
#include "topology/store.hpp"

namespace pingmesh::topology {

namespace {

/// Schema migrations, applied in order; migration i brings the schema to version i + 1. Only
/// append: a released migration never changes. Plain SQL, so the same tables map onto
/// PostgreSQL and MariaDB. Key columns are real columns (lookups, cascades); the rest of a DC,
/// rack or rule is its JSON document (topology_json.hpp), so adding a field needs no migration.
/// Servers are all columns: they are many, and loading must not parse 100,000 documents.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  revision INTEGER NOT NULL
);
INSERT INTO meta (id, revision) VALUES (1, 0);
CREATE TABLE settings (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  doc TEXT NOT NULL
);
CREATE TABLE dcs (
  name TEXT PRIMARY KEY,
  doc TEXT NOT NULL
);
CREATE TABLE racks (
  dc TEXT NOT NULL REFERENCES dcs (name),
  name TEXT NOT NULL,
  doc TEXT NOT NULL,
  PRIMARY KEY (dc, name)
);
CREATE TABLE servers (
  name TEXT PRIMARY KEY,
  dc TEXT NOT NULL REFERENCES dcs (name),
  rack TEXT NOT NULL,
  addresses TEXT NOT NULL,
  hostname TEXT NOT NULL,
  last_seen_ms BIGINT NOT NULL DEFAULT 0,
  agent_version TEXT NOT NULL DEFAULT ''
);
CREATE INDEX servers_by_rack ON servers (dc, rack);
CREATE TABLE rules (
  name TEXT PRIMARY KEY,
  src_dc TEXT NOT NULL,
  dst_dc TEXT NOT NULL,
  doc TEXT NOT NULL
);
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

constexpr int kBusyTimeoutMs = 5000;

/// Stored rows were validated when written; the interval floor is a server setting that may have
/// been lower then, so reading back accepts any interval.
const model::ValidationLimits kStoredLimits{.min_interval_ms = 0};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Addresses are stored space-separated in their canonical text form.
std::string join_addresses(const std::vector<net::IpAddress>& addresses) {
  std::string out;
  for (const auto& a : addresses) {
    if (!out.empty()) out += ' ';
    out += a.to_string();
  }
  return out;
}

/// A prepared statement; finalized on destruction.
class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql, const std::string& file) : db_(db), file_(file) {
    if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                           &stmt_, nullptr) != SQLITE_OK) {
      throw StoreError(
          fmt::format("topology store {}: preparing \"{}\": {}", file_, sql, sqlite3_errmsg(db)));
    }
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  Statement& bind(int i, std::string_view v) {
    check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }

  /// Steps once; true when a row is available.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    std::string msg = sqlite3_errmsg(db_);
    sqlite3_reset(stmt_);
    throw StoreError(fmt::format("topology store {}: {}", file_, msg));
  }
  /// Runs a statement that returns no rows, then resets it for reuse.
  void run() {
    step();
    reset();
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  std::string_view text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string_view();
  }
  int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) {
      throw StoreError(fmt::format("topology store {}: bind: {}", file_, sqlite3_errmsg(db_)));
    }
  }

  sqlite3* db_;
  const std::string& file_;
  sqlite3_stmt* stmt_ = nullptr;
};

/// Resets a reused query statement however its scope ends, so it never holds a read open.
class Cursor {
 public:
  explicit Cursor(Statement& st) : st_(st) {}
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  ~Cursor() { st_.reset(); }
  Statement* operator->() { return &st_; }
  Statement& operator*() { return st_; }

 private:
  Statement& st_;
};

class SqliteStore final : public TopologyStore {
 public:
  explicit SqliteStore(const std::string& path) : path_(path) {
    int rc =
        sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      throw StoreError(fmt::format("topology store {}: cannot open: {}", path, msg));
    }
    try {
      sqlite3_extended_result_codes(db_, 1);
      sqlite3_busy_timeout(db_, kBusyTimeoutMs);
      configure();
      migrate();
    } catch (...) {
      sqlite3_close(db_);
      throw;
    }
  }

  ~SqliteStore() override {
    // Statements must be finalized before the connection closes.
    statements_.reset();
    sqlite3_close(db_);
  }

  model::Topology load() override {
    std::lock_guard lock(mu_);
    Transaction tx(*this, "BEGIN");
    model::Topology t;
    auto& s = stmts();
    {
      Cursor c(s.select_settings);
      if (c->step()) t.settings = model::settings_from_json(decode(c->text(0), "settings"));
    }
    for (Cursor c(s.select_dcs); c->step();) {
      t.dcs.push_back(model::dc_from_json(decode(c->text(0), "dcs"), kStoredLimits));
    }
    for (Cursor c(s.select_racks); c->step();) {
      t.racks.push_back(model::rack_from_json(decode(c->text(0), "racks")));
    }
    t.servers.reserve(static_cast<std::size_t>(count("SELECT COUNT(*) FROM servers")));
    for (Cursor c(s.select_servers); c->step();) t.servers.push_back(server_row(*c));
    for (Cursor c(s.select_rules); c->step();) {
      t.rules.push_back(model::rule_from_json(decode(c->text(0), "rules"), kStoredLimits));
    }
    tx.commit();
    return t;
  }

  int64_t revision() override {
    std::lock_guard lock(mu_);
    return count("SELECT revision FROM meta WHERE id = 1");
  }

  void upsert_dc(const model::Datacenter& dc) override {
    write([&] { stmts().upsert_dc.bind(1, dc.name).bind(2, model::to_json(dc).dump()).run(); });
  }

  void delete_dc(std::string_view name) override {
    write([&] {
      auto& s = stmts();
      s.delete_servers_of_dc.bind(1, name).run();
      s.delete_racks_of_dc.bind(1, name).run();
      s.delete_rules_of_dc.bind(1, name).run();
      s.delete_dc.bind(1, name).run();
    });
  }

  void upsert_rack(const model::Rack& rack) override {
    write([&] {
      stmts()
          .upsert_rack.bind(1, rack.dc)
          .bind(2, rack.name)
          .bind(3, model::to_json(rack).dump())
          .run();
    });
  }

  void delete_rack(std::string_view dc, std::string_view name) override {
    write([&] {
      auto& s = stmts();
      s.delete_servers_of_rack.bind(1, dc).bind(2, name).run();
      s.delete_rack.bind(1, dc).bind(2, name).run();
    });
  }

  void upsert_server(const model::Server& server) override {
    write([&] { put_server(server); });
  }

  void upsert_servers(const std::vector<model::Server>& servers) override {
    write([&] {
      for (const auto& server : servers) put_server(server);
    });
  }

  void delete_server(std::string_view name) override {
    write([&] { stmts().delete_server.bind(1, name).run(); });
  }

  void upsert_rule(const model::Rule& rule) override {
    write([&] { put_rule(rule); });
  }

  void delete_rule(std::string_view name) override {
    write([&] { stmts().delete_rule.bind(1, name).run(); });
  }

  void put_settings(const model::Settings& settings) override {
    write([&] { put_settings_row(settings); });
  }

  void replace_all(const model::Topology& t) override {
    write([&] {
      for (const char* sql :
           {"DELETE FROM servers", "DELETE FROM racks", "DELETE FROM rules", "DELETE FROM dcs"}) {
        exec(sql);
      }
      put_settings_row(t.settings);
      auto& s = stmts();
      for (const auto& dc : t.dcs) {
        s.upsert_dc.bind(1, dc.name).bind(2, model::to_json(dc).dump()).run();
      }
      for (const auto& rack : t.racks) {
        s.upsert_rack.bind(1, rack.dc)
            .bind(2, rack.name)
            .bind(3, model::to_json(rack).dump())
            .run();
      }
      for (const auto& server : t.servers) put_server(server);
      for (const auto& rule : t.rules) put_rule(rule);
    });
  }

  void record_heartbeats(const std::vector<HeartbeatRecord>& records) override {
    std::lock_guard lock(mu_);
    Transaction tx(*this, "BEGIN IMMEDIATE");
    auto& stmt = stmts().record_heartbeat;
    for (const auto& r : records) {
      stmt.bind(1, r.last_seen_ms).bind(2, r.agent_version).bind(3, r.name).run();
    }
    tx.commit();
  }

 private:
  /// Prepared once, reused by every call (bulk writes and heartbeats are hot).
  struct Statements {
    explicit Statements(sqlite3* db, const std::string& f)
        : select_settings(db, "SELECT doc FROM settings WHERE id = 1", f),
          select_dcs(db, "SELECT doc FROM dcs ORDER BY name", f),
          select_racks(db, "SELECT doc FROM racks ORDER BY dc, name", f),
          select_servers(db,
                         "SELECT name, dc, rack, addresses, hostname, last_seen_ms, agent_version "
                         "FROM servers ORDER BY name",
                         f),
          select_rules(db, "SELECT doc FROM rules ORDER BY name", f),
          upsert_settings(db,
                          "INSERT INTO settings (id, doc) VALUES (1, ?1) "
                          "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                          f),
          upsert_dc(db,
                    "INSERT INTO dcs (name, doc) VALUES (?1, ?2) "
                    "ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
                    f),
          delete_dc(db, "DELETE FROM dcs WHERE name = ?1", f),
          delete_servers_of_dc(db, "DELETE FROM servers WHERE dc = ?1", f),
          delete_racks_of_dc(db, "DELETE FROM racks WHERE dc = ?1", f),
          delete_rules_of_dc(db, "DELETE FROM rules WHERE src_dc = ?1 OR dst_dc = ?1", f),
          upsert_rack(db,
                      "INSERT INTO racks (dc, name, doc) VALUES (?1, ?2, ?3) "
                      "ON CONFLICT (dc, name) DO UPDATE SET doc = excluded.doc",
                      f),
          delete_rack(db, "DELETE FROM racks WHERE dc = ?1 AND name = ?2", f),
          delete_servers_of_rack(db, "DELETE FROM servers WHERE dc = ?1 AND rack = ?2", f),
          upsert_server(db,
                        "INSERT INTO servers "
                        "(name, dc, rack, addresses, hostname, last_seen_ms, agent_version) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                        "ON CONFLICT (name) DO UPDATE SET dc = excluded.dc, rack = excluded.rack, "
                        "addresses = excluded.addresses, hostname = excluded.hostname, "
                        "last_seen_ms = excluded.last_seen_ms, "
                        "agent_version = excluded.agent_version",
                        f),
          delete_server(db, "DELETE FROM servers WHERE name = ?1", f),
          upsert_rule(db,
                      "INSERT INTO rules (name, src_dc, dst_dc, doc) VALUES (?1, ?2, ?3, ?4) "
                      "ON CONFLICT (name) DO UPDATE SET src_dc = excluded.src_dc, "
                      "dst_dc = excluded.dst_dc, doc = excluded.doc",
                      f),
          delete_rule(db, "DELETE FROM rules WHERE name = ?1", f),
          record_heartbeat(
              db, "UPDATE servers SET last_seen_ms = ?1, agent_version = ?2 WHERE name = ?3", f),
          bump_revision(db, "UPDATE meta SET revision = revision + 1 WHERE id = 1", f) {}

    Statement select_settings, select_dcs, select_racks, select_servers, select_rules;
    Statement upsert_settings, upsert_dc, delete_dc, delete_servers_of_dc, delete_racks_of_dc,
        delete_rules_of_dc;
    Statement upsert_rack, delete_rack, delete_servers_of_rack;
    Statement upsert_server, delete_server, upsert_rule, delete_rule;
    Statement record_heartbeat, bump_revision;
  };

  /// A transaction rolled back unless committed, so a throwing write leaves nothing behind.
  class Transaction {
   public:
    Transaction(SqliteStore& store, const char* begin) : store_(store) { store_.exec(begin); }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    ~Transaction() {
      if (!done_) sqlite3_exec(store_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    void commit() {
      store_.exec("COMMIT");
      done_ = true;
    }

   private:
    SqliteStore& store_;
    bool done_ = false;
  };

  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      throw StoreError(fmt::format("topology store {}: {}", path_, msg));
    }
  }

  /// Runs `body` in a write transaction that also bumps the revision.
  template <typename F>
  void write(F&& body) {
    std::lock_guard lock(mu_);
    Transaction tx(*this, "BEGIN IMMEDIATE");
    body();
    stmts().bump_revision.run();
    tx.commit();
  }

  Statements& stmts() {
    if (!statements_) statements_ = std::make_unique<Statements>(db_, path_);
    return *statements_;
  }

  int64_t count(const char* sql) {
    Statement st(db_, sql, path_);
    return st.step() ? st.int64(0) : 0;
  }

  nlohmann::json decode(std::string_view doc, const char* table) {
    auto j = nlohmann::json::parse(doc, nullptr, false);
    if (j.is_discarded()) {
      throw StoreError(
          fmt::format("topology store {}: corrupt JSON document in table {}", path_, table));
    }
    return j;
  }

  model::Server server_row(const Statement& st) {
    model::Server s;
    s.name = st.text(0);
    s.dc = st.text(1);
    s.rack = st.text(2);
    std::string_view addresses = st.text(3);
    while (!addresses.empty()) {
      auto end = addresses.find(' ');
      auto a = net::IpAddress::parse(addresses.substr(0, end));
      if (!a) {
        throw StoreError(
            fmt::format("topology store {}: corrupt address list of server '{}'", path_, s.name));
      }
      s.addresses.push_back(*a);
      addresses = end == std::string_view::npos ? std::string_view() : addresses.substr(end + 1);
    }
    s.hostname = st.text(4);
    s.last_seen_ms = st.int64(5);
    s.agent_version = st.text(6);
    return s;
  }

  void put_server(const model::Server& s) {
    stmts()
        .upsert_server.bind(1, s.name)
        .bind(2, s.dc)
        .bind(3, s.rack)
        .bind(4, join_addresses(s.addresses))
        .bind(5, s.hostname)
        .bind(6, s.last_seen_ms)
        .bind(7, s.agent_version)
        .run();
  }

  void put_rule(const model::Rule& r) {
    stmts()
        .upsert_rule.bind(1, r.name)
        .bind(2, r.src_dc)
        .bind(3, r.dst_dc)
        .bind(4, model::to_json(r).dump())
        .run();
  }

  void put_settings_row(const model::Settings& settings) {
    stmts().upsert_settings.bind(1, model::to_json(settings).dump()).run();
  }

  void configure() {
    // The first statement reads the header: a file that is not SQLite fails here.
    try {
      exec("PRAGMA journal_mode = WAL");
    } catch (const StoreError& e) {
      if (sqlite3_errcode(db_) == SQLITE_NOTADB) {
        throw StoreError(fmt::format("topology store {}: not a SQLite database", path_));
      }
      throw;
    }
    exec("PRAGMA synchronous = NORMAL");
    exec("PRAGMA foreign_keys = ON");
  }

  bool table_exists(const char* name) {
    Statement st(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", path_);
    st.bind(1, std::string_view(name));
    return st.step();
  }

  void migrate() {
    int version = 0;
    if (table_exists("schema_migrations")) {
      version = static_cast<int>(count("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    } else if (count("SELECT COUNT(*) FROM sqlite_master") > 0) {
      throw StoreError(
          fmt::format("topology store {}: a SQLite database but not a pingmesh topology store "
                      "(no schema_migrations table)",
                      path_));
    }
    if (version > kSchemaVersion) {
      throw StoreError(fmt::format(
          "topology store {}: schema version {} is newer than this binary supports ({}); "
          "run a newer pingmesh",
          path_, version, kSchemaVersion));
    }
    if (version == 0) {
      Transaction tx(*this, "BEGIN IMMEDIATE");
      exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          "version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)");
      tx.commit();
    }
    for (int v = version + 1; v <= kSchemaVersion; ++v) {
      Transaction tx(*this, "BEGIN IMMEDIATE");
      // Another process may have migrated between our check and the lock.
      if (count("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") >= v) continue;
      exec(kMigrations[v - 1]);
      Statement record(db_, "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                       path_);
      record.bind(1, int64_t{v}).bind(2, now_ms()).run();
      if (v == 1) seed();
      tx.commit();
    }
  }

  /// A new store: default settings and the wildcard rules.
  void seed() {
    put_settings_row(model::Settings{});
    for (const auto& rule : model::default_rules()) put_rule(rule);
  }

  std::mutex mu_;
  std::string path_;
  sqlite3* db_ = nullptr;
  std::unique_ptr<Statements> statements_;
};

}  // namespace

std::unique_ptr<TopologyStore> open_sqlite_store(const std::string& path) {
  return std::make_unique<SqliteStore>(path);
}

}  // namespace pingmesh::topology
