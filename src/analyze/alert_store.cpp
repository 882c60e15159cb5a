#include "analyze/alert_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <unordered_set>

namespace pingmesh::analyze {

namespace {

constexpr int64_t kSchemaVersion = 1;

class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql, const std::string& path) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK) {
      throw std::runtime_error("alert store " + path + ": " + sqlite3_errmsg(db) + " in: " + sql);
    }
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error("alert store " + path_ + ": " + sqlite3_errmsg(db_));
  }
  void run() {
    step();
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  double real(int c) const {
    return sqlite3_column_type(s_, c) == SQLITE_NULL ? std::nan("") : sqlite3_column_double(s_, c);
  }
  std::string text(int c) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, c))) : "";
  }

 private:
  sqlite3* db_;
  const std::string& path_;
  sqlite3_stmt* s_ = nullptr;
};

constexpr const char* kColumns =
    "id, fingerprint, rule, scope, state, labels, annotations, verdicts, active_since_ms, "
    "fired_ms, resolved_ms, updated_ms, last_breach_ms, value, threshold, samples";

Alert read_row(const Stmt& s) {
  Alert a;
  a.id = static_cast<uint64_t>(s.i64(0));
  a.fingerprint = s.text(1);
  a.rule = s.text(2);
  a.scope = s.text(3);
  a.state = parse_alert_state(s.text(4)).value_or(AlertState::kResolved);
  auto obj = [](const std::string& text) {
    LabelMap m;
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_object()) {
      for (const auto& [k, v] : j.items()) {
        if (v.is_string()) m[k] = v.get<std::string>();
      }
    }
    return m;
  };
  a.labels = obj(s.text(5));
  a.annotations = obj(s.text(6));
  auto v = nlohmann::json::parse(s.text(7), nullptr, false);
  if (v.is_array()) {
    for (const auto& x : v) {
      if (x.is_string()) a.verdicts.push_back(x.get<std::string>());
    }
  }
  a.active_since_ms = s.i64(8);
  a.fired_ms = s.i64(9);
  a.resolved_ms = s.i64(10);
  a.updated_ms = s.i64(11);
  a.last_breach_ms = s.i64(12);
  a.value = s.real(13);
  a.threshold = s.real(14);
  a.samples = static_cast<uint64_t>(s.i64(15));
  return a;
}

