#pragma once
// A parser for LVM2's metadata text format (the "config tree" of
// lib/config/config.c and doc/lvm2-metadata in lvm2's sources):
//   name = value            value: number, "string", or [ list, of, values ]
//   name { ... }            a section
//   # comment
// Parses into a small tree; numbers are kept as 64-bit integers.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "utsushi/common/error.h"

namespace utsushi::disk::lvm {

struct Value {
  std::variant<std::int64_t, std::string> v;
  bool is_string() const { return std::holds_alternative<std::string>(v); }
};

struct Node {
  std::map<std::string, std::vector<Value>> values;  // a scalar is a one-element list
  std::vector<std::pair<std::string, std::unique_ptr<Node>>> sections;  // in file order

  const Node* section(const std::string& name) const;
  [[nodiscard]] Result<std::int64_t> number(const std::string& name) const;
  [[nodiscard]] Result<std::string> string(const std::string& name) const;
};

// Parses the text; corruption on syntax errors (with the line number).
[[nodiscard]] Result<std::unique_ptr<Node>> parse(std::string_view text);

}  // namespace utsushi::disk::lvm
