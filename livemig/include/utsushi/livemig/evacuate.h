#pragma once
// evacuate: move several running guests off this host. The guests are either
// a list of QMP sockets, each with its destination, or every active domain
// of a libvirt host (libvirt_host.h), spread over one or more receivers in
// turn. Guests are measured first (guest memory, and dirty rate with QEMU's
// calc-dirty-rate), ordered so that the cheapest moves go first (estimated
// bytes = memory + 10 s of dirtying), and migrated at most `parallel` at a
// time, each with an equal share of the bandwidth cap. A guest that fails
// stays on the source (the session guarantees) and is reported; the others
// continue. Libvirt domains that are not running, or not QEMU's, are skipped
// with the reason and not counted as failures.

#include <cstdint>
#include <string>
#include <vector>

#include "utsushi/livemig/endpoints.h"

namespace utsushi::livemig {

struct EvacuatePair {
  std::string source_qmp;  // empty for a libvirt domain
  std::string domain;      // the libvirt domain (libvirt mode)
  // Either a local destination QMP socket (QEMU started with -incoming defer)
  // or HOST:PORT of a `livemig receive`.
  std::string destination;
};

// Parses "SRC.sock=DEST" (DEST a path or HOST:PORT).
[[nodiscard]] Result<EvacuatePair> parse_evacuate_pair(std::string_view text);

struct EvacuateOptions {
  std::vector<EvacuatePair> guests;  // QMP mode
  // Libvirt mode: every active domain of this host goes to `destinations`
  // (HOST:PORT of `livemig receive --libvirt`), the i-th cheapest to
  // destinations[i % size].
  std::string libvirt_uri;
  std::vector<std::string> destinations;
  bool undefine_source = false;
  unsigned parallel = 1;
  std::uint64_t bandwidth = 0;  // shared by the guests in flight
  std::string token;            // for HOST:PORT destinations
  bool measure_dirty_rate = true;
  SendOptions send;
  ReceiveOptions receive;
};

struct GuestPlan {
  EvacuatePair pair;
  std::uint64_t memory_bytes = 0;
  std::uint64_t dirty_bytes_per_sec = 0;
  std::uint64_t cost = 0;
  std::string skip_reason;  // set: not migrated (libvirt: paused, not QEMU)
};

// Lists (libvirt), measures and orders the guests, skipped ones last (no
// guest is changed).
[[nodiscard]] Result<std::vector<GuestPlan>> plan_evacuation(const EvacuateOptions& options);

struct GuestOutcome {
  GuestPlan plan;
  Outcome outcome;
};
// Skipped guests get status "skipped" and no error.
std::vector<GuestOutcome> evacuate(const EvacuateOptions& options, const std::vector<GuestPlan>& plan);

}  // namespace utsushi::livemig
