#pragma once
/// HTTP/1.1 server and client used by every role (controller API, collector ingest, agent
/// responders and /metrics). Boost.Beast stays inside http_server.cpp and http_client.cpp, and
/// libcurl (loaded at run time, for https:// only) inside http_client.cpp, so other translation
/// units compile fast and see only these value types.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pingmesh::http {

/// Header list; names are stored lower-case.
using Headers = std::vector<std::pair<std::string, std::string>>;

/// A parsed request as handlers see it.
struct Request {
  std::string method;  ///< "GET", "POST", ...
  std::string path;    ///< percent-decoded path, without the query string
  std::string query;   ///< raw query string (after '?'), not decoded
  Headers headers;     ///< lower-case names
  std::string body;
  std::string remote_addr;  ///< peer IP address as text

  /// Value of the first header with this (lower-case) name, or empty.
  std::string_view header(std::string_view lower_name) const;
  /// Percent-decoded value of a query parameter, or nullopt when absent.
  std::optional<std::string> query_param(std::string_view key) const;
  /// Path parameters captured by the router ({name} segments), in order. Mutable: the router
  /// fills them while dispatching a request handlers see as const.
  mutable std::vector<std::string> params;
};

/// A response. `shared_body` (when set) is sent instead of `body` without copying it per request,
/// so cached documents (pinglists, the UI's files) are served from memory.
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;
  std::string body;
  std::shared_ptr<const std::string> shared_body;
  /// Pre-rendered header lines ("Name: value\r\n" each), written as they are after
  /// `content_type` and `headers`; lets a cached answer skip per-request header formatting. The
  /// server adds the status line, Server, Content-Length and Connection itself.
  std::shared_ptr<const std::string> head_lines = nullptr;

  /// A JSON error body {"error": message, "field": field} with the given status.
  static Response error(int status, std::string_view message, std::string_view field = {});
  /// A JSON body with status 200 (or the given status).
  static Response json(std::string body, int status = 200);
  static Response text(std::string body, int status = 200,
                       std::string content_type = "text/plain; charset=utf-8");
};

using Handler = std::function<Response(const Request&)>;

/// True when a response with this status carries a body (not 1xx, 204 or 304; RFC 9110 6.4.1).
bool status_has_body(int status);

/// Appends the status line and header block of `response` to `out`, ending with the empty line:
/// "HTTP/1.<version % 10> <status> <reason>", Server (when `server_header` is not empty), the
/// content type, `headers`, `head_lines`, Content-Length = `body_bytes` (left out when the status
/// has no body) and "Connection: close" when not `keep_alive` ("Connection: keep-alive" for a
/// kept-alive HTTP/1.0 exchange). Framing headers (Content-Length, Transfer-Encoding, Connection)
/// in `response.headers` are dropped: the server frames the message itself. Allocates only when
/// `out` must grow.
void append_response_head(std::string& out, const Response& response,
                          std::string_view server_header, unsigned version, bool keep_alive,
                          std::size_t body_bytes);

/// Options of an HTTP server.
struct ServerOptions {
  std::string address = "127.0.0.1";  ///< IPv4 or IPv6 literal to bind
  uint16_t port = 9000;               ///< 0 = ephemeral (see Server::port())
  int threads = 1;                    ///< I/O threads
  std::size_t max_body_bytes = 16 << 20;  ///< larger bodies get 413
  std::chrono::seconds idle_timeout{60};  ///< keep-alive connections idle longer are closed
  std::size_t max_connections = 10000;    ///< further connections are closed at once (counted)
  std::string server_header = "pingmesh";
};

/// Counters of a server, readable at any time.
struct ServerStats {
  uint64_t requests = 0;
  uint64_t connections_accepted = 0;
  uint64_t connections_rejected = 0;
  uint64_t bad_requests = 0;
  uint64_t open_connections = 0;
};

/// An asynchronous HTTP/1.1 server with keep-alive and pipelining (answers in request order).
/// Handlers run on the I/O threads and must be thread-safe when threads > 1. With one thread, a
/// connection's work runs on the io_context directly; with more, on a strand per connection.
/// Requests are parsed by Boost.Beast into a Request reused per connection; response heads are
/// written by append_response_head() into a reused buffer and sent with the body in one writev.
/// Throws std::system_error from start() when it cannot bind.
class Server {
 public:
  Server(ServerOptions options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds and starts the I/O threads; returns once listening.
  void start();
  /// Stops accepting, closes connections and joins the threads. Idempotent.
  void stop();
  /// The bound port (useful with port 0).
  uint16_t port() const;
  ServerStats stats() const;

 /// Implementation detail (Boost.Beast), public only so the .cpp's session type can name it.
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// A client response.
struct ClientResponse {
  int status = 0;  ///< 0 when no response was received
  Headers headers;
  std::string body;
  std::string error;  ///< transport error text when status == 0

  std::string_view header(std::string_view lower_name) const;
};

/// Options of one client request.
struct ClientRequest {
  std::string method = "GET";
  std::string url;
  Headers headers;
  std::string body;
  std::chrono::milliseconds timeout{10000};
};

/// A blocking HTTP client that keeps connections alive between calls. http:// URLs are served by
/// a built-in HTTP/1.1 client (Boost.Beast); https:// URLs by libcurl, loaded with dlopen() on the
/// first https:// request (an error response names the cause when it is not installed). The
/// environment variable PINGMESH_CA_FILE names a CA bundle for https:// peers (default: the
/// system's). One instance per thread; not thread-safe.
class Client {
 public:
  Client();
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  /// Performs the request; transport failures are reported in ClientResponse::error, not thrown.
  ClientResponse perform(const ClientRequest& request);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// The parts of an http:// or https:// URL the client uses.
struct Url {
  std::string scheme;  ///< "http" or "https" (lower case)
  std::string host;    ///< name or IP literal, without the brackets of an IPv6 literal
  uint16_t port = 0;   ///< explicit, else 80 / 443
  std::string target;  ///< path and query, "/" when absent; the fragment is dropped
};

/// Splits an absolute http(s) URL; nullopt for other schemes, user info, a bad port or no host.
std::optional<Url> parse_url(std::string_view url);

/// Percent-decodes a URL component ('+' is left as is unless plus_as_space).
std::string url_decode(std::string_view in, bool plus_as_space = false);
/// Percent-encodes a URL component.
std::string url_encode(std::string_view in);

}  // namespace pingmesh::http
