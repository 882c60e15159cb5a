// pm-delayline: a user-space delay line on NFQUEUE for kernels without sch_netem.
//
// Each packet queued by an iptables/nftables NFQUEUE rule is held until its kernel receive
// timestamp + delay (+ jitter) and then accepted. The packet stays in the kernel; only its id is
// held here. Release order per queue is the arrival order (a jittered release time is raised to
// the previous one), so the line never reorders. Scheduling: SCHED_FIFO when allowed, an
// absolute CLOCK_REALTIME timerfd (the clock of the kernel's packet timestamps) armed
// --busy-us before the release time, then a busy-wait to the exact time: plain wake-ups on these
// VMs land 50-90 us late. The line measures its own lateness (verdict issued - intended release)
// and reports p50/p99/max on SIGUSR1, at exit and in a JSON stats file.
#include <arpa/inet.h>
#include <endian.h>
#include <getopt.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" {
#include <libnetfilter_queue/libnetfilter_queue.h>
}

namespace {

constexpr int64_t kNsPerUs = 1000;
constexpr int64_t kNsPerS = 1000 * 1000 * 1000;
/// Kernel timestamps further than this from "now" are not trusted (clock stepped, stale skb).
constexpr int64_t kMaxTimestampSkewNs = 2 * kNsPerS;
/// Lateness histogram: one bucket per microsecond up to this, then one overflow bucket.
constexpr size_t kHistBuckets = 100000;

struct Options {
  uint16_t queue = 0;
  int64_t delay_us = 0;
  int64_t jitter_us = 0;
  bool normal = false;  // jitter distribution: uniform in [-J, +J] or normal with stddev J
  int64_t busy_us = 100;
  std::string stats_path;
  int64_t stats_interval_ms = 1000;
  bool realtime = true;
  bool mlock = false;
  uint64_t seed = 0;
  bool seeded = false;
  uint32_t queue_maxlen = 65536;
};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: pm-delayline --queue N --delay-us D [options]\n"
               "Holds every packet of NFQUEUE queue N until its kernel receive timestamp + D\n"
               "(+ jitter) microseconds, then accepts it. Packets leave in arrival order.\n"
               "\n"
               "  --queue N              NFQUEUE number (iptables -j NFQUEUE --queue-num N)\n"
               "  --delay-us D           one-way delay added to every packet, microseconds\n"
               "  --jitter-us J          jitter, microseconds (default 0)\n"
               "  --dist uniform|normal  jitter uniform in [-J,+J] (default) or normal, stddev J\n"
               "  --stats FILE           write JSON stats here every --stats-interval-ms and at exit\n"
               "  --stats-interval-ms M  default 1000\n"
               "  --busy-us B            busy-wait the last B microseconds (default 100)\n"
               "  --no-rt                do not ask for SCHED_FIFO\n"
               "  --mlock                lock the process in memory (mlockall)\n"
               "  --seed S               jitter random seed (default: random)\n"
               "  --help                 this text\n"
               "\n"
               "SIGUSR1 prints lateness (verdict time - intended release) p50/p99/max to stderr;\n"
               "SIGINT/SIGTERM release every held packet, print the stats and exit.\n");
}

int64_t parse_int(const char* name, const char* text, int64_t lo, int64_t hi) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
    throw std::runtime_error(std::string("bad value for --") + name + ": " + text);
  }
  return v;
}

