#pragma once
// `p2v serve`: the conversion-host side of a network capture (protocol:
// wire_format.h). For each disk it receives chunks into a sparse raw
// temporary `DIR/.NAME.p2v-partial/data.raw` with a journal of completed
// chunks (`journal`: 16 bytes per chunk, XXH64 + done flag), made durable
// (data fdatasync'd before the journal entries that name it) at least every
// second; after the client's DONE it writes `DIR/NAME` (qcow2 through
// imagefmt, or the raw file itself) atomically and removes the partial
// directory. A session that breaks leaves the partial directory; the same
// capture run again resumes from the journal. Sessions are served one at a
// time; a peer that fails authentication gets an error and nothing is
// written.

#include <functional>
#include <string>
#include <vector>

#include "utsushi/common/error.h"

namespace utsushi::p2v {

struct ServeOptions {
  std::string listen;      // ADDR:PORT
  std::string token;
  std::string output_dir;
  bool once = false;       // exit after the first session that completes a disk set
  unsigned threads = 0;    // for the final qcow2 write
  // Called with one line per event ("listening on ...", "wrote ...").
  std::function<void(const std::string&)> report;
  // Called after a session has written all its disks and the client has gone,
  // with their paths in the order they arrived (serve --convert converts them
  // as one machine). Its error is logged, or with `once` returned by serve().
  std::function<Result<void>(const std::vector<std::string>& images)> on_complete;
};

// Serves until cancelled (SIGINT/SIGTERM: returns Errc::cancelled) or, with
// `once`, until one session has finished.
Result<void> serve(const ServeOptions& options);

}  // namespace utsushi::p2v
