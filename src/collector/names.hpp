#pragma once
/// Dictionary of the names results refer to: DCs, racks (within a DC) and servers, each mapped to
/// a dense id (from 1; 0 = none) so aggregates are keyed by integers. Ids are stable for the life
/// of the data directory: new entries are persisted with the tiles that first use them.
/// Thread-safe: lookups take a shared lock, additions an exclusive one.

#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pingmesh::collector {

/// What a name row describes.
enum class NameKind : uint8_t { kDc = 1, kRack = 2, kServer = 3 };

/// One dictionary entry as persisted. For racks `parent` is the DC id; for servers `parent` is
/// the rack id (0 when unknown) and `dc` the DC id.
struct NameRow {
  NameKind kind = NameKind::kDc;
  uint32_t id = 0;
  std::string name;
  uint32_t parent = 0;
  uint32_t dc = 0;
  bool operator==(const NameRow&) const = default;
};

class Names {
 public:
  /// Id of a DC, created on first use.
  uint32_t dc(std::string_view name);
  /// Id of rack `name` in DC `dc_id`, created on first use.
  uint32_t rack(uint32_t dc_id, std::string_view name);
  /// Id of a server, created on first use; its placement (DC, rack) is updated when it changes.
  uint32_t server(std::string_view name, uint32_t dc_id, uint32_t rack_id);

  std::optional<uint32_t> find_dc(std::string_view name) const;
  std::optional<uint32_t> find_rack(uint32_t dc_id, std::string_view name) const;
  std::optional<uint32_t> find_server(std::string_view name) const;

  /// Name of an id (empty when unknown).
  std::string dc_name(uint32_t id) const;
  std::string rack_name(uint32_t id) const;
  std::string server_name(uint32_t id) const;
  /// DC of a rack; DC and rack of a server (0 when unknown).
  uint32_t rack_dc(uint32_t rack_id) const;
  uint32_t server_dc(uint32_t server_id) const;
  uint32_t server_rack(uint32_t server_id) const;

  /// All DC ids, sorted by name.
  std::vector<uint32_t> dcs() const;
  /// Rack ids of a DC, sorted by name.
  std::vector<uint32_t> racks_of(uint32_t dc_id) const;
  /// Server ids in a rack, sorted by name.
  std::vector<uint32_t> servers_of(uint32_t rack_id) const;

  /// Rows created or changed since the last call (to persist them), and clears that list.
  std::vector<NameRow> take_changes();
  /// Loads persisted rows (at start-up, before any other use).
  void load(const std::vector<NameRow>& rows);

 private:
  struct Entry {
    std::string name;
    uint32_t parent = 0;
    uint32_t dc = 0;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Index = std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>>;
  static std::string rack_key(uint32_t dc_id, std::string_view name);
  void changed(NameKind kind, uint32_t id);
  std::string name_of(const std::vector<Entry>& v, uint32_t id) const;

  mutable std::shared_mutex mu_;
  std::vector<Entry> dcs_{1}, racks_{1}, servers_{1};  ///< index 0 unused
  Index dc_index_, rack_index_, server_index_;
  std::vector<std::pair<NameKind, uint32_t>> changes_;
};

}  // namespace pingmesh::collector
