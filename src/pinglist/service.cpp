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
    for (const auto& c : *cache_) {
      cached_bytes_ += (c.xml ? c.xml->size() : 0) + (c.json ? c.json->size() : 0);
    }
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
  out.etag = etag_of(plan->version[k], format);
  const int32_t d = plan->server_dc[k];
  out.stopped = d >= 0 ? plan->dcs[static_cast<std::size_t>(d)].stopped
                       : plan->topology->settings.stopped;
  out.entries = plan->entry_count[k];
  if (!if_none_match.empty() && none_match_hits(if_none_match, out.etag)) {
    out.status = 304;
    return out;
  }
  {
    std::lock_guard cache_lock(cache_mu_);
    auto& slot = format == Format::kXml ? (*cache)[k].xml : (*cache)[k].json;
    if (slot) {
      out.body = slot;
      return out;
    }
  }
  auto list = pinglist_of(*plan, k);
  auto body = std::make_shared<const std::string>(format == Format::kXml ? model::to_xml(list)
                                                                          : model::to_json(list));
  {
    std::lock_guard cache_lock(cache_mu_);
    if (cache == cache_ && cached_bytes_ + body->size() <= kCacheBudgetBytes) {
      auto& slot = format == Format::kXml ? (*cache)[k].xml : (*cache)[k].json;
      if (!slot) {
        slot = body;
        cached_bytes_ += body->size();
      }
    }
  }
  out.body = std::move(body);
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
