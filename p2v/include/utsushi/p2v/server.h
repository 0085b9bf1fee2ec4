#pragma once
// `p2v serve`: the conversion-host side of a network capture (protocol:
// wire_format.h). Images are named per client: the capture of image NAME by
// client CLIENT (its host name, or capture --name) is written to
// `DIR/CLIENT/NAME`. An image that exists there already is never replaced:
// the capture is refused (failed_precondition) before anything is written.
// For each disk it receives chunks into a sparse raw temporary
// `DIR/CLIENT/.NAME.p2v-partial/data.raw` with a journal of completed chunks
// (`journal`: 16 bytes per chunk, XXH64 + done flag), made durable (data
// fdatasync'd before the journal entries that name it) at least every
// second; after the client's DONE it writes `DIR/CLIENT/NAME` (qcow2 through
// imagefmt, or the raw file itself) atomically and removes the partial
// directory. A session that breaks leaves the partial directory; the same
// capture run again resumes from the journal.
// Connections are accepted by the link layer's loop (common/link/server.h):
// handshakes run concurrently under one deadline each, idle or hostile peers
// cannot lock out a real client, and up to `sessions` captures run at once.
// A plan that cannot fit in the output directory's free space (or in
// memory) is refused before anything is allocated; no message a peer sends
// ends the server.

#include <cstdint>
#include <functional>
#include <string>

#include "utsushi/common/error.h"

namespace utsushi::p2v {

struct ServeOptions {
  std::string listen;      // ADDR:PORT
  std::string token;
  std::string output_dir;
  bool once = false;       // exit after the first session that completes a disk set
  unsigned threads = 0;    // for the final qcow2 write
  unsigned sessions = 4;   // captures received at once
  // Called once listening, with the bound port (useful with port 0).
  std::function<void(std::uint16_t)> on_listening;
  // Called with one line per event ("listening on ...", "wrote ...").
  std::function<void(const std::string&)> report;
};

// Serves until cancelled (SIGINT/SIGTERM: returns Errc::cancelled) or, with
// `once`, until one session has finished.
[[nodiscard]] Result<void> serve(const ServeOptions& options);

}  // namespace utsushi::p2v
