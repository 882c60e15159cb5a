#include "controller/server_config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/net.hpp"

namespace pingmesh::controller {

namespace {

std::runtime_error at(const std::string& path, const YAML::Mark& mark, const std::string& msg) {
  return std::runtime_error(path + ":" + std::to_string(mark.line + 1) + ": " + msg);
}

template <class T>
T integer(const std::string& path, const std::string& key, const YAML::Node& v, T min, T max) {
  const std::string& s = v.Scalar();
  long long n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || n < static_cast<long long>(min) ||
      n > static_cast<long long>(max)) {
    throw at(path, v.Mark(),
             key + ": must be an integer in " + std::to_string(min) + ".." + std::to_string(max) +
                 ", got '" + s + "'");
  }
  return static_cast<T>(n);
}

}  // namespace

const std::set<std::string>& server_config_keys() {
  static const std::set<std::string> keys{"listen",           "db",
                                          "admin-token",      "agent-token",
                                          "threads",          "log-level",
                                          "min-interval-ms",  "import",
                                          "max-body-bytes",   "heartbeat-interval-s",
                                          "data-dir",         "web-dir",
                                          "alert-rules",      "webhook",
                                          "alertmanager",     "alert-history-days",
                                          "alert-history-max", "grace"};
  return keys;
}

void load_server_config(const std::string& path, ServerConfig* config,
                        const std::set<std::string>& skip, const ExtraConfigKeys* extra) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read the config file");
  std::stringstream text;
  text << in.rdbuf();
  YAML::Node root;
  try {
    root = YAML::Load(text.str());
  } catch (const YAML::Exception& e) {
    throw at(path, e.mark, e.msg);
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw at(path, root.Mark(), "the config file must be a mapping of keys");
  std::string extra_list;
  if (extra != nullptr) {
    for (const auto& k : extra->keys) extra_list += ", " + k;
  }
  for (const auto& kv : root) {
    std::string key = kv.first.Scalar();
    for (auto& c : key) {
      if (c == '_') c = '-';
    }
    const YAML::Node& v = kv.second;
    if (extra != nullptr &&
        std::find(extra->keys.begin(), extra->keys.end(), key) != extra->keys.end()) {
      if (skip.contains(key)) continue;
      auto apply = [&](const YAML::Node& item) {
        if (!item.IsScalar()) throw at(path, item.Mark(), key + ": must be a single value");
        try {
          extra->apply(key, item.Scalar());
        } catch (const std::invalid_argument& e) {
          throw at(path, item.Mark(), e.what());
        }
      };
      if (v.IsSequence()) {
        for (const auto& item : v) apply(item);
      } else {
        apply(v);
      }
      continue;
    }
    if (!server_config_keys().contains(key)) {
      throw at(path, kv.first.Mark(),
               "unknown key '" + kv.first.Scalar() +
                   "' (known: listen, db, admin-token, agent-token, threads, log-level, "
                   "min-interval-ms, import, max-body-bytes, heartbeat-interval-s, data-dir, "
                   "web-dir, alert-rules, webhook, alertmanager, alert-history-days, "
                   "alert-history-max, grace" +
                   extra_list + ")");
    }
    if (!v.IsScalar()) throw at(path, v.Mark(), key + ": must be a single value");
    if (skip.contains(key)) continue;
    const std::string& s = v.Scalar();
    if (key == "listen") {
      try {
        parse_listen(s);
      } catch (const std::invalid_argument& e) {
        throw at(path, v.Mark(), e.what());
      }
      config->listen = s;
    } else if (key == "db") {
      config->db = s;
    } else if (key == "admin-token") {
      config->admin_token = s;
    } else if (key == "agent-token") {
      config->agent_token = s;
    } else if (key == "threads") {
      config->threads = integer<int>(path, key, v, 1, 256);
    } else if (key == "log-level") {
      static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "off"};
      if (!levels.contains(s)) {
        throw at(path, v.Mark(), "log-level: must be trace, debug, info, warn, error or off");
      }
      config->log_level = s;
    } else if (key == "min-interval-ms") {
      config->min_interval_ms = integer<uint32_t>(path, key, v, 1, model::kMinIntervalMs);
    } else if (key == "import") {
      config->import_file = s;
    } else if (key == "max-body-bytes") {
      config->max_body_bytes = integer<std::size_t>(path, key, v, 1024, std::size_t{1} << 30);
    } else if (key == "heartbeat-interval-s") {
      config->heartbeat_interval_s = integer<uint32_t>(path, key, v, 1, 3600);
    } else if (key == "data-dir") {
      config->data_dir = s;
    } else if (key == "web-dir") {
      config->web_dir = s;
    } else if (key == "alert-rules") {
      config->alert_rules = s;
    } else if (key == "webhook") {
      config->webhooks.push_back(s);
    } else if (key == "alertmanager") {
      config->alertmanagers.push_back(s);
    } else if (key == "alert-history-days") {
      config->alert_history_days = integer<uint32_t>(path, key, v, 1, 36500);
    } else if (key == "alert-history-max") {
      config->alert_history_max = integer<uint32_t>(path, key, v, 1, 100000000);
    } else if (key == "grace") {
      config->grace_s = integer<uint32_t>(path, key, v, 1, 86400);
    }
  }
}

void check_server_config(const ServerConfig& config) {
  parse_listen(config.listen);
  if (config.threads < 1 || config.threads > 256) {
    throw std::invalid_argument("threads: must be in 1..256");
  }
  if (config.min_interval_ms < 1 || config.min_interval_ms > model::kMinIntervalMs) {
    throw std::invalid_argument("min-interval-ms: must be in 1..10000");
  }
  if (config.max_body_bytes < 1024) {
    throw std::invalid_argument("max-body-bytes: must be at least 1024");
  }
  if (config.db.empty()) throw std::invalid_argument("db: must not be empty");
  if (config.data_dir.empty()) throw std::invalid_argument("data-dir: must not be empty");
  if (config.alert_history_days < 1 || config.alert_history_days > 36500) {
    throw std::invalid_argument("alert-history-days: must be in 1..36500");
  }
  if (config.alert_history_max < 1 || config.alert_history_max > 100000000) {
    throw std::invalid_argument("alert-history-max: must be in 1..100000000");
  }
  if (config.grace_s < 1 || config.grace_s > 86400) {
    throw std::invalid_argument("grace: must be in 1..86400");
  }
}

ListenAddress parse_listen(std::string_view text) {
  ListenAddress out;
  std::string_view host, port;
  if (text.starts_with("[")) {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::invalid_argument("listen: '" + std::string(text) +
                                  "' is not [IPv6]:port, e.g. [::1]:9000");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      throw std::invalid_argument("listen: '" + std::string(text) +
                                  "' is not host:port, e.g. 127.0.0.1:9000 or [::1]:9000");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  out.host = host.empty() ? "127.0.0.1" : std::string(host);
  if (!net::IpAddress::parse(out.host)) {
    throw std::invalid_argument("listen: '" + out.host + "' is not an IPv4 or IPv6 address");
  }
  unsigned n = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || n > 65535) {
    throw std::invalid_argument("listen: port '" + std::string(port) + "' is not in 0..65535");
  }
  out.port = static_cast<uint16_t>(n);
  return out;
}

}  // namespace pingmesh::controller
