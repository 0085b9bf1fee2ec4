#pragma once
// NbdClient: one libnbd connection to one export of a QEMU NBD server on a
// UNIX socket (disk_exports.h starts the servers and exports). The source
// side lists extents and reads; the destination side writes, zeroes and
// flushes. Move-only; the destructor closes the connection (nbd_close).
//
// Errors: a libnbd call that fails is Errc::io_error (ENOSPC: no_space) with
// libnbd's own message and errno, prefixed with the export's name; a request
// outside the export is Errc::out_of_range before anything is sent.
//
// Requests larger than the server takes are cut: reads and writes into pieces
// of at most k_nbd_max_request, block status asked again from where the
// server's answer ended, until the whole range is covered.
//
// REQUIRES external synchronisation: one thread uses a client at a time.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/livemig/disk_extents.h"

struct nbd_handle;

namespace utsushi::livemig {

inline constexpr std::uint64_t k_nbd_max_request = 32u << 20;  // QEMU's NBD_MAX_BUFFER_SIZE

inline constexpr const char* k_context_allocation = "base:allocation";
inline constexpr const char* k_context_depth = "qemu:allocation-depth";
// "qemu:dirty-bitmap:NAME" for the bitmap NAME.
std::string dirty_bitmap_context(const std::string& bitmap);

class NbdClient {
 public:
  // Connects to export `name` of the server on `socket`, asking for the meta
  // contexts `contexts` (those extents() will read); Errc::not_supported when
  // the server does not offer one of them.
  [[nodiscard]] static Result<NbdClient> connect(const std::string& socket, const std::string& name,
                                                 const std::vector<std::string>& contexts = {});

  NbdClient(NbdClient&&) noexcept = default;
  NbdClient& operator=(NbdClient&&) noexcept = default;
  ~NbdClient();

  std::uint64_t size() const noexcept { return m_size; }
  bool read_only() const noexcept { return m_read_only; }
  const std::string& name() const noexcept { return m_name; }

  // The extents of `context` over [offset, offset + length), in order, without
  // gaps, clipped to that range.
  [[nodiscard]] Result<std::vector<NbdExtent>> extents(const std::string& context, std::uint64_t offset,
                                                       std::uint64_t length);
  // The extents of `context` over the whole export.
  [[nodiscard]] Result<std::vector<NbdExtent>> extents(const std::string& context) {
    return extents(context, 0, m_size);
  }
  [[nodiscard]] Result<void> read(std::uint64_t offset, std::span<std::uint8_t> out);
  [[nodiscard]] Result<void> write(std::uint64_t offset, std::span<const std::uint8_t> data);
  // Makes [offset, offset + length) read as zeros (NBD WRITE_ZEROES; QEMU may
  // leave it unallocated or a zero cluster).
  [[nodiscard]] Result<void> zero(std::uint64_t offset, std::uint64_t length);
  [[nodiscard]] Result<void> flush();
  // Ends the connection cleanly (NBD_CMD_DISC): QEMU deletes an export only
  // once no client is connected. The destructor does the same, ignoring errors.
  [[nodiscard]] Result<void> shutdown();

 private:
  struct Close {
    void operator()(nbd_handle* h) const noexcept;
  };
  NbdClient(std::unique_ptr<nbd_handle, Close> h, std::string name, std::uint64_t size, bool read_only)
      : m_h(std::move(h)), m_name(std::move(name)), m_size(size), m_read_only(read_only) {}
  [[nodiscard]] Result<void> check_range(std::uint64_t offset, std::uint64_t length, const char* what) const;
  Error nbd_error(const std::string& what) const;

  std::unique_ptr<nbd_handle, Close> m_h;
  std::string m_name;
  std::uint64_t m_size = 0;
  bool m_read_only = true;
};

}  // namespace utsushi::livemig
