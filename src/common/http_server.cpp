// Boost.Beast lives only here: compile time of the rest of the tree stays low.
#include <array>
#include <atomic>
#include <charconv>
#include <unordered_set>
#include <utility>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <thread>

#include "common/http.hpp"

namespace pingmesh::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

std::string_view Request::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return {};
}

std::optional<std::string> Request::query_param(std::string_view key) const {
  std::string_view q = query;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    auto eq = part.find('=');
    std::string_view k = part.substr(0, eq);
    if (url_decode(k, true) == key) {
      return eq == std::string_view::npos ? std::string() : url_decode(part.substr(eq + 1), true);
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

Response Response::error(int status, std::string_view message, std::string_view field) {
  nlohmann::json j;
  j["error"] = std::string(message);
  if (!field.empty()) j["field"] = std::string(field);
  Response r;
  r.status = status;
  r.body = j.dump();
  return r;
}

Response Response::json(std::string body, int status) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::text(std::string body, int status, std::string content_type) {
  Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

namespace {

/// Percent-decodes into `out`, reusing its capacity.
void url_decode_into(std::string_view in, bool plus_as_space, std::string& out) {
  out.clear();
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%' && i + 2 < in.size()) {
      int h = hex(in[i + 1]), l = hex(in[i + 2]);
      if (h >= 0 && l >= 0) {
        out.push_back(static_cast<char>(h * 16 + l));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_as_space && c == '+' ? ' ' : c);
  }
}

}  // namespace

std::string url_decode(std::string_view in, bool plus_as_space) {
  std::string out;
  out.reserve(in.size());
  url_decode_into(in, plus_as_space, out);
  return out;
}

std::string url_encode(std::string_view in) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

bool status_has_body(int status) { return status >= 200 && status != 204 && status != 304; }

namespace {

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

bool is_framing_header(std::string_view name) {
  return iequals_ascii(name, "content-length") || iequals_ascii(name, "transfer-encoding") ||
         iequals_ascii(name, "connection");
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

void append_number(std::string& out, uint64_t n) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, end);
}

}  // namespace

void append_response_head(std::string& out, const Response& response,
                          std::string_view server_header, unsigned version, bool keep_alive,
                          std::size_t body_bytes) {
  // A status outside 100..999 would not be three digits on the wire.
  const int status = response.status >= 100 && response.status <= 999 ? response.status : 500;
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  append_number(out, static_cast<uint64_t>(status));
  out.push_back(' ');
  auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  out.append(reason.data(), reason.size());
  out.append("\r\n");
  if (!server_header.empty()) append_header(out, "Server", server_header);
  if (!response.content_type.empty()) append_header(out, "Content-Type", response.content_type);
  for (const auto& [name, value] : response.headers) {
    if (!is_framing_header(name)) append_header(out, name, value);
  }
  if (response.head_lines) out.append(*response.head_lines);
  if (status_has_body(status)) {
    out.append("Content-Length: ");
    append_number(out, body_bytes);
    out.append("\r\n");
  }
  if (!keep_alive) {
    out.append("Connection: close\r\n");
  } else if (version == 10) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
}

class SessionBase;

struct Server::Impl {
  Impl(ServerOptions o, Handler h)
      : options(std::move(o)), handler(std::move(h)), ioc(std::max(1, options.threads)) {}

  // Counters come first: members are destroyed in reverse order, and sessions still queued in
  // the io_context decrement `open` when the io_context destroys them.
  std::atomic<bool> stopped{false};
  std::atomic<uint64_t> requests{0}, accepted{0}, rejected{0}, bad{0}, open{0};
  // Live sessions, for the idle sweep. Registered once per connection, not per request.
  std::mutex sessions_mu;
  std::unordered_set<SessionBase*> sessions;
  uint16_t bound_port = 0;
  ServerOptions options;
  Handler handler;
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::optional<asio::steady_timer> sweep_timer;

  void do_accept();
  template <class Executor>
  void accept_on(Executor executor);
  void sweep();
};

namespace {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Input read per system call; a whole request head of a typical client fits.
constexpr std::size_t kReadBytes = 16 * 1024;
/// Per-connection buffers larger than this are released after their request, so a connection
/// that once carried a large body does not keep its memory.
constexpr std::size_t kRetainBytes = 64 * 1024;
constexpr std::uint32_t kHeaderLimitBytes = 64 * 1024;

/// Beast request parser that fills a Request in place. Beast's own request_parser allocates
/// every header field of every request; this one reuses the strings of the connection's Request.
class RequestParser final : public bhttp::basic_parser<true> {
 public:
  explicit RequestParser(Request& request) : req_(request) {}

  bhttp::verb verb() const { return verb_; }
  unsigned version() const { return version_; }
  bool expects_continue() const { return expects_continue_; }

 private:
  void on_request_impl(bhttp::verb method, beast::string_view method_str,
                       beast::string_view target, int version, beast::error_code&) override {
    verb_ = method;
    version_ = static_cast<unsigned>(version);
    req_.method.assign(method_str.data(), method_str.size());
    std::string_view t(target.data(), target.size());
    auto qpos = t.find('?');
    url_decode_into(t.substr(0, qpos), false, req_.path);
    if (qpos == std::string_view::npos) {
      req_.query.clear();
    } else {
      req_.query.assign(t.substr(qpos + 1));
    }
    req_.body.clear();
    req_.params.clear();
  }
  void on_response_impl(int, beast::string_view, int, beast::error_code& ec) override {
    ec = bhttp::error::bad_version;  // never called for a request parser
  }
  void on_field_impl(bhttp::field field, beast::string_view name, beast::string_view value,
                     beast::error_code&) override {
    if (fields_ == req_.headers.size()) req_.headers.emplace_back();
    auto& [k, v] = req_.headers[fields_++];
    k.resize(name.size());
    for (std::size_t i = 0; i < name.size(); ++i) k[i] = ascii_lower(name[i]);
    v.assign(value.data(), value.size());
    if (field == bhttp::field::expect && iequals_ascii(v, "100-continue")) {
      expects_continue_ = true;
    }
  }
  void on_header_impl(beast::error_code&) override { req_.headers.resize(fields_); }
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                         beast::error_code&) override {
    // The base class has already refused lengths above the body limit.
    if (content_length) req_.body.reserve(static_cast<std::size_t>(*content_length));
  }
  std::size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    req_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                 beast::error_code&) override {
    req_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  Request& req_;
  std::size_t fields_ = 0;
  bhttp::verb verb_ = bhttp::verb::unknown;
  unsigned version_ = 11;
  bool expects_continue_ = false;
};

}  // namespace

