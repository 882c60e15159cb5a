#include "agent/privileges.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace pingmesh::agent {
namespace {

TEST(Privileges, DroppedCapabilitiesCannotOpenRawSockets) {
  int probe = ::socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (probe < 0) GTEST_SKIP() << "this process cannot open raw sockets to begin with";
  ::close(probe);
  // In a child, so this test process keeps its capabilities.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string problem = drop_capabilities();
    if (!problem.empty()) _exit(2);
    if (!has_no_capabilities()) _exit(3);
    int fd = ::socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    _exit(fd < 0 ? 0 : 4);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2 = drop failed, 3 = caps left, 4 = raw socket opened";
}

}  // namespace
}  // namespace pingmesh::agent
