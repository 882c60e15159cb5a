#pragma once
/// Logging setup. Code logs with spdlog directly (spdlog::info(...)); every line says which
/// component wrote it ("controller: ...").

#include <string>

namespace pingmesh::log {

/// Sets the global level from a name (trace, debug, info, warn, error, off). Throws
/// std::invalid_argument naming the bad value.
void init(const std::string& level);

}  // namespace pingmesh::log
