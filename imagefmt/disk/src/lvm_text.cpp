#include "utsushi/disk/lvm_text.h"

#include <cctype>

namespace utsushi::disk::lvm {
namespace {

constexpr int k_max_nesting = 16;

class Parser {
 public:
  explicit Parser(std::string_view t) : m_t(t) {}

  [[nodiscard]] Result<void> parse_body(Node& node, int depth, bool top) {
    if (depth > k_max_nesting) {
      return error("sections nested too deeply");
    }
    for (;;) {
      skip_space();
      if (m_p >= m_t.size()) {
        return top ? Result<void>{} : error("unexpected end of text");
      }
      if (m_t[m_p] == '}') {
        if (top) {
          return error("unbalanced '}'");
        }
        ++m_p;
        return {};
      }
      std::string name = UTSUSHI_TRY(identifier());
      skip_space();
      if (m_p < m_t.size() && m_t[m_p] == '{') {
        ++m_p;
        auto child = std::make_unique<Node>();
        UTSUSHI_TRY(parse_body(*child, depth + 1, false));
        node.sections.emplace_back(name, std::move(child));
      } else if (m_p < m_t.size() && m_t[m_p] == '=') {
        ++m_p;
        skip_space();
        std::vector<Value> vals;
        if (m_p < m_t.size() && m_t[m_p] == '[') {
          ++m_p;
          for (;;) {
            skip_space();
            if (m_p < m_t.size() && m_t[m_p] == ']') {
              ++m_p;
              break;
            }
            vals.push_back(UTSUSHI_TRY(scalar()));
            skip_space();
            if (m_p < m_t.size() && m_t[m_p] == ',') {
              ++m_p;
            }
          }
        } else {
          vals.push_back(UTSUSHI_TRY(scalar()));
        }
        node.values[name] = std::move(vals);
      } else {
        return error("expected '=' or '{' after '" + name + "'");
      }
    }
  }

 private:
  std::unexpected<Error> error(const std::string& what) const {
    std::size_t line = 1;
    for (std::size_t i = 0; i < m_p && i < m_t.size(); ++i) {
      line += m_t[i] == '\n';
    }
    return fail(Errc::corruption, "LVM metadata line " + std::to_string(line) + ": " + what);
  }
  void skip_space() {
    while (m_p < m_t.size()) {
      if (std::isspace(static_cast<unsigned char>(m_t[m_p]))) {
        ++m_p;
      } else if (m_t[m_p] == '#') {
        while (m_p < m_t.size() && m_t[m_p] != '\n') {
          ++m_p;
        }
      } else {
        break;
      }
    }
  }
  [[nodiscard]] Result<std::string> identifier() {
    std::size_t s = m_p;
    while (m_p < m_t.size() && (std::isalnum(static_cast<unsigned char>(m_t[m_p])) || m_t[m_p] == '_' ||
                                m_t[m_p] == '-' || m_t[m_p] == '.' || m_t[m_p] == '+')) {
      ++m_p;
    }
    if (s == m_p) {
      return error("expected a name");
    }
    return std::string(m_t.substr(s, m_p - s));
  }
  [[nodiscard]] Result<Value> scalar() {
    if (m_p < m_t.size() && m_t[m_p] == '"') {
      std::string s;
      for (++m_p; m_p < m_t.size() && m_t[m_p] != '"'; ++m_p) {
        if (m_t[m_p] == '\\' && m_p + 1 < m_t.size()) {
          ++m_p;
        }
        s.push_back(m_t[m_p]);
      }
      if (m_p >= m_t.size()) {
        return error("unterminated string");
      }
      ++m_p;
      return Value{s};
    }
    std::size_t s = m_p;
    if (m_p < m_t.size() && m_t[m_p] == '-') {
      ++m_p;
    }
    while (m_p < m_t.size() && (std::isdigit(static_cast<unsigned char>(m_t[m_p])) || m_t[m_p] == '.')) {
      ++m_p;
    }
    if (s == m_p) {
      return error("expected a value");
    }
    std::string num(m_t.substr(s, m_p - s));
    try {
      return Value{static_cast<std::int64_t>(std::stoll(num))};
    } catch (const std::exception&) {
      return error("bad number '" + num + "'");
    }
  }

  std::string_view m_t;
  std::size_t m_p = 0;
};

}  // namespace

const Node* Node::section(const std::string& name) const {
  for (const auto& [n, child] : sections) {
    if (n == name) {
      return child.get();
    }
  }
  return nullptr;
}

Result<std::int64_t> Node::number(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end() || it->second.size() != 1 || it->second[0].is_string()) {
    return fail(Errc::corruption, "LVM metadata: '" + name + "' is missing or not a number");
  }
  return std::get<std::int64_t>(it->second[0].v);
}

Result<std::string> Node::string(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end() || it->second.size() != 1 || !it->second[0].is_string()) {
    return fail(Errc::corruption, "LVM metadata: '" + name + "' is missing or not a string");
  }
  return std::get<std::string>(it->second[0].v);
}

[[nodiscard]] Result<std::unique_ptr<Node>> parse(std::string_view text) {
  auto root = std::make_unique<Node>();
  Parser p(text);
  UTSUSHI_TRY(p.parse_body(*root, 0, true));
  return root;
}

}  // namespace utsushi::disk::lvm
