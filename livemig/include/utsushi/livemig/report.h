#pragma once
// The outcome of one migration, as printed by the CLI (text or one JSON
// object). Fields that could not be measured are -1.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "utsushi/common/error.h"
#include "utsushi/livemig/batch_compressor.h"
#include "utsushi/livemig/page_codec.h"

namespace utsushi::livemig {

// How one migration (or one guest of an evacuation) ended. Its to_string()
// names are part of the --json output ("status") that users and tests parse:
// they never change.
enum class ReportStatus {
  ok,         // the destination runs (sender: and the source was handled)
  failed,     // did not migrate; the source keeps (or got back) the guest
  refused,    // refused before anything was changed (e.g. unsupported QEMU)
  cancelled,  // stopped by a signal; the source keeps the guest
  timeout,    // the policy's time limit ran out; the source keeps the guest
  unknown,    // stream delivered, the destination's fate not confirmed: the
              // source is left paused (session.h says what to check)
  skipped,    // evacuate: not attempted (an earlier guest's failure stopped it)
};

// The JSON/text name of `s` ("ok", "failed", ...).
std::string_view to_string(ReportStatus s);
// The status named `name` (the inverse of to_string), or nullopt.
std::optional<ReportStatus> parse_report_status(std::string_view name);
// "refused" for an error that refuses the job (Errc::not_supported), "failed" otherwise.
ReportStatus status_for(const Error& e);

// One disk of a --copy-storage migration (sender: what it read and sent;
// receiver: what it wrote). Bytes are the disk's, before compression, except
// wire_bytes (the disk_data frames on the link, headers included).
struct DiskReport {
  std::string node;                   // the disk's top node on this end
  std::string file;                   // its image file on this end
  std::uint64_t size = 0;             // virtual size
  std::uint64_t allocated_bytes = 0;  // sender: allocated anywhere in the chain (allocation depth >= 1)
  std::uint64_t backing_bytes = 0;    // sender: held by a backing file, so not sent (depth >= 2)
  std::uint64_t data_bytes = 0;       // data ranges sent (receiver: written), all passes
  std::uint64_t zero_bytes = 0;       // zero ranges (no bytes travel)
  std::uint64_t copied_bytes = 0;     // of data_bytes: blocks the destination held, sent as hashes
  std::uint64_t wire_bytes = 0;       // disk_data frames on the link
  std::uint64_t batches = 0;
  std::string hash;                   // DiskWriteHash (disk_hash.h) of every range sent or written
};

// One pass over every disk: "bulk" (pass 0: the top images), "dirty-N"
// (before the memory migration), "final" (the source paused before its
// switch-over).
// One phase of the disk copy; the dirty passes that run while memory moves
// ("follow") add up in one.
struct DiskPhaseReport {
  std::string phase;
  std::uint64_t data_bytes = 0;
  std::uint64_t zero_bytes = 0;
  std::uint64_t copied_bytes = 0;  // of data_bytes: sent as hashes
  std::uint64_t wire_bytes = 0;
  std::int64_t ms = 0;
  unsigned passes = 1;
};

struct Report {
  ReportStatus status = ReportStatus::failed;
  std::string error;
  std::string source_qmp;
  std::string qemu_version;
  std::uint64_t bytes_from_qemu = 0;   // stream bytes read from the source QEMU
  std::uint64_t bytes_on_wire = 0;     // link bytes, both directions, frame headers included
  std::uint64_t bytes_to_qemu = 0;     // stream bytes the receiver fed the destination
  std::uint64_t frames = 0;
  std::uint64_t rounds = 0;            // QEMU dirty-sync-count
  std::uint64_t sections = 0;          // RAM PART/END sections parsed
  std::int64_t total_ms = -1;          // migrate command (--copy-storage: the disk copy's start) to destination running
  std::int64_t downtime_ms = -1;       // source STOP event to destination RESUME event
  std::int64_t qemu_downtime_ms = -1;  // QEMU's source-side downtime figure
  std::uint32_t downtime_limit_ms = 0; // QEMU downtime-limit at the end
  std::uint32_t policy_steps = 0;
  bool converged = false;
  // The destination was held paused after loading and the commit handshake
  // ran ("ready" was reported; session.h): it starts only on "go".
  bool held = false;
  std::string source_state;            // runstate of the source guest at the end
  // XXH3-64 (hex) of QEMU's migration stream: on the source as read from
  // QEMU, on the destination as fed to QEMU. Equal on both ends whenever the
  // stream was delivered; empty when no stream was read or fed.
  std::string stream_hash;
  // Sender only: the hash the receiver reported for what it fed the destination.
  std::string dest_stream_hash;
  KindTable kinds{};
  // Where the link bytes went besides page tokens (sender side).
  ZstdLevelBytes level_bytes{};       // token bytes compressed at each zstd level
  std::uint64_t frames_received = 0;
  std::uint64_t data_frames = 0;
  std::uint64_t data_payload_bytes = 0;  // compressed payload of DATA frames
  std::int64_t link_busy_ms = -1;        // time spent sending frames (the link's share of total_ms)
  std::int64_t qemu_wait_ms = -1;        // time the pump waited for QEMU's stream
  std::int64_t flow_wait_ms = -1;        // time the pump waited for the receiver (flow control)
  // --copy-storage: per disk, and (sender) per pass; empty without it.
  std::vector<DiskReport> disks;
  std::vector<DiskPhaseReport> disk_phases;
  // --copy-storage, sender: how long QEMU's first memory pass was held near
  // its end for the disks' pre-copy (first_pass_hold.h); 0: not held.
  std::int64_t first_pass_held_ms = 0;
};

nlohmann::json report_json(const Report& r);
std::string report_text(const Report& r);

}  // namespace utsushi::livemig
