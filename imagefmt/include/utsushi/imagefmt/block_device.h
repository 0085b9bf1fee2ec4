#pragma once
// BlockDevice: the front end every caller uses. It owns a driver, reads its
// capabilities once, checks every range (overflow and bounds), splits requests
// to the driver's max_transfer, handles unaligned requests by bounce buffers
// and read-modify-write, serialises calls to drivers that are not thread-safe,
// and emulates what the driver lacks:
//   zero      -> writes of a zero buffer
//   discard   -> nothing (discard is advisory)
//   flush     -> nothing when the driver has no cache to flush
//   extents   -> one data extent covering the range
// Thread-safety: safe for concurrent use when the driver is thread_safe (or
// because the front end then serialises); unaligned writes take a lock.

#include <memory>
#include <mutex>

#include "utsushi/imagefmt/block_driver.h"

namespace utsushi::imagefmt {

class BlockDevice {
 public:
  explicit BlockDevice(std::unique_ptr<BlockDriver> driver);
  BlockDevice(const BlockDevice&) = delete;
  BlockDevice& operator=(const BlockDevice&) = delete;

  std::string_view format_name() const { return m_driver->format_name(); }
  const std::string& description() const { return m_driver->description(); }
  std::uint64_t size() const noexcept { return m_size; }
  const Capabilities& capabilities() const noexcept { return m_caps; }
  BlockDriver& driver() noexcept { return *m_driver; }

  [[nodiscard]] Result<void> pread(std::span<std::uint8_t> buf, std::uint64_t offset);
  [[nodiscard]] Result<void> pwrite(std::span<const std::uint8_t> buf, std::uint64_t offset);
  [[nodiscard]] Result<void> zero(std::uint64_t offset, std::uint64_t length,
                                  ZeroMode mode = ZeroMode::write_zeroes);
  [[nodiscard]] Result<void> discard(std::uint64_t offset, std::uint64_t length);
  [[nodiscard]] Result<void> flush();
  // Extents covering exactly [offset, offset + length), in order, adjacent
  // extents of the same type merged.
  [[nodiscard]] Result<std::vector<Extent>> extents(std::uint64_t offset, std::uint64_t length);
  [[nodiscard]] Result<std::vector<Extent>> extents() { return extents(0, m_size); }
  // The driver's whole-image checks (BlockDriver::verify_integrity): call
  // after reading everything that will be read, before trusting the result.
  [[nodiscard]] Result<void> verify_integrity();

  // Checks that [offset, offset + length) lies inside the device.
  [[nodiscard]] Result<void> check_range(std::uint64_t offset, std::uint64_t length, std::string_view op) const;

 private:
  [[nodiscard]] Result<void> read_aligned(std::span<std::uint8_t> buf, std::uint64_t offset);
  [[nodiscard]] Result<void> write_aligned(std::span<const std::uint8_t> buf, std::uint64_t offset);
  [[nodiscard]] Result<void> read_unaligned(std::span<std::uint8_t> buf, std::uint64_t offset);
  [[nodiscard]] Result<void> write_unaligned(std::span<const std::uint8_t> buf, std::uint64_t offset);
  [[nodiscard]] Result<void> emulate_zero(std::uint64_t offset, std::uint64_t length);
  [[nodiscard]] Result<void> require_writable(std::string_view op) const;
  std::unique_lock<std::mutex> maybe_lock();

  std::unique_ptr<BlockDriver> m_driver;
  Capabilities m_caps;
  std::uint64_t m_size;
  std::uint64_t m_chunk;  // largest single driver request
  std::mutex m_driver_mutex;  // serialises calls into drivers that are not thread-safe
  std::mutex m_rmw_mutex;     // serialises read-modify-write cycles of unaligned writes
};

}  // namespace utsushi::imagefmt
