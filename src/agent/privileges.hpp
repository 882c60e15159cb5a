#pragma once
/// Dropping privileges once the sockets that need them are open.

#include <string>

namespace pingmesh::agent {

/// Drops every capability (effective, permitted, inheritable, and the bounding set when
/// allowed) of the calling thread and sets no_new_privs. Call it before starting other threads:
/// threads created afterwards inherit the empty sets. The agent opens its raw ICMP sockets and
/// binds its responders first and needs no capability after that (probe sockets are ordinary
/// TCP/UDP sockets; DSCP marking needs none), so nothing is kept, not even CAP_NET_RAW.
/// Returns an empty string on success, else what failed (not fatal: the agent runs on).
std::string drop_capabilities();

/// True when the calling thread holds no effective capability.
bool has_no_capabilities();

}  // namespace pingmesh::agent