/// True for label keys that can be put into a JSON path as is.
bool plain_key(const std::string& k) {
  return !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

class SqliteAlertStore final : public AlertStore {
 public:
  explicit SqliteAlertStore(std::string path) : path_(std::move(path)) {
    if (sqlite3_open_v2(path_.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("alert store: cannot open " + path_ + ": " + msg);
    }
    sqlite3_busy_timeout(db_, 10000);
    try {
      exec("PRAGMA journal_mode=WAL");
    } catch (const std::runtime_error&) {
      bool notadb = sqlite3_errcode(db_) == SQLITE_NOTADB;
      sqlite3_close(db_);
      if (notadb) throw std::runtime_error("alert store " + path_ + ": not a SQLite database");
      throw;
    }
    exec("PRAGMA synchronous=NORMAL");
    int64_t version = 0;
    {
      Stmt v(db_, "PRAGMA user_version", path_);
      v.step();
      version = v.i64(0);
    }
    if (version > kSchemaVersion) {
      sqlite3_close(db_);
      throw std::runtime_error("alert store " + path_ + ": schema version " +
                               std::to_string(version) + " is newer than this binary's (" +
                               std::to_string(kSchemaVersion) + "); run a newer pingmesh");
    }
    exec("BEGIN IMMEDIATE");
    exec(
        "CREATE TABLE IF NOT EXISTS alerts(id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL,"
        " rule TEXT NOT NULL, scope TEXT NOT NULL, state TEXT NOT NULL, severity TEXT NOT NULL,"
        " labels TEXT NOT NULL, annotations TEXT NOT NULL, verdicts TEXT NOT NULL,"
        " active_since_ms INTEGER NOT NULL, fired_ms INTEGER NOT NULL,"
        " resolved_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
        " last_breach_ms INTEGER NOT NULL, value REAL, threshold REAL, samples INTEGER NOT NULL)");
    exec("CREATE INDEX IF NOT EXISTS alerts_updated ON alerts(updated_ms)");
    exec("CREATE INDEX IF NOT EXISTS alerts_state ON alerts(state, resolved_ms)");
    exec("CREATE INDEX IF NOT EXISTS alerts_rule ON alerts(rule, updated_ms)");
    exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    exec("PRAGMA user_version=1");
    exec("COMMIT");
  }
  ~SqliteAlertStore() override { sqlite3_close(db_); }

  void put(const std::vector<Alert>& alerts) override {
    if (alerts.empty()) return;
    std::lock_guard lock(mu_);
    exec("BEGIN IMMEDIATE");
    try {
      Stmt s(db_,
             std::string("INSERT OR REPLACE INTO alerts(") + kColumns +
                 ", severity) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
             path_);
      for (const auto& a : alerts) {
        s.bind(1, static_cast<int64_t>(a.id))
            .bind(2, a.fingerprint)
            .bind(3, a.rule)
            .bind(4, a.scope)
            .bind(5, std::string(to_string(a.state)))
            .bind(6, nlohmann::json(a.labels).dump())
            .bind(7, nlohmann::json(a.annotations).dump())
            .bind(8, nlohmann::json(a.verdicts).dump())
            .bind(9, a.active_since_ms)
            .bind(10, a.fired_ms)
            .bind(11, a.resolved_ms)
            .bind(12, a.updated_ms)
            .bind(13, a.last_breach_ms);
        if (std::isfinite(a.value)) {
          s.bind(14, a.value);
        } else {
          s.bind_null(14);
        }
        s.bind(15, a.threshold).bind(16, static_cast<int64_t>(a.samples));
        auto sev = a.labels.find("severity");
        s.bind(17, sev == a.labels.end() ? std::string() : sev->second);
        s.run();
      }
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  void put_next_id(uint64_t next_id) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES('next_id', ?)", path_);
    s.bind(1, static_cast<int64_t>(next_id)).run();
  }

  std::vector<Alert> query(const AlertQuery& q) override {
    std::string sql = std::string("SELECT ") + kColumns + " FROM alerts WHERE updated_ms >= ?";
    std::vector<std::string> texts;
    if (q.until_ms != INT64_MAX) sql += " AND active_since_ms <= ?";
    if (q.active_only) sql += " AND state IN ('pending', 'firing')";
    if (q.state) {
      sql += " AND state = ?";
      texts.emplace_back(to_string(*q.state));
    }
    if (!q.rule.empty()) {
      sql += " AND rule = ?";
      texts.push_back(q.rule);
    }
    if (!q.scope.empty()) {
      sql += " AND scope = ?";
      texts.push_back(q.scope);
    }
    if (!q.severity.empty()) {
      sql += " AND severity = ?";
      texts.push_back(q.severity);
    }
    for (const auto& [k, v] : q.labels) {
      if (!plain_key(k)) return {};  // no stored label has such a key
      sql += " AND json_extract(labels, '$.\"" + k + "\"') = ?";
      texts.push_back(v);
    }
    sql += " ORDER BY updated_ms DESC, id DESC LIMIT ?";
    std::lock_guard lock(mu_);
    Stmt s(db_, sql, path_);
    int i = 1;
    s.bind(i++, q.since_ms);
    if (q.until_ms != INT64_MAX) s.bind(i++, q.until_ms);
    for (const auto& t : texts) s.bind(i++, t);
    s.bind(i, static_cast<int64_t>(std::min<std::size_t>(q.limit, INT64_MAX)));
    std::vector<Alert> out;
    while (s.step()) out.push_back(read_row(s));
    return out;
  }

  StoredAlerts load() override {
    std::lock_guard lock(mu_);
    StoredAlerts out;
    {
      Stmt s(db_,
             std::string("SELECT ") + kColumns +
                 " FROM alerts WHERE state IN ('pending', 'firing') ORDER BY id",
             path_);
      while (s.step()) out.active.push_back(read_row(s));
    }
    {
      Stmt s(db_, "SELECT COALESCE(MAX(id), 0) FROM alerts", path_);
      s.step();
      out.next_id = static_cast<uint64_t>(s.i64(0)) + 1;
    }
    {
      Stmt s(db_, "SELECT value FROM meta WHERE key = 'next_id'", path_);
      if (s.step()) out.next_id = std::max(out.next_id, static_cast<uint64_t>(s.i64(0)));
    }
    return out;
  }

  std::size_t prune(const AlertRetention& r, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    std::size_t deleted = 0;
    {
      Stmt s(db_, "DELETE FROM alerts WHERE state = 'resolved' AND resolved_ms < ?", path_);
      s.bind(1, now_ms - r.max_age_ms).run();
      deleted += static_cast<std::size_t>(sqlite3_changes(db_));
    }
    int64_t resolved = 0;
    {
      Stmt s(db_, "SELECT COUNT(*) FROM alerts WHERE state = 'resolved'", path_);
      s.step();
      resolved = s.i64(0);
    }
    if (resolved > static_cast<int64_t>(r.max_rows)) {
      // The newest max_rows resolved alerts stay (ids grow with time).
      Stmt s(db_,
             "DELETE FROM alerts WHERE state = 'resolved' AND id <= (SELECT id FROM alerts"
             " WHERE state = 'resolved' ORDER BY id LIMIT 1 OFFSET ?)",
             path_);
      s.bind(1, resolved - static_cast<int64_t>(r.max_rows) - 1).run();
      deleted += static_cast<std::size_t>(sqlite3_changes(db_));
    }
    return deleted;
  }

  std::size_t count() override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "SELECT COUNT(*) FROM alerts", path_);
    s.step();
    return static_cast<std::size_t>(s.i64(0));
  }

 private:
  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      throw std::runtime_error("alert store " + path_ + ": " + msg);
    }
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;
};

}  // namespace

std::unique_ptr<AlertStore> open_sqlite_alert_store(const std::string& path) {
  return std::make_unique<SqliteAlertStore>(path);
}

}  // namespace pingmesh::analyze
