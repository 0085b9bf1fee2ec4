#pragma once
// What each clone is called and where it is reached: names from a count and
// a pattern (or a list), host names from a pattern, IPv4 addresses from a
// range, MAC addresses unique on a host. Pure functions (new_macs draws
// from the kernel's random source).

#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"

namespace utsushi::clone {

// A name pattern is fmt's syntax with two arguments: {n} the clone's number
// (from 1; "{n:02}" pads) and, for host names, {name} the clone's name:
// "web-{n:02}" -> web-01, web-02, ...
[[nodiscard]] Result<std::string> expand_pattern(std::string_view pattern, unsigned n, std::string_view name = {});

// `count` names from `pattern` (numbers 1..count), or `names` as given.
// Errc::invalid_argument when a name is not valid (check_clone_name), names
// repeat, or both or neither of a list and a count are given.
[[nodiscard]] Result<std::vector<std::string>> clone_names(const std::vector<std::string>& names, unsigned count,
                                                           std::string_view pattern);

// A clone's name is a libvirt domain name and its volumes' file names:
// 1-64 characters of [A-Za-z0-9._-], not starting with '.' or '-'.
[[nodiscard]] Result<void> check_clone_name(std::string_view name);
// A host name (RFC 1123): dot-separated labels of 1-63 [A-Za-z0-9-], not
// starting or ending with '-', 253 characters at most.
[[nodiscard]] Result<void> check_hostname(std::string_view name);

// Whether `name` matches a shell pattern (*, ?, [...]) as fnmatch(3) does.
bool matches(std::string_view pattern, std::string_view name);

// `count` IPv4 addresses from `first` ("10.0.0.10/24" -> 10.0.0.10/24,
// 10.0.0.11/24, ...), each with the prefix. Errc::invalid_argument when
// `first` is not IPv4 CIDR, is the network or broadcast address, or when the
// range passes the last host address of the subnet (naming how many fit) or
// includes `gateway`.
[[nodiscard]] Result<std::vector<std::string>> address_range(std::string_view first, std::size_t count,
                                                             std::string_view gateway = {});

// `count` random locally administered QEMU MACs (52:54:00:xx:xx:xx) not in
// `in_use` and distinct from each other.
std::vector<std::string> new_macs(std::size_t count, const std::set<std::string>& in_use);

}  // namespace utsushi::clone
