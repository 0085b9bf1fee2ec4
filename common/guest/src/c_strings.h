#pragma once
// Helpers at the libguestfs C boundary (private to the guest library): owning
// wrappers for the malloc'd strings and NULL-terminated string lists libguestfs
// returns, and NULL-terminated argv arrays built from std::string vectors.

#include <cstdlib>
#include <string>
#include <vector>

namespace utsushi::guest::detail {

// Takes a malloc'd string (may be null) and frees it.
inline std::string take_string(char* s) {
  std::string out = s != nullptr ? std::string(s) : std::string();
  std::free(s);
  return out;
}

// Takes a NULL-terminated malloc'd list of malloc'd strings and frees it all.
inline std::vector<std::string> take_list(char** list) {
  std::vector<std::string> out;
  if (list == nullptr) {
    return out;
  }
  for (char** p = list; *p != nullptr; ++p) {
    out.emplace_back(*p);
    std::free(*p);
  }
  std::free(list);
  return out;
}

// A NULL-terminated char* array viewing `strings` (which must outlive it).
class Argv {
 public:
  explicit Argv(const std::vector<std::string>& strings) {
    m_ptrs.reserve(strings.size() + 1);
    for (const std::string& s : strings) {
      m_ptrs.push_back(const_cast<char*>(s.c_str()));
    }
    m_ptrs.push_back(nullptr);
  }
  char* const* get() const noexcept { return m_ptrs.data(); }

 private:
  std::vector<char*> m_ptrs;
};

}  // namespace utsushi::guest::detail