/// What the server's idle sweep needs of a connection, whatever its executor type. Idle
/// connections are closed by the server's periodic sweep rather than by a timer per operation:
/// re-arming a timer on every read doubled the cost of a small request.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  explicit SessionBase(Server::Impl* srv) : srv_(srv) {
    std::lock_guard lock(srv_->sessions_mu);
    srv_->sessions.insert(this);
  }
  virtual ~SessionBase() {
    {
      std::lock_guard lock(srv_->sessions_mu);
      srv_->sessions.erase(this);
    }
    srv_->open.fetch_sub(1, std::memory_order_relaxed);
  }
  SessionBase(const SessionBase&) = delete;
  SessionBase& operator=(const SessionBase&) = delete;

  /// Milliseconds (steady clock) of the last read or write start.
  int64_t last_activity_ms() const { return last_activity_ms_.load(std::memory_order_relaxed); }
  /// Closes the connection from any thread (runs on the session's executor).
  virtual void close_async() = 0;

 protected:
  void touch() { last_activity_ms_.store(steady_ms(), std::memory_order_relaxed); }

  Server::Impl* srv_;
  // Now, not 0: the session is in `sessions` from its constructor on, and an idle sweep on
  // another I/O thread must not take a connection that has not started its first read yet for
  // one idle since the clock's epoch (it was closed without an answer).
  std::atomic<int64_t> last_activity_ms_{steady_ms()};
};

namespace {

/// One connection. `Executor` is the io_context's own executor with one I/O thread (no strand,
/// no type-erased executor on the hot path) and a strand over it with several.
///
/// The loop: read into `in_`, let the parser consume as many complete requests as `in_` holds
/// (pipelining), answer each in order. An answer is its head, written into the reused `out_`,
/// and its body, sent together by one non-blocking writev; only when the socket cannot take it
/// all does the rest go out asynchronously, and parsing resumes when it has.
template <class Executor>
class Session final : public SessionBase {
 public:
  using Socket = asio::basic_stream_socket<tcp, Executor>;

  Session(Socket socket, Server::Impl* srv) : SessionBase(srv), socket_(std::move(socket)) {}

  void close_async() override {
    asio::post(socket_.get_executor(), [self = self_ptr()] { self->close(); });
  }

  void run() {
    beast::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (!ec) req_.remote_addr = ep.address().to_string();
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);
    read();
  }

 private:
  std::shared_ptr<Session> self_ptr() {
    return std::static_pointer_cast<Session>(shared_from_this());
  }