Options parse_options(int argc, char** argv) {
  enum { kQueue = 1, kDelay, kJitter, kDist, kStats, kInterval, kBusy, kNoRt, kMlock, kSeed, kHelp };
  static const option kLong[] = {
      {"queue", required_argument, nullptr, kQueue},
      {"delay-us", required_argument, nullptr, kDelay},
      {"jitter-us", required_argument, nullptr, kJitter},
      {"dist", required_argument, nullptr, kDist},
      {"stats", required_argument, nullptr, kStats},
      {"stats-interval-ms", required_argument, nullptr, kInterval},
      {"busy-us", required_argument, nullptr, kBusy},
      {"no-rt", no_argument, nullptr, kNoRt},
      {"mlock", no_argument, nullptr, kMlock},
      {"seed", required_argument, nullptr, kSeed},
      {"help", no_argument, nullptr, kHelp},
      {nullptr, 0, nullptr, 0},
  };
  Options o;
  bool have_queue = false;
  bool have_delay = false;
  int c;
  while ((c = getopt_long(argc, argv, "h", kLong, nullptr)) != -1) {
    switch (c) {
      case kQueue:
        o.queue = static_cast<uint16_t>(parse_int("queue", optarg, 0, 65535));
        have_queue = true;
        break;
      case kDelay:
        o.delay_us = parse_int("delay-us", optarg, 0, 60LL * 1000 * 1000);
        have_delay = true;
        break;
      case kJitter:
        o.jitter_us = parse_int("jitter-us", optarg, 0, 60LL * 1000 * 1000);
        break;
      case kDist:
        if (std::strcmp(optarg, "uniform") == 0) {
          o.normal = false;
        } else if (std::strcmp(optarg, "normal") == 0) {
          o.normal = true;
        } else {
          throw std::runtime_error(std::string("bad --dist (uniform|normal): ") + optarg);
        }
        break;
      case kStats:
        o.stats_path = optarg;
        break;
      case kInterval:
        o.stats_interval_ms = parse_int("stats-interval-ms", optarg, 10, 3600 * 1000);
        break;
      case kBusy:
        o.busy_us = parse_int("busy-us", optarg, 0, 10000);
        break;
      case kNoRt:
        o.realtime = false;
        break;
      case kMlock:
        o.mlock = true;
        break;
      case kSeed:
        o.seed = static_cast<uint64_t>(parse_int("seed", optarg, 0, INT64_MAX));
        o.seeded = true;
        break;
      case kHelp:
      case 'h':
        usage(stdout);
        std::exit(0);
      default:
        usage(stderr);
        std::exit(2);
    }
  }
  if (optind != argc || !have_queue || !have_delay) {
    usage(stderr);
    std::exit(2);
  }
  return o;
}

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kNsPerS + ts.tv_nsec;
}

[[noreturn]] void die(const char* what) {
  throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}

/// Lateness of releases in 1-us buckets; exact maximum and sum in ns.
class LatenessStats {
 public:
  LatenessStats() : buckets_(kHistBuckets + 1, 0) {}

  void add(int64_t late_ns) {
    if (late_ns < 0) late_ns = 0;
    size_t b = static_cast<size_t>(late_ns / kNsPerUs);
    ++buckets_[std::min(b, kHistBuckets)];
    ++count_;
    sum_ns_ += late_ns;
    max_ns_ = std::max(max_ns_, late_ns);
  }
  uint64_t count() const { return count_; }
  int64_t max_ns() const { return max_ns_; }
  double mean_us() const {
    return count_ ? static_cast<double>(sum_ns_) / static_cast<double>(count_) / 1000.0 : 0.0;
  }
  /// Upper edge (us) of the bucket holding quantile q; 0 when empty.
  int64_t quantile_us(double q) const {
    if (count_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
    rank = std::max<uint64_t>(rank, 1);
    uint64_t seen = 0;
    for (size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= rank) return static_cast<int64_t>(i) + 1;
    }
    return static_cast<int64_t>(kHistBuckets);
  }

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  int64_t sum_ns_ = 0;
  int64_t max_ns_ = 0;
};

struct Held {
  uint32_t id;
  int64_t release_ns;
};

class DelayLine {
 public:
  explicit DelayLine(const Options& o)
      : opt_(o), buf_(MNL_SOCKET_BUFFER_SIZE > 65536 ? MNL_SOCKET_BUFFER_SIZE : 65536 + 4096) {
    if (opt_.seeded) {
      rng_.seed(opt_.seed);
    } else {
      std::random_device rd;
      rng_.seed((static_cast<uint64_t>(rd()) << 32) ^ rd());
    }
  }

