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

// --- Response heads -------------------------------------------------------------------------

TEST(ResponseHead, StatusLineHeadersLengthAndConnection) {
  Response r = Response::text("hello");
  r.headers.emplace_back("etag", "\"v1\"");
  r.headers.emplace_back("Content-Length", "999");  // framing is the server's: dropped
  r.headers.emplace_back("connection", "upgrade");  // likewise
  r.head_lines = std::make_shared<const std::string>("Vary: Accept\r\n");
  std::string out = "junk:";  // appended to, not replaced
  append_response_head(out, r, "pingmesh", 11, true, 5);
  EXPECT_EQ(out,
            "junk:HTTP/1.1 200 OK\r\nServer: pingmesh\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "etag: \"v1\"\r\nVary: Accept\r\nContent-Length: 5\r\n\r\n");

  out.clear();
  append_response_head(out, r, "", 11, false, 0);
  EXPECT_NE(out.find("Connection: close\r\n\r\n"), std::string::npos);
  EXPECT_EQ(out.find("Server:"), std::string::npos);
  EXPECT_NE(out.find("Content-Length: 0\r\n"), std::string::npos);

  out.clear();
  append_response_head(out, r, "x", 10, true, 5);  // HTTP/1.0 kept alive says so
  EXPECT_TRUE(out.starts_with("HTTP/1.0 200 OK\r\n"));
  EXPECT_NE(out.find("Connection: keep-alive\r\n"), std::string::npos);
}

