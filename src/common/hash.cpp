#include "common/hash.hpp"

#include <xxhash.h>

namespace pingmesh::hash {

uint64_t hash64(std::string_view data, uint64_t seed) {
  return XXH64(data.data(), data.size(), seed);
}

}  // namespace pingmesh::hash