  void open() {
    nl_ = mnl_socket_open(NETLINK_NETFILTER);
    if (!nl_) die("mnl_socket_open");
    if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) die("mnl_socket_bind");
    portid_ = mnl_socket_get_portid(nl_);
    int one = 1;
    // Overruns are counted by the kernel; don't let them turn into recv() errors here.
    setsockopt(mnl_socket_get_fd(nl_), SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
    int rcvbuf = 8 << 20;
    if (setsockopt(mnl_socket_get_fd(nl_), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) <
        0) {
      setsockopt(mnl_socket_get_fd(nl_), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }

    std::vector<char> cfg_buf(MNL_SOCKET_BUFFER_SIZE);
    char* cfg = cfg_buf.data();
    nlmsghdr* nlh = nfq_nlmsg_put(cfg, NFQNL_MSG_CONFIG, opt_.queue);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
    send_checked(nlh, "bind queue (is another process on it?)");
    nlh = nfq_nlmsg_put(cfg, NFQNL_MSG_CONFIG, opt_.queue);
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_META, 0);  // ids and metadata only, no payload
    nfq_nlmsg_cfg_put_qmaxlen(nlh, opt_.queue_maxlen);
    send_checked(nlh, "configure queue");

    // Kernel receive timestamps are only taken while some socket wants them; ask for them.
    ts_sock_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (ts_sock_ >= 0) {
      setsockopt(ts_sock_, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    }

    timer_fd_ = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd_ < 0) die("timerfd_create");
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, nullptr) < 0) die("sigprocmask");
    sig_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd_ < 0) die("signalfd");
    stats_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (stats_fd_ < 0) die("timerfd_create");
    itimerspec its{};
    its.it_interval.tv_sec = opt_.stats_interval_ms / 1000;
    its.it_interval.tv_nsec = (opt_.stats_interval_ms % 1000) * 1000000;
    its.it_value = its.it_interval;
    timerfd_settime(stats_fd_, 0, &its, nullptr);

    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) die("epoll_create1");
    add_epoll(mnl_socket_get_fd(nl_));
    add_epoll(timer_fd_);
    add_epoll(sig_fd_);
    add_epoll(stats_fd_);
  }

  void set_scheduling() {
    // Opt-in: under sanitizers the shadow mappings are terabytes and must not be locked.
    if (opt_.mlock && mlockall(MCL_CURRENT | MCL_FUTURE) < 0) {
      std::fprintf(stderr, "pm-delayline: mlockall: %s\n", std::strerror(errno));
    }
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    if (!opt_.realtime) return;
    sched_param sp{};
    sp.sched_priority = 50;
    if (sched_setscheduler(0, SCHED_FIFO, &sp) == 0) {
      rt_ = true;
    } else {
      std::fprintf(stderr, "pm-delayline: SCHED_FIFO not allowed (%s); using the default policy\n",
                   std::strerror(errno));
    }
  }

  int run() {
    std::fprintf(stderr, "pm-delayline: queue %u delay %lld us jitter %lld us (%s)%s\n", opt_.queue,
                 static_cast<long long>(opt_.delay_us), static_cast<long long>(opt_.jitter_us),
                 opt_.normal ? "normal" : "uniform", rt_ ? " SCHED_FIFO" : "");
    epoll_event evs[8];
    while (!stop_) {
      release_due();
      arm_timer();
      int n = epoll_wait(epoll_fd_, evs, 8, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        die("epoll_wait");
      }
      for (int i = 0; i < n; ++i) {
        int fd = evs[i].data.fd;
        if (fd == mnl_socket_get_fd(nl_)) {
          read_packets();
        } else if (fd == timer_fd_) {
          uint64_t exp;
          [[maybe_unused]] ssize_t r = read(timer_fd_, &exp, sizeof(exp));
        } else if (fd == stats_fd_) {
          uint64_t exp;
          [[maybe_unused]] ssize_t r = read(stats_fd_, &exp, sizeof(exp));
          write_stats();
        } else if (fd == sig_fd_) {
          handle_signals();
        }
      }
    }
    // Let every held packet go now rather than have the kernel drop them when the queue unbinds.
    while (!held_.empty()) {
      accept(held_.front().id);
      held_.pop_front();
    }
    write_stats();
    print_stats();
    return 0;
  }

 private:
  void add_epoll(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  }

  void send_checked(nlmsghdr* nlh, const char* what) {
    nlh->nlmsg_flags |= NLM_F_ACK;
    if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) die(what);
    ssize_t n = mnl_socket_recvfrom(nl_, buf_.data(), buf_.size());
    if (n < 0) die(what);
    if (mnl_cb_run(buf_.data(), static_cast<size_t>(n), 0, portid_, nullptr, nullptr) < 0) {
      die(what);
    }
  }

  int64_t jitter_ns() {
    if (opt_.jitter_us == 0) return 0;
    double j;
    if (opt_.normal) {
      std::normal_distribution<double> d(0.0, static_cast<double>(opt_.jitter_us));
      j = d(rng_);
    } else {
      std::uniform_real_distribution<double> d(-static_cast<double>(opt_.jitter_us),
                                               static_cast<double>(opt_.jitter_us));
      j = d(rng_);
    }
    return static_cast<int64_t>(j * kNsPerUs);
  }

  static int on_packet(const nlmsghdr* nlh, void* data) {
    auto* self = static_cast<DelayLine*>(data);
    nlattr* attr[NFQA_MAX + 1] = {};
    if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR]) return MNL_CB_OK;
    // Netlink attributes are only 4-byte aligned: copy them out instead of casting in place.
    nfqnl_msg_packet_hdr ph;
    std::memcpy(&ph, mnl_attr_get_payload(attr[NFQA_PACKET_HDR]), sizeof ph);
    uint32_t id = ntohl(ph.packet_id);
    int64_t now = now_ns();
    int64_t rx = now;
    if (attr[NFQA_TIMESTAMP]) {
      nfqnl_msg_packet_timestamp ts;
      std::memcpy(&ts, mnl_attr_get_payload(attr[NFQA_TIMESTAMP]), sizeof ts);
      int64_t t = static_cast<int64_t>(be64toh(ts.sec)) * kNsPerS +
                  static_cast<int64_t>(be64toh(ts.usec)) * kNsPerUs;
      if (std::llabs(now - t) < kMaxTimestampSkewNs) {
        rx = t;
        self->queue_wait_ns_sum_ += now - t;
      } else {
        ++self->bad_timestamps_;
      }
    } else {
      ++self->no_timestamps_;
    }
    int64_t release = rx + self->opt_.delay_us * kNsPerUs + self->jitter_ns();
    release = std::max({release, rx, self->last_release_ns_});  // never reorder, never early
    self->last_release_ns_ = release;
    self->held_.push_back(Held{id, release});
    self->max_held_ = std::max<uint64_t>(self->max_held_, self->held_.size());
    ++self->received_;
    return MNL_CB_OK;
  }

  void read_packets() {
    for (;;) {
      ssize_t n = recv(mnl_socket_get_fd(nl_), buf_.data(), buf_.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        if (errno == ENOBUFS) {
          ++overruns_;
          continue;
        }
        die("recv");
      }
      mnl_cb_run(buf_.data(), static_cast<size_t>(n), 0, portid_, on_packet, this);
      // Release packets that are already due between reads so a burst can't delay them.
      release_due();
    }
  }

  void accept(uint32_t id) {
    char out[256];
    nlmsghdr* nlh = nfq_nlmsg_put(out, NFQNL_MSG_VERDICT, opt_.queue);
    nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), NF_ACCEPT);
    if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) ++verdict_errors_;
  }

  void release_due() {
    const int64_t busy_ns = opt_.busy_us * kNsPerUs;
    while (!held_.empty()) {
      const Held h = held_.front();
      int64_t now = now_ns();
      if (h.release_ns - now > busy_ns) return;
      while (now < h.release_ns) {
        __builtin_ia32_pause();
        now = now_ns();
      }
      stats_.add(now - h.release_ns);
      accept(h.id);  // the kernel runs the packet on through the stack inside this call
      verdict_ns_sum_ += now_ns() - now;
      held_.pop_front();
    }
  }

  void arm_timer() {
    itimerspec its{};
    if (!held_.empty()) {
      int64_t at = held_.front().release_ns - opt_.busy_us * kNsPerUs;
      its.it_value.tv_sec = at / kNsPerS;
      its.it_value.tv_nsec = at % kNsPerS;
      if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
    }
    timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &its, nullptr);
  }

  void handle_signals() {
    signalfd_siginfo si;
    while (read(sig_fd_, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
      if (si.ssi_signo == SIGUSR1) {
        print_stats();
        write_stats();
      } else {
        stop_ = true;
      }
    }
  }

  std::string stats_json() const {
    char b[1024];
    double wait_us = received_ - no_timestamps_ - bad_timestamps_ > 0
                         ? static_cast<double>(queue_wait_ns_sum_) / 1000.0 /
                               static_cast<double>(received_ - no_timestamps_ - bad_timestamps_)
                         : 0.0;
    std::snprintf(b, sizeof(b),
                  "{\"queue\":%u,\"delay_us\":%lld,\"jitter_us\":%lld,\"dist\":\"%s\","
                  "\"sched_fifo\":%s,\"busy_us\":%lld,\"packets\":%llu,\"released\":%llu,"
                  "\"held_now\":%zu,\"held_max\":%llu,\"no_timestamp\":%llu,"
                  "\"bad_timestamp\":%llu,\"overruns\":%llu,\"verdict_errors\":%llu,"
                  "\"read_wait_mean_us\":%.1f,\"verdict_call_mean_us\":%.1f,"
                  "\"lateness_us\":{\"p50\":%lld,\"p99\":%lld,\"max\":%.1f,\"mean\":%.1f}}\n",
                  opt_.queue, static_cast<long long>(opt_.delay_us),
                  static_cast<long long>(opt_.jitter_us), opt_.normal ? "normal" : "uniform",
                  rt_ ? "true" : "false", static_cast<long long>(opt_.busy_us),
                  static_cast<unsigned long long>(received_),
                  static_cast<unsigned long long>(stats_.count()), held_.size(),
                  static_cast<unsigned long long>(max_held_),
                  static_cast<unsigned long long>(no_timestamps_),
                  static_cast<unsigned long long>(bad_timestamps_),
                  static_cast<unsigned long long>(overruns_),
                  static_cast<unsigned long long>(verdict_errors_), wait_us,
                  stats_.count() ? static_cast<double>(verdict_ns_sum_) / 1000.0 /
                                       static_cast<double>(stats_.count())
                                 : 0.0,
                  static_cast<long long>(stats_.quantile_us(0.5)),
                  static_cast<long long>(stats_.quantile_us(0.99)),
                  static_cast<double>(stats_.max_ns()) / 1000.0, stats_.mean_us());
    return b;
  }

  void print_stats() const {
    std::fprintf(stderr,
                 "pm-delayline: queue %u: %llu packets; lateness p50 %lld us p99 %lld us max "
                 "%.1f us mean %.1f us\n",
                 opt_.queue, static_cast<unsigned long long>(stats_.count()),
                 static_cast<long long>(stats_.quantile_us(0.5)),
                 static_cast<long long>(stats_.quantile_us(0.99)),
                 static_cast<double>(stats_.max_ns()) / 1000.0, stats_.mean_us());
  }

  void write_stats() const {
    if (opt_.stats_path.empty()) return;
    std::string tmp = opt_.stats_path + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (!f) return;
    std::string s = stats_json();
    std::fwrite(s.data(), 1, s.size(), f);
    if (std::fclose(f) == 0) std::rename(tmp.c_str(), opt_.stats_path.c_str());
  }

  Options opt_;
  std::vector<char> buf_;
  mnl_socket* nl_ = nullptr;
  unsigned portid_ = 0;
  int ts_sock_ = -1;
  int timer_fd_ = -1;
  int stats_fd_ = -1;
  int sig_fd_ = -1;
  int epoll_fd_ = -1;
  bool rt_ = false;
  bool stop_ = false;
  std::mt19937_64 rng_;
  std::deque<Held> held_;
  int64_t last_release_ns_ = 0;
  LatenessStats stats_;
  uint64_t received_ = 0;
  uint64_t max_held_ = 0;
  uint64_t no_timestamps_ = 0;
  uint64_t bad_timestamps_ = 0;
  uint64_t overruns_ = 0;
  uint64_t verdict_errors_ = 0;
  int64_t queue_wait_ns_sum_ = 0;
  int64_t verdict_ns_sum_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o = parse_options(argc, argv);
    DelayLine line(o);
    line.open();
    line.set_scheduling();
    return line.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pm-delayline: %s\n", e.what());
    return 1;
  }
}