TEST(ResponseHead, NoContentLengthWithoutBody) {
  Response r;
  r.status = 304;
  r.content_type.clear();
  std::string out;
  append_response_head(out, r, "s", 11, true, 1234);
  EXPECT_EQ(out, "HTTP/1.1 304 Not Modified\r\nServer: s\r\n\r\n");
  EXPECT_FALSE(status_has_body(204));
  EXPECT_FALSE(status_has_body(101));
  EXPECT_TRUE(status_has_body(200));
  EXPECT_TRUE(status_has_body(404));
  r.status = 42;  // not a status: answered as 500
  out.clear();
  append_response_head(out, r, "s", 11, true, 0);
  EXPECT_TRUE(out.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
}

// --- The server over raw sockets ------------------------------------------------------------

namespace {

/// A blocking loopback TCP client that sends raw bytes and reads raw bytes.
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }
  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  /// Reads until the peer closes (or 5 s pass without data).
  std::string read_to_eof() {
    std::string out;
    char buf[65536];
    for (;;) {
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }
  /// Reads until `out` holds at least `bytes` bytes (or the peer closes, or 5 s pass).
  std::string read_at_least(std::size_t bytes) {
    std::string out;
    char buf[65536];
    while (out.size() < bytes) {
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
  /// True when the peer has closed: a read returns end of stream.
  bool closed_by_peer() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::size_t count_of(std::string_view hay, std::string_view needle) {
  std::size_t n = 0;
  for (auto p = hay.find(needle); p != std::string_view::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

/// Echoes method, path, query, the header count, x-a, and the body size of each request.
Response echo(const Request& q) {
  return Response::text(q.method + " " + q.path + "?" + q.query + " h=" +
                        std::to_string(q.headers.size()) + " a=" + std::string(q.header("x-a")) +
                        " b=" + std::to_string(q.body.size()) + ":" + q.body);
}

class RawHttp : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    ServerOptions opt;
    opt.port = 0;
    opt.threads = GetParam();
    opt.max_body_bytes = 1000;
    server_ = std::make_unique<Server>(opt, [](const Request& q) {
      if (q.path == "/big") {
        Response r = Response::text("");
        r.shared_body = big_body();
        return r;
      }
      if (q.path == "/throw") throw std::runtime_error("boom");
      return echo(q);
    });
    server_->start();
  }
  static std::shared_ptr<const std::string> big_body() {
    static auto body = [] {
      std::string s(4 << 20, '\0');
      for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>('a' + i % 26);
      return std::make_shared<const std::string>(std::move(s));
    }();
    return body;
  }
  std::unique_ptr<Server> server_;
};

}  // namespace

TEST_P(RawHttp, PipelinedRequestsAnsweredInOrderThenClose) {
  RawClient c(server_->port());
  ASSERT_TRUE(c.connected());
  // Three requests in one segment: the second a HEAD, the third asks to close.
  c.send(
      "GET /one?x=1 HTTP/1.1\r\nHost: h\r\nX-A: first\r\n\r\n"
      "HEAD /two HTTP/1.1\r\nHost: h\r\n\r\n"
      "POST /three HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
  std::string all = c.read_to_eof();
  auto one = all.find("GET /one?x=1 h=2 a=first b=0:");
  auto two = all.find("HTTP/1.1 200 OK", one);
  auto three = all.find("POST /three? h=3 a= b=3:abc");
  ASSERT_NE(one, std::string::npos) << all;
  ASSERT_NE(two, std::string::npos) << all;
  ASSERT_NE(three, std::string::npos) << all;
  EXPECT_LT(one, three);
  EXPECT_EQ(count_of(all, "HTTP/1.1 200 OK\r\n"), 3u);
  // The HEAD answer announces its body's length and sends no body: the next answer follows its
  // head directly.
  EXPECT_EQ(count_of(all, "HEAD /two"), 0u);
  const std::string head_len =
      "Content-Length: " + std::to_string(std::string("HEAD /two? h=1 a= b=0:").size());
  EXPECT_NE(all.find(head_len + "\r\n\r\nHTTP/1.1 200 OK"), std::string::npos) << all;
  EXPECT_NE(all.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(server_->stats().requests, 3u);
}

TEST_P(RawHttp, RequestSplitAcrossWritesAndChunkedBody) {
  RawClient c(server_->port());
  std::string req =
      "POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
  for (char ch : req) {  // one byte per write
    c.send(std::string_view(&ch, 1));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  std::string resp = c.read_at_least(1);
  for (int i = 0; i < 50 && resp.find("b=7:abcdefg") == std::string::npos; ++i) {
    resp += c.read_at_least(1);
  }
  EXPECT_NE(resp.find("POST /chunked? h=2 a= b=7:abcdefg"), std::string::npos) << resp;
  EXPECT_EQ(resp.find("Connection: close"), std::string::npos);
}

TEST_P(RawHttp, Http10ClosesUnlessKeepAlive) {
  {
    RawClient c(server_->port());
    c.send("GET /a HTTP/1.0\r\n\r\n");
    std::string resp = c.read_to_eof();  // returns because the server closes
    EXPECT_TRUE(resp.starts_with("HTTP/1.0 200 OK\r\n")) << resp;
    EXPECT_NE(resp.find("Connection: close\r\n"), std::string::npos);
  }
  RawClient c(server_->port());
  c.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  std::string resp = c.read_at_least(1);
  EXPECT_NE(resp.find("Connection: keep-alive\r\n"), std::string::npos) << resp;
  c.send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");  // still open
  EXPECT_NE(c.read_at_least(1).find("GET /b?"), std::string::npos);
}

TEST_P(RawHttp, MalformedRequestGets400AndClose) {
  RawClient c(server_->port());
  c.send("GET /ok HTTP/1.1\r\nHost: h\r\n\r\nBROKEN\r\n\r\n");
  std::string all = c.read_to_eof();
  EXPECT_NE(all.find("GET /ok?"), std::string::npos) << all;  // the good one first
  EXPECT_NE(all.find("HTTP/1.1 400 Bad Request\r\n"), std::string::npos) << all;
  EXPECT_NE(all.find("malformed HTTP request"), std::string::npos);
  EXPECT_EQ(server_->stats().bad_requests, 1u);
}

TEST_P(RawHttp, OversizedBodyGets413) {
  RawClient c(server_->port());
  c.send("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n");
  std::string all = c.read_to_eof();
  EXPECT_TRUE(all.starts_with("HTTP/1.1 413 Payload Too Large\r\n")) << all;
  EXPECT_NE(all.find("limit 1000 bytes"), std::string::npos);
}

TEST_P(RawHttp, ExpectContinueGets100BeforeTheBody) {
  RawClient c(server_->port());
  c.send("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
  std::string interim = c.read_at_least(25);
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  c.send("hi");
  EXPECT_NE(c.read_at_least(1).find("POST /p? h=3 a= b=2:hi"), std::string::npos);
}

TEST_P(RawHttp, LargeBodyThenPipelinedRequestOnSlowReader) {
  RawClient c(server_->port());
  // 4 MiB cannot go out in one write: the rest is written asynchronously, and the pipelined
  // request behind it is answered after it.
  c.send("GET /big HTTP/1.1\r\nHost: h\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the socket buffers fill
  const auto body = big_body();
  std::string all = c.read_at_least(body->size());
  for (int i = 0; i < 20 && all.find("GET /after?") == std::string::npos; ++i) {
    all += c.read_at_least(1);
  }
  auto head_end = all.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  EXPECT_NE(all.substr(0, head_end).find("Content-Length: 4194304"), std::string::npos);
  ASSERT_GE(all.size(), head_end + 4 + body->size());
  EXPECT_TRUE(all.compare(head_end + 4, body->size(), *body) == 0);
  EXPECT_NE(all.find("GET /after? h=1", head_end + 4 + body->size()), std::string::npos);
}

TEST_P(RawHttp, HandlerExceptionIs500AndConnectionStaysUsable) {
  RawClient c(server_->port());
  c.send("GET /throw HTTP/1.1\r\nHost: h\r\n\r\n");
  std::string r = c.read_at_least(1);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 500 Internal Server Error\r\n")) << r;
  // Absent headers of the earlier request do not leak into the next one on the same connection.
  c.send("GET /x HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-B: 2\r\n\r\n");
  EXPECT_NE(c.read_at_least(1).find("GET /x? h=3 a=1"), std::string::npos);
  c.send("GET /y HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_NE(c.read_at_least(1).find("GET /y? h=1 a= b=0"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Threads, RawHttp, ::testing::Values(1, 2));

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
