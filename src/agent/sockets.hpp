#pragma once
/// Small socket and clock helpers shared by the probe engine and the responders.
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <cstdint>

#include "common/net.hpp"

namespace pingmesh::agent::sock {

inline int64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
inline int64_t mono_ns() { return clock_ns(CLOCK_MONOTONIC); }

inline void set_int(int fd, int level, int opt, int v) {
  setsockopt(fd, level, opt, &v, sizeof(v));
}

/// Fills `ss` with `a`:`port`; returns its length.
socklen_t to_sockaddr(const net::IpAddress& a, uint16_t port, sockaddr_storage* ss);

/// The local port a socket is bound to.
uint16_t local_port(int fd);

/// A non-blocking socket of `type` bound to `a`:`port` with SO_REUSEADDR (IPv6: V6ONLY as
/// asked); -1 with errno set when it cannot be bound.
int bind_socket(int type, const net::IpAddress& a, uint16_t port, bool v6only);

}  // namespace pingmesh::agent::sock
