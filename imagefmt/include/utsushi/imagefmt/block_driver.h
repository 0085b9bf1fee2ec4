#pragma once
// The block-driver interface: the one seam between image formats, devices and
// everything that copies data. Shaped like nbdkit's plugin API: a driver
// implements size(), capabilities() and pread(); everything else is optional.
//
// What the core (BlockDevice, block_device.h) guarantees every driver:
//  - offset + length never overflows and never exceeds size();
//  - length > 0;
//  - requests are multiples of capabilities().request_alignment and no larger
//    than capabilities().max_transfer (when non-zero);
//  - pwrite/zero/discard/flush are called only when can_write is true;
//  - zero/discard/extents are called only when can_zero/can_discard/can_extents;
//  - calls are serialised unless capabilities().thread_safe.
// Drivers therefore never repeat these checks.
//
// verify_integrity() is the one call that is about the whole image rather
// than a range: a driver whose format carries checks over whole files (an OVA
// manifest's digests) makes them there. Drivers stacked on other devices
// (filters, formats over a file) forward it.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"

namespace utsushi::imagefmt {

// What reading a range returns and what is allocated behind it.
enum class ExtentType : std::uint8_t {
  data,  // allocated; contents must be read
  zero,  // allocated (or preallocated) but reads as zeros
  hole,  // not allocated here; reads as zeros
};
std::string_view extent_type_name(ExtentType t) noexcept;

// host_offset: where the extent's bytes start in the image file itself, when
// the format stores them uncompressed there (raw: the guest offset; qcow2:
// the cluster's offset). Unknown for holes, zeros, compressed data and data
// that lives in a backing file.
inline constexpr std::uint64_t k_no_host_offset = UINT64_MAX;

struct Extent {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  ExtentType type = ExtentType::data;
  std::uint64_t host_offset = k_no_host_offset;
  friend bool operator==(const Extent&, const Extent&) = default;
};

// Whether `next` continues `prev`: adjacent, same type, and (when they have
// host offsets) contiguous in the host file too.
bool extent_continues(const Extent& prev, const Extent& next) noexcept;

struct Capabilities {
  bool can_write = false;
  bool can_flush = false;
  bool can_zero = false;      // native, efficient zeroing (otherwise emulated with writes)
  bool can_discard = false;   // advisory; discarded ranges need not read back as zeros
  bool can_extents = false;   // otherwise the whole device is reported as data
  bool thread_safe = false;   // pread/pwrite may run concurrently
  std::uint32_t request_alignment = 1;    // power of two
  std::uint32_t max_transfer = 0;         // 0: no limit
  std::uint32_t preferred_io_size = 1u << 20;  // a good chunk size for streaming copies
};

enum class ZeroMode {
  write_zeroes,  // the range must read as zeros; allocation may stay
  may_unmap,     // the range must read as zeros; the driver may deallocate it
};

class BlockDriver {
 public:
  virtual ~BlockDriver() = default;
  BlockDriver() = default;
  BlockDriver(const BlockDriver&) = delete;
  BlockDriver& operator=(const BlockDriver&) = delete;

  // The format or device kind ("raw", "qcow2"...).
  virtual std::string_view format_name() const = 0;
  // What error messages call this device: usually the file or device path.
  virtual const std::string& description() const = 0;
  // Virtual size in bytes; fixed for the driver's lifetime.
  virtual std::uint64_t size() const = 0;
  // Read once by the core when the device is opened.
  virtual Capabilities capabilities() const = 0;

  // Fills buf with the bytes at [offset, offset + buf.size()).
  [[nodiscard]] virtual Result<void> pread(std::span<std::uint8_t> buf, std::uint64_t offset) = 0;
  [[nodiscard]] virtual Result<void> pwrite(std::span<const std::uint8_t> buf, std::uint64_t offset);
  // Makes the range read as zeros. Errc::not_supported means "emulate me".
  [[nodiscard]] virtual Result<void> zero(std::uint64_t offset, std::uint64_t length, ZeroMode mode);
  [[nodiscard]] virtual Result<void> discard(std::uint64_t offset, std::uint64_t length);
  // Makes every completed write durable.
  [[nodiscard]] virtual Result<void> flush();
  // Appends extents describing [offset, offset + length) to `out`, in order,
  // contiguous, starting exactly at `offset`. It may stop early (at least one
  // extent) or run past the end of the range; the core clips and asks again.
  [[nodiscard]] virtual Result<void> extents(std::uint64_t offset, std::uint64_t length, std::vector<Extent>& out);
  // Called once a caller has read everything it is going to read (a whole
  // conversion, a check): completes the checks that need whole files, reading
  // what was not read yet, and fails with Errc::corruption when one fails.
  // Safe to call more than once (the verdict is kept). Default: nothing to check.
  [[nodiscard]] virtual Result<void> verify_integrity();
};

}  // namespace utsushi::imagefmt
