#include "pinglist/service.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace pingmesh::pinglist {

namespace {
/// Upper bound on rendered pinglists kept in memory; beyond it, pinglists are rendered per request.
constexpr std::size_t kCacheBudgetBytes = 256u << 20;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// True when an If-None-Match header value matches the tag (weak comparison, as RFC 9110 wants
/// for If-None-Match; "*" matches any current representation).
bool none_match_hits(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    auto comma = header.find(',');
    auto tag = trim(header.substr(0, comma));
    if (tag == "*") return true;
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}
}  // namespace

std::string etag_of(uint64_t version, Format format) {
  return fmt::format("\"{:016x}-{}\"", version, format == Format::kXml ? 'x' : 'j');
}

PinglistService::PinglistService(metrics::Registry* registry) : registry_(registry) {
  if (registry_ != nullptr) {
    registry_->gauge_fn("pingmesh_controller_pinglist_generation",
                        "Number of pinglist generations since start.",
                        [this] { return static_cast<double>(generation_.load()); });
  }
}

void PinglistService::update(std::shared_ptr<const model::Topology> topology,
                             const Liveness& alive) {
  regenerate(std::move(topology), alive);
}

bool PinglistService::tick(const Liveness& alive) {
  std::shared_ptr<const model::Topology> topology;
  {
    std::shared_lock lock(mu_);
    if (!plan_ || alive == alive_) return false;
    topology = plan_->topology;
  }
  regenerate(std::move(topology), alive);
  return true;
}

void PinglistService::regenerate(std::shared_ptr<const model::Topology> topology,
                                 const Liveness& alive) {
  std::lock_guard regen(regen_mu_);
  auto start = std::chrono::steady_clock::now();
  auto plan = std::make_shared<const Plan>(generate(topology, alive));
  auto cache = std::make_shared<std::vector<Cached>>(plan->servers.size());
  std::size_t carried = 0, changed = 0;
  {
    // Carry over rendered pinglists whose version did not change.
    std::shared_lock lock(mu_);
    std::lock_guard cache_lock(cache_mu_);
    for (std::size_t k = 0; k < plan->servers.size(); ++k) {
      if (!plan_) break;
      auto it = plan_->index.find(plan->servers[k]->name);
      if (it == plan_->index.end() || plan_->version[it->second] != plan->version[k]) {
        ++changed;
        continue;
      }
      (*cache)[k] = (*cache_)[it->second];
      ++carried;
    }
  }
  {
    std::unique_lock lock(mu_);
    plan_ = plan;
    alive_ = alive;
    std::lock_guard cache_lock(cache_mu_);
    cache_ = cache;
    cached_bytes_ = 0;
    for (const auto& c : *cache_) cached_bytes_ += bytes_of(c.xml) + bytes_of(c.json);
  }
  auto gen = generation_.fetch_add(1) + 1;
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  if (registry_ != nullptr) {
    registry_->histogram("pingmesh_controller_generation_seconds",
                         "Time to generate the plan and every pinglist version.",
                         metrics::exponential_buckets(0.001, 2, 14))
        .observe(ms.count() / 1000);
  }
  spdlog::debug("pinglist: generation {} for {} servers in {:.1f} ms ({} changed)", gen,
                plan->servers.size(), ms.count(), changed);
  if (changed > 0) {
    spdlog::info("pinglist: generation {}: {} of {} pinglists changed ({:.1f} ms)", gen, changed,
                 plan->servers.size(), ms.count());
  }
}

std::shared_ptr<const PinglistService::Heads> PinglistService::make_heads(uint64_t version,
                                                                        Format format) {
  auto h = std::make_shared<Heads>();
  h->etag = etag_of(version, format);
  h->lines = "ETag: " + h->etag + "\r\nCache-Control: no-cache\r\nVary: Accept\r\n";
  return h;
}

std::size_t PinglistService::bytes_of(const Rendered& r) {
  return (r.body ? r.body->size() : 0) +
         (r.heads ? sizeof(Heads) + r.heads->etag.size() + r.heads->lines.size() : 0);
}

Served PinglistService::get(std::string_view server, Format format,
                            std::string_view if_none_match) {
  Served out;
  std::shared_ptr<const Plan> plan;
  std::shared_ptr<std::vector<Cached>> cache;
  {
    std::shared_lock lock(mu_);
    plan = plan_;
    std::lock_guard cache_lock(cache_mu_);
    cache = cache_;
  }
  if (!plan) {
    out.status = 404;
    return out;
  }
  auto it = plan->index.find(server);
  if (it == plan->index.end()) {
    out.status = 404;
    return out;
  }
  const uint32_t k = it->second;
  const int32_t d = plan->server_dc[k];
  out.stopped = d >= 0 ? plan->dcs[static_cast<std::size_t>(d)].stopped
                       : plan->topology->settings.stopped;
  out.entries = plan->entry_count[k];
  // What is cached for this version; whatever is missing is rendered below and cached when the
  // budget allows (a pull that only ever gets 304s never renders the body).
  Rendered have;
  {
    std::lock_guard cache_lock(cache_mu_);
    have = format == Format::kXml ? (*cache)[k].xml : (*cache)[k].json;
  }
  const bool made_heads = !have.heads;
  if (made_heads) have.heads = make_heads(plan->version[k], format);
  const Heads& heads = *have.heads;
  out.etag = heads.etag;
  const bool not_modified = !if_none_match.empty() && none_match_hits(if_none_match, heads.etag);
  const bool made_body = !not_modified && !have.body;
  if (made_body) {
    auto list = pinglist_of(*plan, k);
    have.body = std::make_shared<const std::string>(
        format == Format::kXml ? model::to_xml(list) : model::to_json(list));
  }
  if (made_heads || made_body) {
    std::lock_guard cache_lock(cache_mu_);
    auto& slot = format == Format::kXml ? (*cache)[k].xml : (*cache)[k].json;
    if (cache == cache_) {
      Rendered next = slot;
      if (!next.heads) next.heads = have.heads;
      if (!next.body && made_body) next.body = have.body;
      const std::size_t grow = bytes_of(next) - bytes_of(slot);
      if (cached_bytes_ + grow <= kCacheBudgetBytes) {
        slot = std::move(next);
        cached_bytes_ += grow;
      }
    }
  }
  out.head_lines = std::shared_ptr<const std::string>(have.heads, &have.heads->lines);
  if (not_modified) {
    out.status = 304;
    return out;
  }
  out.body = std::move(have.body);
  return out;
}

PinglistService::Summary PinglistService::summary(std::string_view server) const {
  Summary s;
  std::shared_lock lock(mu_);
  if (!plan_) return s;
  auto it = plan_->index.find(server);
  if (it == plan_->index.end()) return s;
  const uint32_t k = it->second;
  s.entries = plan_->entry_count[k];
  s.chosen = plan_->server_slot[k] >= 0;
  s.alive = plan_->alive[k];
  const int32_t d = plan_->server_dc[k];
  s.stopped = d >= 0 ? plan_->dcs[static_cast<std::size_t>(d)].stopped
                     : plan_->topology->settings.stopped;
  s.version = fmt::format("{:016x}", plan_->version[k]);
  return s;
}

std::shared_ptr<const Plan> PinglistService::plan() const {
  std::shared_lock lock(mu_);
  return plan_;
}

}  // namespace pingmesh::pinglist
