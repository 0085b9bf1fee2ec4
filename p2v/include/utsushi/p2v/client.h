#pragma once
// The capture side of a network capture: plans the disk locally, then
// streams its used ranges to a `p2v serve` (server.h) as zstd-compressed
// chunks, each with an XXH64 of its plain bytes. Protocol: wire_format.h.
// Re-running the same command after an interruption sends only the chunks the
// server does not already hold.

#include <string>

#include "utsushi/common/progress.h"
#include "utsushi/p2v/capture.h"

namespace utsushi::p2v {

struct ClientOptions {
  std::string address;  // HOST:PORT
  std::string token;     // at least auth::k_min_token_size bytes (common/auth.h)
  // The name the server files this host's images under (DIR/CLIENT/IMAGE);
  // empty: this host's name (default_client_name).
  std::string client_name;
  OutputFormat format = OutputFormat::qcow2;
  bool compress_image = false;  // the server writes zstd qcow2 clusters
  bool verify = false;          // the server re-reads its image against the chunk hashes
  unsigned threads = 0;         // readers/compressors (0: one per core, at least 4)
  int max_retries = 3;          // re-sends of a chunk the server found corrupt
  ProgressFn progress;
};

struct SendResult {
  std::string remote_path;
  std::uint64_t used_bytes = 0;
  std::uint64_t chunks_sent = 0;
  std::uint64_t chunks_skipped = 0;  // already on the server (resume)
  std::uint64_t wire_bytes = 0;
  std::uint64_t resent = 0;
  double seconds = 0;
};

// This host's name, as a client name (wire::check_name).
[[nodiscard]] Result<std::string> default_client_name();

// Sends one disk as image `image_name` (a plain file name: wire::check_name).
// Fails with permission_denied when the server refuses the token,
// not_supported when it speaks another protocol version, unavailable when it
// cannot be reached, is busy or the link drops, failed_precondition when it
// refuses the image (it exists there; no room), corruption when a chunk stays
// corrupt after max_retries re-sends or a reply is malformed.
[[nodiscard]] Result<SendResult> send_disk(const std::string& source, const std::string& image_name, const ClientOptions& options);

}  // namespace utsushi::p2v
