#pragma once
/// Persistence of the topology. The controller keeps the authoritative copy in memory and writes
/// through this interface; a store is dumb CRUD with transactions, so it maps onto SQLite (the
/// embedded default), PostgreSQL and MariaDB alike. Methods throw StoreError on I/O failure;
/// callers validate before writing, so a failed call changes nothing.

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "model/topology.hpp"

namespace pingmesh::topology {

/// A storage failure (I/O, corruption, lock timeout), with a message a user can act on.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The liveness part of a server, as recorded from heartbeats.
struct HeartbeatRecord {
  std::string name;
  int64_t last_seen_ms = 0;
  std::string agent_version;
};

class TopologyStore {
 public:
  virtual ~TopologyStore() = default;

  /// Everything, including servers' last_seen_ms and agent_version.
  virtual model::Topology load() = 0;
  /// Bumped by every write except record_heartbeats; replicas poll it to know when to reload.
  virtual int64_t revision() = 0;

  virtual void upsert_dc(const model::Datacenter& dc) = 0;
  /// Deletes the DC with its racks, servers and the rules that name it, in one transaction.
  virtual void delete_dc(std::string_view name) = 0;
  virtual void upsert_rack(const model::Rack& rack) = 0;
  /// Deletes the rack; servers in it are deleted too (rack mode) in the same transaction.
  virtual void delete_rack(std::string_view dc, std::string_view name) = 0;
  /// Inserts or replaces a server (config and state fields).
  virtual void upsert_server(const model::Server& server) = 0;
  /// Inserts or replaces many servers in one transaction (bulk registration).
  virtual void upsert_servers(const std::vector<model::Server>& servers) = 0;
  virtual void delete_server(std::string_view name) = 0;
  virtual void upsert_rule(const model::Rule& rule) = 0;
  virtual void delete_rule(std::string_view name) = 0;
  virtual void put_settings(const model::Settings& settings) = 0;
  /// Replaces the whole topology in one transaction (import).
  virtual void replace_all(const model::Topology& topology) = 0;
  /// Updates last_seen_ms/agent_version of existing servers in one transaction; does not bump
  /// the revision. Unknown names are ignored.
  virtual void record_heartbeats(const std::vector<HeartbeatRecord>& records) = 0;
};

/// Opens (creating and migrating as needed) the SQLite store at `path` (WAL mode). A new store
/// holds the default rules. Throws StoreError naming the file when it cannot be opened, is not a
/// pingmesh database, or has a newer schema than this binary knows.
std::unique_ptr<TopologyStore> open_sqlite_store(const std::string& path);

}  // namespace pingmesh::topology
