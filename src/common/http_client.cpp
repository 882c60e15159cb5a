// Plain http:// requests go through Boost.Beast over Asio (already linked for the server);
// https:// requests go through libcurl, loaded with dlopen() on the first https:// request. The
// binary does not link libcurl: its dependency chain (OpenSSL, GnuTLS, Kerberos, LDAP, SSH, IDN,
// p11-kit, ...) is ~7.5 MB of resident pages in every process that loads it, and an agent that
// talks plain HTTP to its controller never needs it (docs/AGENT.md, "Memory").
#include <curl/curl.h>
#include <dlfcn.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <optional>

#include "common/http.hpp"

namespace pingmesh::http {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// ---- libcurl, loaded on demand ----

/// The libcurl entry points the https:// path uses, resolved from libcurl.so.4 at run time.
struct CurlApi {
  CURLcode (*global_init)(long) = nullptr;
  CURL* (*easy_init)() = nullptr;
  void (*easy_cleanup)(CURL*) = nullptr;
  void (*easy_reset)(CURL*) = nullptr;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
  CURLcode (*easy_perform)(CURL*) = nullptr;
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
  const char* (*easy_strerror)(CURLcode) = nullptr;
  curl_slist* (*slist_append)(curl_slist*, const char*) = nullptr;
  void (*slist_free_all)(curl_slist*) = nullptr;
  std::string error;  ///< why it could not be loaded; empty when loaded
};

template <typename F>
bool resolve(void* lib, const char* name, F* fn) {
  *fn = reinterpret_cast<F>(dlsym(lib, name));
  return *fn != nullptr;
}

const CurlApi& curl_api() {
  static const CurlApi api = [] {
    CurlApi a;
    void* lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* why = dlerror();
      a.error = std::string("https:// needs libcurl, which could not be loaded: ") +
                (why != nullptr ? why : "libcurl.so.4 not found");
      return a;
    }
    bool ok = resolve(lib, "curl_global_init", &a.global_init) &&
              resolve(lib, "curl_easy_init", &a.easy_init) &&
              resolve(lib, "curl_easy_cleanup", &a.easy_cleanup) &&
              resolve(lib, "curl_easy_reset", &a.easy_reset) &&
              resolve(lib, "curl_easy_setopt", &a.easy_setopt) &&
              resolve(lib, "curl_easy_perform", &a.easy_perform) &&
              resolve(lib, "curl_easy_getinfo", &a.easy_getinfo) &&
              resolve(lib, "curl_easy_strerror", &a.easy_strerror) &&
              resolve(lib, "curl_slist_append", &a.slist_append) &&
              resolve(lib, "curl_slist_free_all", &a.slist_free_all);
    if (!ok) {
      a.error = "https:// needs libcurl: libcurl.so.4 lacks a symbol";
      return a;
    }
    a.global_init(CURL_GLOBAL_DEFAULT);
    return a;
  }();
  return api;
}

size_t write_body(char* ptr, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(ptr, size * n);
  return size * n;
}

size_t write_header(char* ptr, size_t size, size_t n, void* user) {
  auto* headers = static_cast<Headers*>(user);
  std::string_view line(ptr, size * n);
  if (line.starts_with("HTTP/")) {
    headers->clear();  // a new response (after 100-continue or a redirect)
    return size * n;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name = lower(line.substr(0, colon));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
    value.remove_suffix(1);
  headers->emplace_back(std::move(name), std::string(value));
  return size * n;
}

}  // namespace

std::string_view ClientResponse::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return {};
}

