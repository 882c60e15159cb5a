#pragma once
/// Small socket and clock helpers shared by the probe engine and the responders.
#include <netinet/in.h>
#include <sys/epoll.h>
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

/// epoll user data of a slab entry: tag (8 bits) | generation (24 bits) | index (32 bits), so a
/// stale event for a reused slot is recognised by its generation.
inline uint64_t event_data(uint8_t tag, uint32_t gen, uint32_t index) {
  return static_cast<uint64_t>(tag) << 56 | (static_cast<uint64_t>(gen) & 0xffffff) << 32 | index;
}
inline uint8_t event_tag(uint64_t d) { return static_cast<uint8_t>(d >> 56); }
inline uint32_t event_gen(uint64_t d) { return static_cast<uint32_t>(d >> 32) & 0xffffff; }
inline uint32_t event_index(uint64_t d) { return static_cast<uint32_t>(d); }

/// epoll_ctl(ADD or MOD) of `fd` for `events` with user data `data`.
inline void epoll_set(int epfd, int op, int fd, uint32_t events, uint64_t data) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  epoll_ctl(epfd, op, fd, &ev);
}

/// Fills `ss` with `a`:`port`; returns its length.
socklen_t to_sockaddr(const net::IpAddress& a, uint16_t port, sockaddr_storage* ss);

/// The local port a socket is bound to.
uint16_t local_port(int fd);

/// A non-blocking socket of `type` bound to `a`:`port` with SO_REUSEADDR (IPv6: V6ONLY as
/// asked); -1 with errno set when it cannot be bound.
int bind_socket(int type, const net::IpAddress& a, uint16_t port, bool v6only);

}  // namespace pingmesh::agent::sock
