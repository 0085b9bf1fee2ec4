#pragma once
// evacuate: move several running guests off this host. Guests are measured
// first (guest memory, and dirty rate with QEMU's calc-dirty-rate), ordered
// so that the cheapest moves go first (estimated bytes = memory + 10 s of
// dirtying), and migrated at most `parallel` at a time, each with an equal
// share of the bandwidth cap. A guest that fails stays on the source (the
// session guarantees) and is reported; the others continue.

#include <cstdint>
#include <string>
#include <vector>

#include "utsushi/livemig/endpoints.h"

namespace utsushi::livemig {

struct EvacuatePair {
  std::string source_qmp;
  // Either a local destination QMP socket (QEMU started with -incoming defer)
  // or HOST:PORT of a `livemig receive`.
  std::string destination;
};

// Parses "SRC.sock=DEST" (DEST a path or HOST:PORT).
[[nodiscard]] Result<EvacuatePair> parse_evacuate_pair(std::string_view text);

struct EvacuateOptions {
  std::vector<EvacuatePair> guests;
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
};

// Measures and orders the guests (no guest is changed).
[[nodiscard]] Result<std::vector<GuestPlan>> plan_evacuation(const EvacuateOptions& options);

struct GuestOutcome {
  GuestPlan plan;
  Outcome outcome;
};
std::vector<GuestOutcome> evacuate(const EvacuateOptions& options, const std::vector<GuestPlan>& plan);

}  // namespace utsushi::livemig