  void read() {
    touch();
    socket_.async_read_some(in_.prepare(kReadBytes),
                            [self = self_ptr()](beast::error_code ec, std::size_t n) {
                              self->on_read(ec, n);
                            });
  }

  void on_read(beast::error_code ec, std::size_t n) {
    // End of stream, reset or cancellation: there is no request left to answer.
    if (ec) return close();
    in_.commit(n);
    process();
  }

  /// Parses and answers the requests buffered in `in_`; reads more when one is incomplete.
  void process() {
    for (;;) {
      if (!parser_) {
        parser_.emplace(req_);
        parser_->eager(true);
        parser_->header_limit(kHeaderLimitBytes);
        parser_->body_limit(srv_->options.max_body_bytes);
      }
      beast::error_code ec;
      while (!parser_->is_done() && in_.size() > 0) {
        std::size_t used = parser_->put(in_.data(), ec);
        in_.consume(used);
        if (ec || used == 0) break;
      }
      if (ec == bhttp::error::need_more) ec = {};
      if (ec) return fail(ec);
      if (!parser_->is_done()) {
        if (parser_->is_header_done() && parser_->expects_continue() && !continue_sent_) {
          continue_sent_ = true;
          if (!send_continue()) return close();
        }
        if (in_.size() == 0 && in_.capacity() > kRetainBytes) in_.shrink_to_fit();
        return read();
      }
      if (!respond()) return;
    }
  }

  /// The interim "100 Continue" a client waiting to send its body asked for.
  bool send_continue() {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    beast::error_code ec;
    std::size_t n = socket_.write_some(asio::buffer(kContinue.data(), kContinue.size()), ec);
    // Nothing else is in flight, so the socket takes these few bytes whole or not at all; a
    // client that gets none sends its body after its own timeout.
    return n == kContinue.size() || (n == 0 && ec == asio::error::would_block);
  }

  /// Answers the request the parser has just completed. Returns true when the next one may be
  /// parsed at once, false when the answer went out asynchronously or the connection closed.
  bool respond() {
    const bool keep_alive = parser_->keep_alive();
    const unsigned version = parser_->version();
    const bool head_only = parser_->verb() == bhttp::verb::head;
    parser_.reset();
    continue_sent_ = false;
    srv_->requests.fetch_add(1, std::memory_order_relaxed);
    Response resp = call_handler();
    if (req_.body.capacity() > kRetainBytes) std::string().swap(req_.body);
    return send(resp, keep_alive, version, head_only);
  }

  Response call_handler() {
    try {
      return srv_->handler(req_);
    } catch (const std::exception& e) {
      spdlog::error("http: handler for {} {} threw: {}", req_.method, req_.path, e.what());
      return Response::error(500, std::string("internal error: ") + e.what());
    }
  }

  void fail(beast::error_code ec) {
    parser_.reset();
    srv_->bad.fetch_add(1, std::memory_order_relaxed);
    const int status = ec == bhttp::error::body_limit ? 413 : 400;
    Response r = Response::error(
        status, status == 413 ? "request body too large (limit " +
                                    std::to_string(srv_->options.max_body_bytes) + " bytes)"
                              : "malformed HTTP request: " + ec.message());
    send(r, false, 11, false);
  }

  bool send(Response& resp, bool keep_alive, unsigned version, bool head_only) {
    // The body stays owned here until it is written.
    std::string_view body;
    if (resp.shared_body) {
      body_ref_ = std::move(resp.shared_body);
      body = *body_ref_;
    } else {
      body_str_ = std::move(resp.body);
      body = body_str_;
    }
    if (!status_has_body(resp.status)) body = {};
    out_.clear();
    append_response_head(out_, resp, srv_->options.server_header, version, keep_alive,
                         body.size());
    if (head_only) body = {};
    keep_alive_ = keep_alive;
    touch();
    std::array<asio::const_buffer, 2> bufs{asio::buffer(out_.data(), out_.size()),
                                           asio::buffer(body.data(), body.size())};
    beast::error_code ec;
    std::size_t n = socket_.write_some(bufs, ec);
    if (ec && ec != asio::error::would_block) {
      close();
      return false;
    }
    if (n == out_.size() + body.size()) return written();
    std::array<asio::const_buffer, 2> rest;
    if (n < out_.size()) {
      rest = {asio::buffer(out_.data() + n, out_.size() - n), bufs[1]};
    } else {
      std::size_t off = n - out_.size();
      rest = {asio::buffer(body.data() + off, body.size() - off), asio::const_buffer()};
    }
    asio::async_write(socket_, rest, [self = self_ptr()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      if (self->written()) self->process();
    });
    return false;
  }

