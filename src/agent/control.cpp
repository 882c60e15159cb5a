#include "agent/control.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/http.hpp"

namespace pingmesh::agent {

PullAction PullTracker::on_result(PullResult r) {
  switch (r) {
    case PullResult::kOk:
      failures_ = 0;
      probing_ = true;
      return PullAction::kApply;
    case PullResult::kNotModified:
      failures_ = 0;
      return PullAction::kNone;
    case PullResult::kMalformed:
      return PullAction::kNone;
    case PullResult::kNotFound:
    case PullResult::kStopped:
      failures_ = 0;
      probing_ = false;
      return PullAction::kStop;
    case PullResult::kFailed:
      ++failures_;
      if (failures_ >= max_failures_ && probing_) {
        probing_ = false;
        return PullAction::kStop;
      }
      return PullAction::kNone;
  }
  return PullAction::kNone;
}

std::string heartbeat_json(const ControlOptions& o) {
  nlohmann::ordered_json j;
  j["name"] = o.name;
  j["hostname"] = o.hostname;
  j["addresses"] = o.addresses;
  j["version"] = o.version;
  j["capabilities"] = o.capabilities;
  if (!o.dc.empty()) j["dc"] = o.dc;
  return j.dump();
}

namespace {

int64_t unix_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

Control::Control(ControlOptions options, AgentMetrics& metrics, Apply apply)
    : options_(std::move(options)),
      metrics_(metrics),
      apply_(std::move(apply)),
      tracker_(options_.max_failed_pulls) {
  options_.server_url = trim_slash(options_.server_url);
  pinglist_url_ = options_.server_url + "/api/v1/pinglist/" + http::url_encode(options_.name);
}

Control::~Control() { stop(); }

void Control::start() {
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void Control::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::string Control::version() const {
  std::lock_guard lock(mu_);
  return version_;
}

void Control::run() {
  http::Client client;
  client_ = &client;
  using clock = std::chrono::steady_clock;
  auto next_heartbeat = clock::now();
  auto next_pull = clock::now();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto now = clock::now();
    if (now >= next_heartbeat) {
      lock.unlock();
      heartbeat();
      lock.lock();
      next_heartbeat = clock::now() + std::chrono::milliseconds(options_.heartbeat_interval_ms);
      continue;
    }
    if (now >= next_pull) {
      lock.unlock();
      pull();
      lock.lock();
      next_pull = clock::now() + std::chrono::milliseconds(options_.pull_interval_ms);
      continue;
    }
    cv_.wait_until(lock, std::min(next_heartbeat, next_pull), [&] { return stopping_; });
  }
  client_ = nullptr;
}

void Control::heartbeat() {
  http::Client* client = client_;
  http::ClientRequest req;
  req.method = "POST";
  req.url = options_.server_url + "/api/v1/heartbeat";
  req.timeout = std::chrono::milliseconds(options_.request_timeout_ms);
  req.headers = {{"content-type", "application/json"}};
  if (!options_.token.empty())
    req.headers.emplace_back("authorization", "Bearer " + options_.token);
  req.body = heartbeat_json(options_);
  auto resp = client->perform(req);
  if (resp.status < 200 || resp.status >= 300) {
    metrics_.heartbeats_failed.inc();
    spdlog::debug("agent: heartbeat failed: {}",
                  resp.status == 0 ? resp.error : "HTTP " + std::to_string(resp.status));
    return;
  }
  auto j = nlohmann::json::parse(resp.body, nullptr, false);
  if (j.is_object() && j.contains("pinglist_url") && j["pinglist_url"].is_string()) {
    std::string url = j["pinglist_url"].get<std::string>();
    if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0) {
      pinglist_url_ = url;
    } else if (!url.empty() && url[0] == '/') {
      pinglist_url_ = options_.server_url + url;
    }
  }
}

PullResult Control::fetch(std::shared_ptr<model::Pinglist>* out) {
  http::Client* client = client_;
  http::ClientRequest req;
  req.url = pinglist_url_;
  req.timeout = std::chrono::milliseconds(options_.request_timeout_ms);
  if (!options_.token.empty())
    req.headers.emplace_back("authorization", "Bearer " + options_.token);
  if (!etag_.empty()) req.headers.emplace_back("if-none-match", etag_);
  auto resp = client->perform(req);
  if (resp.status == 304) return PullResult::kNotModified;
  if (resp.status == 404) return PullResult::kNotFound;
  if (resp.status != 200) {
    spdlog::debug("agent: pinglist pull failed: {}",
                  resp.status == 0 ? resp.error : "HTTP " + std::to_string(resp.status));
    return PullResult::kFailed;
  }
  std::string etag(resp.header("etag"));
  auto p = std::make_shared<model::Pinglist>();
  std::string error;
  bool ok = model::parse_pinglist(resp.body, p.get(), &error);
  if (ok && p->server != options_.name) {
    ok = false;
    error = "pinglist is for server '" + p->server + "', not '" + options_.name + "'";
  }
  if (!ok) {
    metrics_.pinglists_rejected.inc();
    // One line per bad document, not one per pull of the same bad document.
    if (etag.empty() || etag != rejected_etag_) {
      spdlog::error("agent: rejected malformed pinglist from {} (keeping the last good one): {}",
                    req.url, error);
    }
    rejected_etag_ = etag;
    return PullResult::kMalformed;
  }
  etag_ = etag;
  *out = std::move(p);
  return (*out)->stopped ? PullResult::kStopped : PullResult::kOk;
}

void Control::pull() {
  std::shared_ptr<model::Pinglist> p;
  PullResult r = fetch(&p);
  if (r == PullResult::kFailed || r == PullResult::kNotFound) {
    metrics_.pulls_failed.inc();
  } else if (r != PullResult::kMalformed) {
    metrics_.pulls_ok.inc();
    last_confirmed_s_ = unix_s();
  }
  bool was_probing = tracker_.probing();
  PullAction action = tracker_.on_result(r);
  failures_ = tracker_.consecutive_failures();
  if (action == PullAction::kApply) {
    {
      std::lock_guard lock(mu_);
      version_ = p->version;
    }
    metrics_.set_pinglist_version(p->version);
    apply_(std::move(p));
  } else if (action == PullAction::kStop) {
    // Forget the ETag so the next good answer is a full document that restarts probing.
    etag_.clear();
    {
      std::lock_guard lock(mu_);
      version_.clear();
    }
    metrics_.set_pinglist_version("");
    apply_(nullptr);
    if (was_probing) {
      const char* why = r == PullResult::kStopped    ? "the pinglist is stopped (kill switch)"
                        : r == PullResult::kNotFound ? "the controller has no pinglist for us"
                                                     : "pinglist pulls keep failing";
      spdlog::warn("agent: stopped probing: {}; still answering probes", why);
    }
  }
  probing_ = tracker_.probing();
}

}  // namespace pingmesh::agent
