// Load generator for the collector's end-to-end benchmark (bench/collector/compare.sh): POSTs
// pre-built, snappy-compressed result batches over keep-alive HTTP/1.1 connections for a fixed
// time and reports the results/s acknowledged and its own CPU. The same results can be sent to
// VictoriaMetrics as Prometheus remote-write samples (one sample per result, one series per
// source, target and protocol), so both servers ingest the same probe results.
//
//   collector_loadgen --target pingmesh --port 9003 --token t --seconds 20
//   collector_loadgen --target vm --port 8428 --seconds 20
//
// Batches: --agents agents, each with --peers peers and one result per peer (batches.hpp);
// --rounds distinct batches per agent (different RTTs and timestamps), sent round-robin. A batch
// re-sent in a later cycle gets a fresh batch_id (appended to the snappy stream as a literal,
// which protobuf reads as the last value of the field), so the collector's dedup does not drop it.
// VictoriaMetrics' bodies repeat after --rounds cycles (same samples again).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <snappy.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "batches.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string target = "pingmesh";  // pingmesh | vm
  std::string host = "127.0.0.1";
  int port = 9003;
  std::string token;
  int agents = 1000;
  int peers = 2500;
  int rounds = 2;
  int connections = 8;
  double seconds = 20;
};

using pingmesh::bench::put_varint;
using pingmesh::bench::SnappyBody;

void put_tag(std::string* out, int field, int wire) { put_varint(out, field << 3 | wire); }

void put_bytes(std::string* out, int field, const std::string& s) {
  put_tag(out, field, 2);
  put_varint(out, s.size());
  out->append(s);
}

/// prompb.WriteRequest with one TimeSeries (one sample) per result of `b`.
std::string remote_write(const pingmesh::v1::ResultBatch& b) {
  std::string out, ts, label, sample;
  for (const auto& r : b.results()) {
    const auto& peer = b.peers(static_cast<int>(r.peer()));
    ts.clear();
    auto add_label = [&](const std::string& name, const std::string& value) {
      label.clear();
      put_bytes(&label, 1, name);
      put_bytes(&label, 2, value);
      put_bytes(&ts, 1, label);
    };
    add_label("__name__", "pingmesh_probe_rtt_microseconds");
    add_label("dst", peer.name());
    add_label("protocol", "tcp");
    add_label("src", b.agent());
    sample.clear();
    put_tag(&sample, 1, 1);
    double v = r.rtt_us();
    sample.append(reinterpret_cast<const char*>(&v), 8);
    put_tag(&sample, 2, 0);
    put_varint(&sample, static_cast<uint64_t>(r.timestamp_us() / 1000));
    put_bytes(&ts, 2, sample);
    put_bytes(&out, 1, ts);
  }
  return out;
}