std::optional<Url> parse_url(std::string_view url) {
  Url u;
  auto sep = url.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  u.scheme = lower(url.substr(0, sep));
  if (u.scheme == "http") {
    u.port = 80;
  } else if (u.scheme == "https") {
    u.port = 443;
  } else {
    return std::nullopt;
  }
  std::string_view rest = url.substr(sep + 3);
  if (auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  auto path_at = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_at);
  std::string_view target = path_at == std::string_view::npos ? "" : rest.substr(path_at);
  if (authority.find('@') != std::string_view::npos) return std::nullopt;  // no user info
  std::string_view port_text;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (u.host.empty()) return std::nullopt;
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return std::nullopt;
    }
    u.port = static_cast<uint16_t>(port);
  }
  u.target = target.empty() ? "/" : std::string(target);
  if (u.target.front() == '?') u.target.insert(0, "/");
  return u;
}

struct Client::Impl {
  asio::io_context ioc{1};
  std::optional<beast::tcp_stream> stream;
  std::string stream_key;  ///< host:port the open connection goes to
  CURL* curl = nullptr;

  ~Impl() {
    if (curl != nullptr) curl_api().easy_cleanup(curl);
  }

  void close() {
    if (stream) {
      beast::error_code ec;
      stream->socket().shutdown(tcp::socket::shutdown_both, ec);
      stream->socket().close(ec);
      stream.reset();
    }
    stream_key.clear();
  }

  /// Runs the queued asynchronous operation to completion (the stream's expiry bounds it).
  void run() {
    ioc.restart();
    ioc.run();
  }

  std::string connect(const Url& u, std::chrono::steady_clock::time_point deadline) {
    close();
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto endpoints = resolver.resolve(u.host, std::to_string(u.port), ec);
    if (ec) return "cannot resolve " + u.host + ": " + ec.message();
    stream.emplace(ioc);
    stream->expires_at(std::min(deadline, std::chrono::steady_clock::now() + kConnectTimeout));
    stream->async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    run();
    if (ec) {
      close();
      return "cannot connect to " + u.host + " port " + std::to_string(u.port) + ": " +
             (ec == beast::error::timeout ? std::string("timed out") : ec.message());
    }
    stream->socket().set_option(tcp::no_delay(true), ec);
    stream_key = u.host + ":" + std::to_string(u.port);
    return {};
  }

  ClientResponse plain(const ClientRequest& request, const Url& u) {
    ClientResponse out;
    // A timeout of 0 means none (as CURLOPT_TIMEOUT_MS 0); connecting is still bounded.
    bool bounded = request.timeout.count() > 0;
    auto deadline = bounded ? std::chrono::steady_clock::now() + request.timeout
                            : std::chrono::steady_clock::time_point::max();
    std::string key = u.host + ":" + std::to_string(u.port);
    bhttp::request<bhttp::string_body> req;
    req.version(11);
    bhttp::verb verb = bhttp::string_to_verb(request.method);
    if (verb == bhttp::verb::unknown) {
      req.method_string(request.method);
    } else {
      req.method(verb);
    }
    req.target(u.target);
    bool default_port = u.port == 80;
    bool v6 = u.host.find(':') != std::string::npos;
    std::string host = v6 ? "[" + u.host + "]" : u.host;
    req.set(bhttp::field::host, default_port ? host : host + ":" + std::to_string(u.port));
    req.set(bhttp::field::accept, "*/*");
    for (const auto& [k, v] : request.headers) req.set(k, v);
    req.body() = request.body;
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
        request.method == "PATCH") {
      req.content_length(request.body.size());
    }
    // A kept-alive connection may have been closed by the server since the last request: when a
    // reused connection fails before any answer byte, the request is sent once more on a new one
    // (as libcurl does).
    for (int attempt = 0;; ++attempt) {
      bool reused = stream.has_value() && stream_key == key;
      if (!reused) {
        if (std::string err = connect(u, deadline); !err.empty()) {
          out.error = std::move(err);
          return out;
        }
      }
      beast::error_code ec;
      if (bounded) {
        stream->expires_at(deadline);
      } else {
        stream->expires_never();
      }
      bhttp::async_write(*stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
      run();
      beast::flat_buffer buffer;
      std::optional<bhttp::response_parser<bhttp::string_body>> parser;
      if (!ec) {
        // Interim 1xx answers are skipped until the final one.
        do {
          parser.emplace();
          parser->body_limit(std::numeric_limits<std::uint64_t>::max());
          if (verb == bhttp::verb::head) parser->skip(true);
          bhttp::async_read(*stream, buffer, *parser,
                            [&](beast::error_code e, std::size_t) { ec = e; });
          run();
        } while (!ec && parser->get().result_int() / 100 == 1 &&
                 parser->get().result_int() != 101);
      }
      if (ec) {
        bool nothing_read = buffer.size() == 0 && (!parser || !parser->got_some());
        close();
        if (reused && attempt == 0 && nothing_read && ec != beast::error::timeout) continue;
        out.error = ec == beast::error::timeout
                        ? "timed out after " + std::to_string(request.timeout.count()) + " ms"
                        : "request to " + key + " failed: " + ec.message();
        return out;
      }
      auto& res = parser->get();
      out.status = res.result_int();
      for (const auto& field : res) {
        auto name = field.name_string();
        auto value = field.value();
        out.headers.emplace_back(lower({name.data(), name.size()}),
                                 std::string(value.data(), value.size()));
      }
      bool keep = res.keep_alive();
      out.body = std::move(parser->release().body());
      if (!keep) close();
      return out;
    }
  }

