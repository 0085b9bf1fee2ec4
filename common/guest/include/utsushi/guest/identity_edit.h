#pragma once
// Pure edits of the guest files that carry a machine's identity, for the
// identity operations (identity_ops.h): /etc/hosts, /etc/shadow, MAC
// addresses in network configuration and udev rules, NetworkManager
// connection UUIDs. Edits keep comments and untouched
// lines byte for byte and list what they changed (config_edit.h's Edited).

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/guest/config_edit.h"

namespace utsushi::guest {

// /etc/hosts: every whole-word occurrence of `old_name` (and of its short
// form "old" for "old.example.com") in host name fields becomes `new_name`
// (or its short form); when no line names the new host afterwards, Debian's
// "127.0.1.1 NEW" line is added. `old_name` may be empty (only the add).
Edited set_hosts_name(std::string_view hosts, std::string_view old_name, std::string_view new_name);

// /etc/shadow: `user`'s password field set to `hash` (a crypt(3) string) and
// its last-change field to `days` (days since 1970-01-01).
// Errc::not_found when the user has no entry.
[[nodiscard]] Result<Edited> set_shadow_password(std::string_view shadow, std::string_view user, std::string_view hash,
                                                 long days);

// Every MAC address in `text` (either case, ':' or '-' separated) that is a
// key of `macs` (lower case, ':' separated) becomes its value, written in
// the case and separator of the original.
Edited remap_macs(std::string_view text, const std::map<std::string, std::string>& macs);

// The MAC addresses a text mentions (lower case, ':' separated), in order of
// first appearance.
std::vector<std::string> macs_in(std::string_view text);

// udev persistent-net rules: the rule lines (SUBSYSTEM=="net" with a NAME=)
// kept only for the first `keep` rules; the others (NICs a clone does not
// have) removed.
Edited keep_net_rules(std::string_view text, std::size_t keep);

// A NetworkManager keyfile's [connection] uuid= set to `uuid` (added when absent).
Edited set_nm_uuid(std::string_view keyfile, std::string_view uuid);

// A random RFC 4122 version 4 UUID ("3f2b...-4...-[89ab]...-...") and a
// systemd machine id (32 lower-case hex digits, never all zeros), from the
// kernel's random source.
std::string random_uuid();
std::string random_machine_id();
// `n` bytes from the kernel's random source.
std::vector<std::uint8_t> random_bytes(std::size_t n);

// Days since 1970-01-01 for a UNIX time (shadow(5)'s date fields).
long days_since_epoch(std::int64_t unix_seconds);

}  // namespace utsushi::guest
