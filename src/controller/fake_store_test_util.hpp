#pragma once
/// An in-memory TopologyStore for the controller's tests: counts writes and can be told to fail,
/// to check that a failed write leaves the service unchanged.

#include <algorithm>

#include "model/topology.hpp"
#include "topology/store.hpp"

namespace pingmesh::controller::testing {

/// Keeps a Topology; every write bumps `writes` (heartbeats bump `heartbeat_writes`). When
/// `fail` is set, the next write throws StoreError and changes nothing.
class FakeStore : public topology::TopologyStore {
 public:
  FakeStore() { data.rules = model::default_rules(); }

  model::Topology load() override { return data; }
  int64_t revision() override { return writes; }

  void upsert_dc(const model::Datacenter& dc) override {
    write();
    upsert(data.dcs, dc, [&](const auto& x) { return x.name == dc.name; });
  }
  void delete_dc(std::string_view name) override {
    write();
    std::erase_if(data.dcs, [&](const auto& x) { return x.name == name; });
    std::erase_if(data.racks, [&](const auto& x) { return x.dc == name; });
    std::erase_if(data.servers, [&](const auto& x) { return x.dc == name; });
    std::erase_if(data.rules, [&](const auto& x) { return x.src_dc == name || x.dst_dc == name; });
  }
  void upsert_rack(const model::Rack& rack) override {
    write();
    upsert(data.racks, rack, [&](const auto& x) { return x.dc == rack.dc && x.name == rack.name; });
  }
  void delete_rack(std::string_view dc, std::string_view name) override {
    write();
    std::erase_if(data.racks, [&](const auto& x) { return x.dc == dc && x.name == name; });
    std::erase_if(data.servers, [&](const auto& x) { return x.dc == dc && x.rack == name; });
  }
  void upsert_server(const model::Server& s) override {
    write();
    upsert(data.servers, s, [&](const auto& x) { return x.name == s.name; });
  }
  void upsert_servers(const std::vector<model::Server>& servers) override {
    write();
    for (const auto& s : servers) {
      upsert(data.servers, s, [&](const auto& x) { return x.name == s.name; });
    }
  }
  void delete_server(std::string_view name) override {
    write();
    std::erase_if(data.servers, [&](const auto& x) { return x.name == name; });
  }
  void upsert_rule(const model::Rule& rule) override {
    write();
    upsert(data.rules, rule, [&](const auto& x) { return x.name == rule.name; });
  }
  void delete_rule(std::string_view name) override {
    write();
    std::erase_if(data.rules, [&](const auto& x) { return x.name == name; });
  }
  void put_settings(const model::Settings& settings) override {
    write();
    data.settings = settings;
  }
  void replace_all(const model::Topology& topology) override {
    write();
    data = topology;
  }
  void record_heartbeats(const std::vector<topology::HeartbeatRecord>& records) override {
    if (fail) {
      fail = false;
      throw topology::StoreError("injected failure");
    }
    ++heartbeat_writes;
    for (const auto& r : records) {
      for (auto& s : data.servers) {
        if (s.name == r.name) {
          s.last_seen_ms = r.last_seen_ms;
          s.agent_version = r.agent_version;
        }
      }
    }
  }

  model::Topology data;
  int writes = 0;
  int heartbeat_writes = 0;
  bool fail = false;

 private:
  void write() {
    if (fail) {
      fail = false;
      throw topology::StoreError("injected failure");
    }
    ++writes;
  }
  template <class T, class Pred>
  static void upsert(std::vector<T>& v, const T& value, Pred pred) {
    auto it = std::find_if(v.begin(), v.end(), pred);
    if (it == v.end()) {
      v.push_back(value);
    } else {
      *it = value;
    }
  }
};

}  // namespace pingmesh::controller::testing
