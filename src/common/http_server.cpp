// Boost.Beast lives only here: compile time of the rest of the tree stays low.
#include <atomic>
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

std::string url_decode(std::string_view in, bool plus_as_space) {
  std::string out;
  out.reserve(in.size());
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

namespace {

/// Body type that sends a shared immutable string without copying it.
struct SharedStringBody {
  using value_type = std::shared_ptr<const std::string>;
  static std::uint64_t size(const value_type& v) { return v ? v->size() : 0; }
  class writer {
   public:
    using const_buffers_type = asio::const_buffer;
    template <bool isRequest, class Fields>
    writer(const bhttp::header<isRequest, Fields>&, const value_type& b) : body_(b) {}
    void init(beast::error_code& ec) { ec = {}; }
    boost::optional<std::pair<const_buffers_type, bool>> get(beast::error_code& ec) {
      ec = {};
      if (!body_ || body_->empty()) return boost::none;
      return {{asio::const_buffer(body_->data(), body_->size()), false}};
    }

   private:
    const value_type& body_;
  };
};

}  // namespace

struct Server::Impl {
  // Counters come first: members are destroyed in reverse order, and sessions still queued in
  // the io_context decrement `open` when the io_context destroys them.
  std::atomic<bool> stopped{false};
  std::atomic<uint64_t> requests{0}, accepted{0}, rejected{0}, bad{0}, open{0};
  // Live sessions, for the idle sweep. Registered once per connection, not per request.
  std::mutex sessions_mu;
  std::unordered_set<class Session*> sessions;
  uint16_t bound_port = 0;
  ServerOptions options;
  Handler handler;
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::optional<asio::steady_timer> sweep_timer;

  void do_accept();
  void sweep();
};

namespace {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

/// One connection. Idle connections are closed by the server's periodic sweep rather than by a
/// timer per operation: re-arming a timer on every read doubled the cost of a small request.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server::Impl* srv) : socket_(std::move(socket)), srv_(srv) {
    std::lock_guard lock(srv_->sessions_mu);
    srv_->sessions.insert(this);
  }
  ~Session() {
    {
      std::lock_guard lock(srv_->sessions_mu);
      srv_->sessions.erase(this);
    }
    srv_->open.fetch_sub(1, std::memory_order_relaxed);
  }

  /// Milliseconds (steady clock) of the last read or write start.
  int64_t last_activity_ms() const { return last_activity_ms_.load(std::memory_order_relaxed); }
  /// Closes the connection from any thread (runs on the session's strand).
  void close_async() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

  void run() {
    beast::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string();
    socket_.set_option(tcp::no_delay(true), ec);
    read();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(srv_->options.max_body_bytes);
    parser_->header_limit(64 * 1024);
    last_activity_ms_.store(steady_ms(), std::memory_order_relaxed);
    bhttp::async_read(socket_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->on_read(ec);
                      });
  }

  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return close();
    }
    if (ec) {
      srv_->bad.fetch_add(1, std::memory_order_relaxed);
      int status = ec == bhttp::error::body_limit ? 413 : 400;
      Response r = Response::error(
          status, status == 413 ? "request body too large (limit " +
                                      std::to_string(srv_->options.max_body_bytes) + " bytes)"
                                : "malformed HTTP request: " + ec.message());
      return write(std::move(r), false, 11);
    }
    auto& msg = parser_->get();
    Request req;
    req.method = std::string(msg.method_string());
    auto target_sv = msg.target();
    std::string_view target(target_sv.data(), target_sv.size());
    auto qpos = target.find('?');
    req.path = url_decode(target.substr(0, qpos));
    if (qpos != std::string_view::npos) req.query = std::string(target.substr(qpos + 1));
    req.headers.reserve(8);
    for (const auto& f : msg) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    req.body = std::move(msg.body());
    req.remote_addr = remote_;
    bool keep_alive = msg.keep_alive();
    unsigned version = msg.version();
    srv_->requests.fetch_add(1, std::memory_order_relaxed);
    Response resp;
    try {
      resp = srv_->handler(req);
    } catch (const std::exception& e) {
      spdlog::error("http: handler for {} {} threw: {}", req.method, req.path, e.what());
      resp = Response::error(500, std::string("internal error: ") + e.what());
    }
    head_only_ = req.method == "HEAD";
    write(std::move(resp), keep_alive, version);
  }

  void write(Response resp, bool keep_alive, unsigned version) {
    auto res = std::make_shared<bhttp::response<SharedStringBody>>();
    res->version(version);
    res->result(static_cast<bhttp::status>(resp.status));
    res->set(bhttp::field::server, srv_->options.server_header);
    if (!resp.content_type.empty()) res->set(bhttp::field::content_type, resp.content_type);
    for (auto& [k, v] : resp.headers) res->set(k, v);
    if (resp.shared_body) {
      res->body() = std::move(resp.shared_body);
    } else {
      res->body() = std::make_shared<const std::string>(std::move(resp.body));
    }
    res->keep_alive(keep_alive);
    res->prepare_payload();
    if (head_only_) {
      auto len = res->body() ? res->body()->size() : 0;
      res->body().reset();
      res->content_length(len);
    }
    head_only_ = false;
    last_activity_ms_.store(steady_ms(), std::memory_order_relaxed);
    bhttp::async_write(socket_, *res,
                       [self = shared_from_this(), res, keep_alive](beast::error_code ec,
                                                                    std::size_t) {
                         if (ec || !keep_alive) return self->close();
                         self->read();
                       });
  }

  void close() {
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    socket_.close(ec);
  }

  // A plain socket, not beast::tcp_stream: its per-operation timeout machinery cost more than
  // the rest of a small request; idle connections are closed by the server's sweep instead.
  tcp::socket socket_;
  beast::flat_buffer buffer_{8192};
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Server::Impl* srv_;
  std::string remote_;
  bool head_only_ = false;
  std::atomic<int64_t> last_activity_ms_{0};
};

void Server::Impl::sweep() {
  const int64_t limit_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(options.idle_timeout).count();
  const int64_t now = steady_ms();
  {
    std::lock_guard lock(sessions_mu);
    for (Session* s : sessions) {
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


void Server::Impl::do_accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (stopped.load()) return;
    if (!ec) {
      if (open.load(std::memory_order_relaxed) >= options.max_connections) {
        rejected.fetch_add(1, std::memory_order_relaxed);
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        accepted.fetch_add(1, std::memory_order_relaxed);
        open.fetch_add(1, std::memory_order_relaxed);
        std::make_shared<Session>(std::move(socket), this)->run();
      }
    } else if (ec == asio::error::operation_aborted) {
      return;
    }
    do_accept();
  });
}

Server::Server(ServerOptions options, Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

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
