#include "agent/sockets.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pingmesh::agent::sock {

socklen_t to_sockaddr(const net::IpAddress& a, uint16_t port, sockaddr_storage* ss) {
  std::memset(ss, 0, sizeof(*ss));
  if (a.is_v4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    std::memcpy(&s->sin_addr, a.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  std::memcpy(&s->sin6_addr, a.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ss.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in&>(ss).sin_port)
                                 : ntohs(reinterpret_cast<sockaddr_in6&>(ss).sin6_port);
}

int bind_socket(int type, const net::IpAddress& a, uint16_t port, bool v6only) {
  int fam = a.is_v4() ? AF_INET : AF_INET6;
  int fd = ::socket(fam, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (fam == AF_INET6) set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? 1 : 0);
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(a, port, &ss);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

}  // namespace pingmesh::agent::sock
