#pragma once
/// Durable alert history: every alert that fired, with its timeline (pending since, fired,
/// resolved), labels, annotations, value and the verdicts attached, in an SQLite file of its own
/// (`<data-dir>/analyzer.db` in `pingmesh server`). The analyzer writes a row when an alert
/// fires and again when it resolves (and the latest values of the firing ones at shutdown); at
/// start-up it reloads the firing ones, so active alerts and history survive a restart. Bounded
/// by retention (age and row count of resolved alerts). Pending alerts that never fire are not
/// stored (they are never notified either).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "analyze/alerts.hpp"

namespace pingmesh::analyze {

/// How much history is kept.
struct AlertRetention {
  int64_t max_age_ms = 90LL * 86400 * 1000;  ///< resolved alerts older than this are deleted
  std::size_t max_rows = 100000;             ///< beyond this, the oldest resolved ones go
};

/// What the store held at open.
struct StoredAlerts {
  std::vector<Alert> active;  ///< firing (not resolved) alerts, oldest first
  uint64_t next_id = 1;       ///< above every id ever stored
};

/// Thread-safe (one connection behind a mutex). Methods throw std::runtime_error naming the
/// file on I/O failure.
class AlertStore {
 public:
  virtual ~AlertStore() = default;
  /// Inserts or replaces the rows of these alerts (by id) in one transaction.
  virtual void put(const std::vector<Alert>& alerts) = 0;
  /// Remembers the next id to hand out (stored at shutdown; pending alerts also take ids).
  virtual void put_next_id(uint64_t next_id) = 0;
  /// Alerts matching `q`, newest first (updated_ms, then id), at most q.limit.
  virtual std::vector<Alert> query(const AlertQuery& q) = 0;
  /// The active alerts and the next id.
  virtual StoredAlerts load() = 0;
  /// Deletes resolved alerts beyond the retention; returns how many were deleted.
  virtual std::size_t prune(const AlertRetention& retention, int64_t now_ms) = 0;
  /// Number of stored alerts.
  virtual std::size_t count() = 0;
};

/// Opens (creating as needed) the SQLite alert store at `path` (WAL journal). Throws
/// std::runtime_error naming the file when it cannot be opened or has a newer schema.
std::unique_ptr<AlertStore> open_sqlite_alert_store(const std::string& path);

}  // namespace pingmesh::analyze
