#pragma once
// DigestFilter (internal to imagefmt): a filter over one archive member that
// hashes the member's bytes in order while they are read, so a conversion
// verifies the manifest's digest in the same pass that reads the disk.
//
// The hashed prefix [0, H) grows with the reads: a read that starts at most
// k_ova_digest_window bytes after H also hashes the gap before it (read once
// more from below: padding, markers, or bytes another thread is reading at
// the same time) and then its own bytes; a read further ahead is served
// unhashed and its bytes are hashed when H reaches them. Once H is within the
// window of the end, the rest is hashed at once and the digest compared: a mismatch fails
// that read and every later call, naming the member. verify_integrity()
// hashes whatever is left and gives the verdict, so a caller that read
// everything it needs always gets one. A member read only partly (`info`
// reads headers) is verified only when H reaches the end that way.

#include <atomic>
#include <mutex>
#include <optional>

#include "package.h"
#include "utsushi/imagefmt/filter.h"
#include "utsushi/imagefmt/ova.h"

namespace utsushi::imagefmt::ova {

class DigestFilter final : public FilterDriver {
 public:
  // `member` holds the member's bytes; `entry` is its manifest line.
  [[nodiscard]] static Result<std::unique_ptr<BlockDriver>> create(std::unique_ptr<BlockDevice> member,
                                                                   ManifestEntry entry, std::string path,
                                                                   std::string manifest_name);

  [[nodiscard]] Result<void> pread(std::span<std::uint8_t> buf, std::uint64_t offset) override;
  [[nodiscard]] Result<void> verify_integrity() override;

 private:
  DigestFilter(std::unique_ptr<BlockDevice> member, Digest digest, ManifestEntry entry, std::string path,
               std::string manifest_name);
  // All under m_mutex.
  [[nodiscard]] Result<void> account(std::span<const std::uint8_t> buf, std::uint64_t offset);
  [[nodiscard]] Result<void> hash_below(std::uint64_t end);
  [[nodiscard]] Result<void> finish();
  [[nodiscard]] Result<void> verdict() const;

  Digest m_digest;
  ManifestEntry m_entry;
  std::string m_path;
  std::string m_manifest_name;
  std::mutex m_mutex;
  std::atomic<std::uint64_t> m_hashed{0};  // H; only grows
  std::atomic<bool> m_failed{false};       // the digest did not match
  bool m_finished = false;
  std::optional<Error> m_mismatch;
};

}  // namespace utsushi::imagefmt::ova
