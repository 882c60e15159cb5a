#include "model/document.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/topology_json.hpp"

namespace pingmesh::model {

namespace {

constexpr std::string_view kTagStr = "tag:yaml.org,2002:str";
constexpr std::string_view kTagInt = "tag:yaml.org,2002:int";
constexpr std::string_view kTagFloat = "tag:yaml.org,2002:float";
constexpr std::string_view kTagBool = "tag:yaml.org,2002:bool";
constexpr std::string_view kTagNull = "tag:yaml.org,2002:null";

[[noreturn]] void fail(const std::string& source, int line, std::string_view detail) {
  throw ValidationError("", fmt::format("{} line {}: {}", source, line, detail));
}

/// yaml-cpp marks are 0-based; a mark of -1 means "unknown".
int line_of(const YAML::Mark& mark) { return mark.line < 0 ? 1 : mark.line + 1; }

bool is_null_word(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<bool> parse_bool_word(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

bool is_digits(std::string_view s, int base) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = base == 16 ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                         : (c >= '0' && c < static_cast<char>('0' + base));
    if (!ok) return false;
  }
  return true;
}

enum class IntResult { kNotInt, kOutOfRange, kOk };

/// YAML 1.2 core schema integers: [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+.
IntResult parse_int(std::string_view s, nlohmann::json* out) {
  int base = 10;
  bool negative = false;
  std::string_view digits = s;
  if (s.starts_with("0x")) {
    base = 16;
    digits = s.substr(2);
  } else if (s.starts_with("0o")) {
    base = 8;
    digits = s.substr(2);
  } else if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    digits = s.substr(1);
  }
  if (!is_digits(digits, base)) return IntResult::kNotInt;
  uint64_t magnitude = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return IntResult::kOutOfRange;
  if (!negative) {
    *out = magnitude;
    return IntResult::kOk;
  }
  constexpr uint64_t kMaxNegative = uint64_t{1} << 63;
  if (magnitude > kMaxNegative) return IntResult::kOutOfRange;
  *out = magnitude == kMaxNegative ? INT64_MIN : -static_cast<int64_t>(magnitude);
  return IntResult::kOk;
}

/// YAML 1.2 core schema floats, decimal notation only:
/// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
/// (.inf and .nan have no JSON representation and stay strings).
bool parse_float(std::string_view s, double* out) {
  std::string_view body = s;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) body.remove_prefix(1);
  std::size_t i = 0;
  std::size_t int_digits = 0, frac_digits = 0;
  while (i < body.size() && body[i] >= '0' && body[i] <= '9') ++i, ++int_digits;
  if (i < body.size() && body[i] == '.') {
    ++i;
    while (i < body.size() && body[i] >= '0' && body[i] <= '9') ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    ++i;
    if (i < body.size() && (body[i] == '+' || body[i] == '-')) ++i;
    std::size_t exp_digits = 0;
    while (i < body.size() && body[i] >= '0' && body[i] <= '9') ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  if (i != body.size()) return false;
  // from_chars rejects a leading '+'.
  std::string_view text = s[0] == '+' ? s.substr(1) : s;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

class Converter {
 public:
  explicit Converter(const std::string& source) : source_(source) {}

  nlohmann::json convert(const YAML::Node& node) {
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return nullptr;
      case YAML::NodeType::Scalar:
        return scalar(node);
      case YAML::NodeType::Sequence: {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& item : node) arr.push_back(convert(item));
        return arr;
      }
      case YAML::NodeType::Map: {
        nlohmann::json obj = nlohmann::json::object();
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) {
            fail(source_, line_of(kv.first.Mark()), "mapping keys must be scalars");
          }
          const std::string& key = kv.first.Scalar();
          if (obj.contains(key)) {
            fail(source_, line_of(kv.first.Mark()), fmt::format("duplicate key '{}'", key));
          }
          obj[key] = convert(kv.second);
        }
        return obj;
      }
    }
    return nullptr;
  }

 private:
  nlohmann::json scalar(const YAML::Node& node) {
    const std::string& s = node.Scalar();
    const std::string& tag = node.Tag();
    // yaml-cpp tags quoted scalars "!" and plain ones "?"; only plain scalars are resolved.
    if (tag == "!" || tag == kTagStr) return s;
    if (tag == "?") return resolve_plain(node, s);
    if (tag == kTagNull) {
      if (!is_null_word(s)) fail(source_, line_of(node.Mark()), fmt::format("'{}' is not null", s));
      return nullptr;
    }
    if (tag == kTagBool) {
      auto b = parse_bool_word(s);
      if (!b) fail(source_, line_of(node.Mark()), fmt::format("'{}' is not a boolean", s));
      return *b;
    }
    if (tag == kTagInt) {
      nlohmann::json v;
      if (parse_int(s, &v) != IntResult::kOk) {
        fail(source_, line_of(node.Mark()), fmt::format("'{}' is not a 64-bit integer", s));
      }
      return v;
    }
    if (tag == kTagFloat) {
      nlohmann::json v;
      if (parse_int(s, &v) == IntResult::kOk) return v.get<double>();
      double d = 0;
      if (!parse_float(s, &d)) {
        fail(source_, line_of(node.Mark()), fmt::format("'{}' is not a number", s));
      }
      return d;
    }
    fail(source_, line_of(node.Mark()), fmt::format("unsupported tag '{}'", tag));
  }

  nlohmann::json resolve_plain(const YAML::Node& node, const std::string& s) {
    if (is_null_word(s)) return nullptr;
    if (auto b = parse_bool_word(s)) return *b;
    nlohmann::json v;
    switch (parse_int(s, &v)) {
      case IntResult::kOk:
        return v;
      case IntResult::kOutOfRange:
        fail(source_, line_of(node.Mark()), fmt::format("integer '{}' is out of range", s));
      case IntResult::kNotInt:
        break;
    }
    double d = 0;
    if (parse_float(s, &d)) return d;
    return s;
  }

  const std::string& source_;
};

nlohmann::json parse_json(std::string_view text, const std::string& source) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is the 1-based offset of the offending character.
    std::size_t end = std::min<std::size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    int line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    // nlohmann's message reads "[json.exception.parse_error.101] parse error at line L, column
    // C: detail"; keep only the detail, we report the position ourselves.
    std::string detail = e.what();
    if (auto pos = detail.find(": "); pos != std::string::npos) detail = detail.substr(pos + 2);
    fail(source, line, fmt::format("{} (column {})", detail, end - line_start + 1));
  }
}

nlohmann::json parse_yaml(std::string_view text, const std::string& source) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    fail(source, line_of(e.mark), e.msg);
  }
  if (docs.empty()) return nullptr;
  if (docs.size() > 1) {
    fail(source, line_of(docs[1].Mark()),
         fmt::format("holds {} YAML documents; expected one", docs.size()));
  }
  return Converter(source).convert(docs[0]);
}

}  // namespace

nlohmann::json parse_document(std::string_view text, const std::string& source_name) {
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (text[first] == '{' || text[first] == '[')) {
    return parse_json(text, source_name);
  }
  return parse_yaml(text, source_name);
}

}  // namespace pingmesh::model