  /// After an answer is out: releases its body; closes unless the connection is kept alive.
  bool written() {
    body_ref_.reset();
    if (body_str_.capacity() > kRetainBytes) std::string().swap(body_str_);
    if (!keep_alive_) {
      close();
      return false;
    }
    return true;
  }

  void close() {
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    socket_.close(ec);
  }

  Socket socket_;
  beast::flat_buffer in_;
  Request req_;  // reused: its strings keep their capacity from one request to the next
  std::optional<RequestParser> parser_;
  std::string out_;  // the head of the answer being written
  std::string body_str_;
  std::shared_ptr<const std::string> body_ref_;
  bool keep_alive_ = true;
  bool continue_sent_ = false;
};

}  // namespace

void Server::Impl::sweep() {
  const int64_t limit_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(options.idle_timeout).count();
  const int64_t now = steady_ms();
  {
    std::lock_guard lock(sessions_mu);
    for (SessionBase* s : sessions) {
      if (now - s->last_activity_ms() <= limit_ms) continue;
      // A session whose last reference is going away is skipped: it is closing already.
      if (auto alive = s->weak_from_this().lock()) alive->close_async();
    }
  }
  sweep_timer->expires_after(std::min<std::chrono::milliseconds>(
      std::chrono::milliseconds(1000), std::chrono::milliseconds(std::max<int64_t>(limit_ms / 4, 50))));
  sweep_timer->async_wait([this](beast::error_code ec) {
    if (!ec && !stopped.load()) sweep();
  });
}

template <class Executor>
void Server::Impl::accept_on(Executor executor) {
  acceptor.async_accept(executor, [this](beast::error_code ec,
                                         asio::basic_stream_socket<tcp, Executor> socket) {
    if (stopped.load()) return;
    if (!ec) {
      if (open.load(std::memory_order_relaxed) >= options.max_connections) {
        rejected.fetch_add(1, std::memory_order_relaxed);
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        accepted.fetch_add(1, std::memory_order_relaxed);
        open.fetch_add(1, std::memory_order_relaxed);
        std::make_shared<Session<Executor>>(std::move(socket), this)->run();
      }
    } else if (ec == asio::error::operation_aborted) {
      return;
    }
    do_accept();
  });
}

void Server::Impl::do_accept() {
  // One thread: the io_context's executor itself. Several: a strand per connection, so a
  // connection's handlers never run concurrently (the sweep closes from another thread).
  if (options.threads <= 1) {
    accept_on(ioc.get_executor());
  } else {
    accept_on(asio::make_strand(ioc.get_executor()));
  }
}

Server::Server(ServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() { stop(); }

void Server::start() {
  auto& I = *impl_;
  beast::error_code ec;
  auto addr = asio::ip::make_address(I.options.address, ec);
  if (ec) {
    throw std::system_error(ec, "invalid listen address '" + I.options.address + "'");
  }
  tcp::endpoint ep(addr, I.options.port);
  I.acceptor.open(ep.protocol());
  I.acceptor.set_option(asio::socket_base::reuse_address(true));
  if (addr.is_v6()) I.acceptor.set_option(asio::ip::v6_only(false), ec);
  I.acceptor.bind(ep, ec);
  if (ec) {
    throw std::system_error(ec, "cannot listen on " + I.options.address + ":" +
                                    std::to_string(I.options.port));
  }
  I.acceptor.listen(asio::socket_base::max_listen_connections);
  I.bound_port = I.acceptor.local_endpoint().port();
  I.work.emplace(I.ioc.get_executor());
  I.sweep_timer.emplace(I.ioc);
  I.sweep();
  I.do_accept();
  int n = std::max(1, I.options.threads);
  for (int i = 0; i < n; ++i) I.threads.emplace_back([this] { impl_->ioc.run(); });
}

void Server::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  auto& I = *impl_;
  asio::post(I.ioc, [&I] {
    beast::error_code ec;
    I.acceptor.close(ec);
  });
  I.work.reset();
  I.ioc.stop();
  for (auto& t : I.threads) {
    if (t.joinable()) t.join();
  }
}

uint16_t Server::port() const { return impl_->bound_port; }

ServerStats Server::stats() const {
  ServerStats s;
  s.requests = impl_->requests.load();
  s.connections_accepted = impl_->accepted.load();
  s.connections_rejected = impl_->rejected.load();
  s.bad_requests = impl_->bad.load();
  s.open_connections = impl_->open.load();
  return s;
}

}  // namespace pingmesh::http
