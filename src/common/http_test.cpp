#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <thread>

#include "common/http.hpp"

using namespace pingmesh::http;

TEST(HttpServer, ServesKeepAliveAndLimitsBody) {
  ServerOptions opt;
  opt.port = 0;
  opt.threads = 2;
  opt.max_body_bytes = 1000;
  Server srv(opt, [](const Request& q) {
    auto r = Response::text(q.method + " " + q.path + " " + std::string(q.header("x-test")) +
                            " " + std::to_string(q.body.size()));
    r.headers.emplace_back("etag", "\"abc\"");
    return r;
  });
  srv.start();
  ASSERT_NE(srv.port(), 0);
  Client c;
  std::string base = "http://127.0.0.1:" + std::to_string(srv.port());
  for (int i = 0; i < 3; ++i) {
    auto resp = c.perform({"GET", base + "/a%20b?x=1", {{"X-Test", "yes"}}, "", {}});
    ASSERT_EQ(resp.status, 200) << resp.error;
    EXPECT_EQ(resp.body, "GET /a b yes 0");
    EXPECT_EQ(resp.header("etag"), "\"abc\"");
  }
  auto post = c.perform({"POST", base + "/p", {}, std::string(500, 'x'), {}});
  EXPECT_EQ(post.body, "POST /p  500");
  auto big = c.perform({"POST", base + "/p", {}, std::string(5000, 'x'), {}});
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("too large"), std::string::npos);
  EXPECT_GE(srv.stats().requests, 4u);
  srv.stop();
  auto after = c.perform({"GET", base + "/", {}, "", std::chrono::milliseconds(500)});
  EXPECT_EQ(after.status, 0);
}

TEST(HttpServer, ClosesIdleConnections) {
  ServerOptions opt;
  opt.port = 0;
  opt.idle_timeout = std::chrono::seconds(1);
  Server srv(opt, [](const Request&) { return Response::text("ok"); });
  srv.start();
  Client c;
  std::string url = "http://127.0.0.1:" + std::to_string(srv.port()) + "/";
  ASSERT_EQ(c.perform({"GET", url, {}, "", {}}).status, 200);
  EXPECT_EQ(srv.stats().open_connections, 1u);
  // The kept-alive connection is closed by the sweep once idle for longer than the timeout.
  for (int i = 0; i < 40 && srv.stats().open_connections > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(srv.stats().open_connections, 0u);
  EXPECT_EQ(c.perform({"GET", url, {}, "", {}}).status, 200);  // the client reconnects
}

TEST(HttpClient, ParsesUrls) {
  auto u = parse_url("http://127.0.0.1:9000/api/v1/pinglist/a?x=1#frag");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, "http");
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 9000);
  EXPECT_EQ(u->target, "/api/v1/pinglist/a?x=1");
  u = parse_url("HTTPS://controller.example");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/");
  u = parse_url("http://[fd00::1]:8080?q");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "fd00::1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/?q");
  u = parse_url("http://[::1]/x");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, 80);
  EXPECT_FALSE(parse_url("ftp://h/"));
  EXPECT_FALSE(parse_url("127.0.0.1:9000/x"));
  EXPECT_FALSE(parse_url("http://:80/"));
  EXPECT_FALSE(parse_url("http://h:0/"));
  EXPECT_FALSE(parse_url("http://h:65536/"));
  EXPECT_FALSE(parse_url("http://h:8x/"));
  EXPECT_FALSE(parse_url("http://user@h/"));
  EXPECT_FALSE(parse_url("http://[::1/"));
  Client c;
  auto r = c.perform({"GET", "gopher://h/", {}, "", {}});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("URL"), std::string::npos);
}

namespace {

/// A one-connection-at-a-time raw TCP server on 127.0.0.1 answering each accepted connection with
/// `answer(request_text)`, then closing it when `close_after` (keep-alive tests otherwise).
class RawServer {
 public:
  explicit RawServer(std::function<std::string(const std::string&)> answer)
      : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(fd_, 8);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~RawServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int connections() const { return connections_; }

 private:
  void run() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++connections_;
      std::string req;
      char buf[4096];
      // One request per connection: read up to the end of the head (bodies are not used here).
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
      }
      std::string out = answer_(req);
      ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }
  std::function<std::string(const std::string&)> answer_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace

TEST(HttpClient, ReadsChunkedAndCloseDelimitedBodies) {
  std::string seen;
  RawServer chunked([&](const std::string& req) {
    seen = req;
    return std::string(
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n"
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  });
  Client c;
  auto r = c.perform({"POST", "http://127.0.0.1:" + std::to_string(chunked.port()) + "/u?k=v",
                      {{"X-Req", "1"}}, "abc", {}});
  ASSERT_EQ(r.status, 201) << r.error;
  EXPECT_EQ(r.body, "hello world");
  EXPECT_EQ(r.header("x-a"), "b");
  EXPECT_NE(seen.find("POST /u?k=v HTTP/1.1\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Req: 1\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("Content-Length: 3\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("Host: 127.0.0.1:"), std::string::npos) << seen;

  RawServer eof([](const std::string&) {
    return std::string("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close");
  });
  std::string url = "http://127.0.0.1:" + std::to_string(eof.port()) + "/";
  for (int i = 0; i < 2; ++i) {  // the server closes each connection: the client reconnects
    r = c.perform({"GET", url, {}, "", {}});
    ASSERT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.body, "until close");
  }
  EXPECT_EQ(eof.connections(), 2);

  std::string large(9 << 20, 'x');  // above Beast's default body limit of 8 MiB
  RawServer big([&](const std::string&) {
    return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(large.size()) + "\r\n\r\n" +
           large;
  });
  r = c.perform({"GET", "http://127.0.0.1:" + std::to_string(big.port()) + "/", {}, "", {}});
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body.size(), large.size());
}

TEST(HttpClient, TimesOutAndReportsRefusedConnects) {
  RawServer silent([](const std::string&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    return std::string();
  });
  Client c;
  auto t0 = std::chrono::steady_clock::now();
  auto r = c.perform({"GET", "http://127.0.0.1:" + std::to_string(silent.port()) + "/", {}, "",
                      std::chrono::milliseconds(200)});
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("timed out"), std::string::npos) << r.error;
  EXPECT_LT(took, std::chrono::milliseconds(700));
  // A port nobody listens on (the silent server's, once it is gone).
  uint16_t port;
  { RawServer gone([](const std::string&) { return std::string(); }); port = gone.port(); }
  r = c.perform({"GET", "http://127.0.0.1:" + std::to_string(port) + "/", {}, "", {}});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("cannot connect"), std::string::npos) << r.error;
}

namespace {

bool maps_contain(std::string_view what) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find(what) != std::string::npos) return true;
  }
  return false;
}

bool have_tool(const char* name) {
  return std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0;
}

// An HTTPS server (Python's http.server behind its ssl module) with a fresh self-signed
// certificate for 127.0.0.1; prints "PORT PID" and exits by itself after 60 s.
constexpr const char* kTlsServer = R"PY(
import http.server, os, ssl, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        out = b"tls " + self.path.encode() + b" " + body
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.send_header("X-Tls", "yes")
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *args):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
s.socket = ctx.wrap_socket(s.socket, server_side=True)
threading.Timer(60, lambda: os._exit(0)).start()
print(s.server_address[1], os.getpid(), flush=True)
s.serve_forever()
)PY";

}  // namespace

// https:// goes through libcurl, loaded only then (plain HTTP never maps it), with certificate
// verification on; PINGMESH_CA_FILE names the CA.
TEST(HttpClient, HttpsLoadsLibcurlOnDemandAndVerifies) {
  if (!have_tool("openssl") || !have_tool("python3")) GTEST_SKIP() << "needs openssl and python3";
  EXPECT_FALSE(maps_contain("libcurl")) << "libcurl mapped before any https:// request";
  char dir_template[] = "/tmp/pm-https-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  std::string cert = dir + "/cert.pem", key = dir + "/key.pem", script = dir + "/srv.py";
  ASSERT_EQ(std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                         "-addext subjectAltName=IP:127.0.0.1 -keyout " +
                         key + " -out " + cert + " >/dev/null 2>&1")
                            .c_str()),
            0);
  std::ofstream(script) << kTlsServer;
  FILE* srv = popen(("python3 " + script + " " + cert + " " + key).c_str(), "r");
  ASSERT_NE(srv, nullptr);
  int port = 0, pid = 0;
  ASSERT_EQ(std::fscanf(srv, "%d %d", &port, &pid), 2);
  std::string url = "https://127.0.0.1:" + std::to_string(port) + "/r?x=1";

  Client c;
  unsetenv("PINGMESH_CA_FILE");
  auto untrusted = c.perform({"POST", url, {}, "body", {}});
  EXPECT_EQ(untrusted.status, 0);
  EXPECT_FALSE(untrusted.error.empty());
  EXPECT_TRUE(maps_contain("libcurl"));

  setenv("PINGMESH_CA_FILE", cert.c_str(), 1);
  for (int i = 0; i < 2; ++i) {
    auto r = c.perform({"POST", url, {{"content-type", "text/plain"}}, "body", {}});
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.body, "tls /r?x=1 body");
    EXPECT_EQ(r.header("x-tls"), "yes");
  }
  unsetenv("PINGMESH_CA_FILE");
  ::kill(pid, SIGTERM);
  pclose(srv);
  std::system(("rm -rf " + dir).c_str());
}