  ClientResponse tls(const ClientRequest& request) {
    ClientResponse out;
    const CurlApi& api = curl_api();
    if (!api.error.empty()) {
      out.error = api.error;
      return out;
    }
    if (curl == nullptr) curl = api.easy_init();
    if (curl == nullptr) {
      out.error = "curl_easy_init failed";
      return out;
    }
    CURL* c = curl;
    api.easy_reset(c);
    char errbuf[CURL_ERROR_SIZE] = {0};
    api.easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    api.easy_setopt(c, CURLOPT_URL, request.url.c_str());
    api.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    api.easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    api.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                    static_cast<long>(std::min<int64_t>(request.timeout.count(),
                                                        kConnectTimeout.count() * 1000)));
    api.easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
    api.easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
    api.easy_setopt(c, CURLOPT_HEADERFUNCTION, write_header);
    api.easy_setopt(c, CURLOPT_HEADERDATA, &out.headers);
    api.easy_setopt(c, CURLOPT_ACCEPT_ENCODING, static_cast<char*>(nullptr));
    // A private CA for the controller or a webhook (the system's CA store otherwise).
    if (const char* ca = std::getenv("PINGMESH_CA_FILE"); ca != nullptr && *ca != '\0') {
      api.easy_setopt(c, CURLOPT_CAINFO, ca);
    }
    if (request.method == "GET") {
      api.easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (request.method == "HEAD") {
      api.easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else {
      api.easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
        request.method == "PATCH") {
      api.easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
      api.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                      static_cast<curl_off_t>(request.body.size()));
    }
    curl_slist* hdrs = nullptr;
    hdrs = api.slist_append(hdrs, "Expect:");
    for (const auto& [k, v] : request.headers) {
      hdrs = api.slist_append(hdrs, (k + ": " + v).c_str());
    }
    api.easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = api.easy_perform(c);
    api.slist_free_all(hdrs);
    if (rc != CURLE_OK) {
      out.status = 0;
      out.error = errbuf[0] ? errbuf : api.easy_strerror(rc);
      return out;
    }
    long code = 0;
    api.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    out.status = static_cast<int>(code);
    return out;
  }

  static constexpr std::chrono::seconds kConnectTimeout{5};
};

Client::Client() : impl_(std::make_unique<Impl>()) {}

Client::~Client() = default;

ClientResponse Client::perform(const ClientRequest& request) {
  std::optional<Url> u = parse_url(request.url);
  if (!u) {
    ClientResponse out;
    out.error = "unsupported or malformed URL (http:// or https:// expected): " + request.url;
    return out;
  }
  if (u->scheme == "https") return impl_->tls(request);
  return impl_->plain(request, *u);
}

}  // namespace pingmesh::http
