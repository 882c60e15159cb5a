#include "agent/privileges.hpp"

#include <fmt/format.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pingmesh::agent {

namespace {

// libcap is not needed for this: two raw syscalls and prctl.
int capget_self(__user_cap_data_struct data[2]) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  return static_cast<int>(syscall(SYS_capget, &hdr, data));
}

}  // namespace

std::string drop_capabilities() {
  std::string problems;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    problems += fmt::format("no_new_privs: {}; ", std::strerror(errno));
  }
  // The bounding set can only shrink with CAP_SETPCAP; without it there is nothing to keep
  // from an exec anyway because no_new_privs is set.
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capset, &hdr, data) != 0) {
    problems += fmt::format("capset: {}", std::strerror(errno));
  }
  return problems;
}

bool has_no_capabilities() {
  __user_cap_data_struct data[2]{};
  if (capget_self(data) != 0) return false;
  return data[0].effective == 0 && data[1].effective == 0 && data[0].permitted == 0 &&
         data[1].permitted == 0;
}

}  // namespace pingmesh::agent