int connect_to(const Options& o) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(o.port));
  ::inet_pton(AF_INET, o.host.c_str(), &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("connect");
    std::exit(1);
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

/// Reads one response; returns the status (0 on a broken connection).
int read_response(int fd, std::string* buf) {
  buf->clear();
  std::size_t header_end;
  char tmp[4096];
  while ((header_end = buf->find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n <= 0) return 0;
    buf->append(tmp, static_cast<std::size_t>(n));
  }
  int status = std::atoi(buf->c_str() + 9);
  std::size_t len = 0;
  for (const char* key : {"Content-Length: ", "content-length: "}) {
    auto p = buf->find(key);
    if (p != std::string::npos) len = std::strtoul(buf->c_str() + p + 16, nullptr, 10);
  }
  while (buf->size() < header_end + 4 + len) {
    ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n <= 0) return 0;
    buf->append(tmp, static_cast<std::size_t>(n));
  }
  return status;
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

void usage() {
  std::fprintf(
      stderr,
      "usage: collector_loadgen [--target pingmesh|vm] [--host 127.0.0.1] [--port N]\n"
      "  [--token T] [--agents 1000] [--peers 2500] [--rounds 2] [--connections 8]\n"
      "  [--seconds 20]\n"
      "POSTs result batches (pingmesh: /api/v1/results, snappy protobuf; vm: /api/v1/write,\n"
      "Prometheus remote write) for --seconds and prints results/s and its own CPU.\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--target")
      o.target = next();
    else if (a == "--host")
      o.host = next();
    else if (a == "--port")
      o.port = std::stoi(next());
    else if (a == "--token")
      o.token = next();
    else if (a == "--agents")
      o.agents = std::stoi(next());
    else if (a == "--peers")
      o.peers = std::stoi(next());
    else if (a == "--rounds")
      o.rounds = std::stoi(next());
    else if (a == "--connections")
      o.connections = std::stoi(next());
    else if (a == "--seconds")
      o.seconds = std::stod(next());
    else {
      usage();
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (o.target != "pingmesh" && o.target != "vm") {
    usage();
    return 2;
  }
  const bool vm = o.target == "vm";

  // Build the bodies (not timed, not in the reported CPU).
  int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  std::mt19937_64 rng(42);
  std::vector<SnappyBody> bodies;
  std::size_t body_bytes = 0;
  for (int r = 0; r < o.rounds; ++r) {
    for (int a = 0; a < o.agents; ++a) {
      // Timestamps a few seconds in the past (never clamped as future), 1 s apart per round.
      auto b = pingmesh::bench::make_batch(a, o.agents, o.peers, now_s - 10 + r, 0, rng);
      std::string raw = vm ? remote_write(b) : b.SerializeAsString();
      bodies.push_back(SnappyBody::of(raw, b.results_size()));
      body_bytes += bodies.back().elements.size();
    }
  }
  std::string head = vm ? "POST /api/v1/write HTTP/1.1\r\nHost: " + o.host +
                              "\r\nContent-Type: application/x-protobuf\r\n"
                              "Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: "
                              "0.1.0\r\n"
                        : "POST /api/v1/results HTTP/1.1\r\nHost: " + o.host +
                              "\r\nContent-Type: application/x-protobuf\r\n"
                              "Content-Encoding: snappy\r\n";
  if (!o.token.empty() && !vm) head += "Authorization: Bearer " + o.token + "\r\n";

  std::atomic<uint64_t> next{0}, results{0}, requests{0}, throttled{0}, failed{0}, rejected{0};
  std::atomic<bool> stop{false};
  const uint64_t id_base = static_cast<uint64_t>(std::random_device{}()) << 32;
  double cpu0 = cpu_seconds();
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < o.connections; ++c) {
    threads.emplace_back([&] {
      int fd = connect_to(o);
      std::string req, resp, suffix;
      while (!stop.load(std::memory_order_relaxed)) {
        uint64_t k = next.fetch_add(1);
        const SnappyBody& b = bodies[k % bodies.size()];
        suffix.clear();
        if (!vm) {  // unique per request, also across runs (the collector dedups for 15 min)
          put_tag(&suffix, 5, 0);
          put_varint(&suffix, id_base + k + 1);
        }
        std::string body = b.with_suffix(suffix);
        req = head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
        req += body;
        if (!write_all(fd, req)) {
          ++failed;
          break;
        }
        int status = read_response(fd, &resp);
        if (status == 200 || status == 204) {
          uint64_t n = static_cast<uint64_t>(b.results);
          if (!vm) {  // count what the collector says it accepted
            auto p = resp.find("\"accepted\":");
            n = p == std::string::npos ? 0 : std::strtoull(resp.c_str() + p + 11, nullptr, 10);
            if (n < static_cast<uint64_t>(b.results)) rejected += b.results - n;
          }
          results += n;
          ++requests;
        } else if (status == 429) {
          ++throttled;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        } else {
          ++failed;
          if (failed.load() < 5) {
            std::fprintf(stderr, "HTTP %d: %.300s\n", status, resp.c_str());
          }
          if (status == 0) break;
        }
      }
      ::close(fd);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu = cpu_seconds() - cpu0;
  double n = static_cast<double>(results.load());
  std::printf(
      "{\"target\":\"%s\",\"results\":%.0f,\"rejected\":%llu,\"requests\":%llu,"
      "\"throttled\":%llu,\"failed\":%llu,"
      "\"seconds\":%.3f,\"results_per_s\":%.0f,\"client_cpu_s\":%.3f,"
      "\"client_cpu_us_per_result\":%.4f,\"body_bytes_per_result\":%.2f}\n",
      o.target.c_str(), n, static_cast<unsigned long long>(rejected.load()),
      static_cast<unsigned long long>(requests.load()),
      static_cast<unsigned long long>(throttled.load()),
      static_cast<unsigned long long>(failed.load()), wall, n / wall, cpu,
      n > 0 ? cpu / n * 1e6 : 0.0,
      static_cast<double>(body_bytes) / (static_cast<double>(o.rounds) * o.agents * o.peers));
  return failed.load() > 0 && n == 0 ? 1 : 0;
}
