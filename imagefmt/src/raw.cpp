#include "utsushi/imagefmt/raw.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "utsushi/imagefmt/probe.h"

namespace utsushi::imagefmt {
namespace {

class RawDriver final : public BlockDriver {
 public:
  RawDriver(Fd fd, std::string description, Access access, bool is_block, std::uint64_t size,
            std::uint32_t logical_block, bool probed)
      : m_fd(std::move(fd)),
        m_description(std::move(description)),
        m_writable(access == Access::read_write),
        m_is_block(is_block),
        m_size(size),
        m_logical_block(logical_block),
        m_probed(probed) {}

  std::string_view format_name() const override { return "raw"; }
  const std::string& description() const override { return m_description; }
  std::uint64_t size() const override { return m_size; }

  Capabilities capabilities() const override {
    Capabilities c;
    c.can_write = m_writable;
    c.can_flush = m_writable;
    c.can_zero = m_writable;
    c.can_discard = m_writable;
    c.can_extents = !m_is_block;
    c.thread_safe = true;
    c.request_alignment = 1;  // buffered I/O: the kernel handles alignment
    c.preferred_io_size = 4u << 20;
    return c;
  }

  Result<void> pread(std::span<std::uint8_t> buf, std::uint64_t offset) override {
    return pread_full(m_fd.get(), buf, offset, m_description);
  }

  Result<void> pwrite(std::span<const std::uint8_t> buf, std::uint64_t offset) override {
    if (m_probed && offset < 512) {
      UTSUSHI_TRY(check_first_sector_write(buf, offset));
    }
    return pwrite_full(m_fd.get(), buf, offset, m_description);
  }

  Result<void> zero(std::uint64_t offset, std::uint64_t length, ZeroMode mode) override {
    if (m_is_block) {
      return zero_block(offset, length, mode);
    }
    // Punching a hole keeps the file sparse; ZERO_RANGE keeps the allocation.
    int flags = mode == ZeroMode::may_unmap ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) : FALLOC_FL_ZERO_RANGE;
    if (::fallocate(m_fd.get(), flags, static_cast<off_t>(offset), static_cast<off_t>(length)) == 0) {
      return {};
    }
    if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) {
      if (mode == ZeroMode::write_zeroes &&
          ::fallocate(m_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                      static_cast<off_t>(length)) == 0) {
        return {};
      }
      return fail(Errc::not_supported, m_description + ": fallocate not supported");
    }
    return fail_errno(errno, m_description + ": zero " + std::to_string(length) + " bytes at " + std::to_string(offset));
  }

  Result<void> discard(std::uint64_t offset, std::uint64_t length) override {
    if (m_is_block) {
      auto [start, end] = inner_blocks(offset, length);
      if (end <= start) {
        return {};
      }
      std::uint64_t range[2] = {start, end - start};
      if (::ioctl(m_fd.get(), BLKDISCARD, range) != 0) {
        return fail(Errc::not_supported, m_description + ": BLKDISCARD failed");
      }
      return {};
    }
    if (::fallocate(m_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(length)) != 0) {
      return fail(Errc::not_supported, m_description + ": cannot punch hole");
    }
    return {};
  }

  Result<void> flush() override {
    if (::fdatasync(m_fd.get()) != 0) {
      return fail_errno(errno, m_description + ": flush");
    }
    return {};
  }

  Result<void> extents(std::uint64_t offset, std::uint64_t length, std::vector<Extent>& out) override {
    const std::uint64_t end = offset + length;
    std::uint64_t pos = offset;
    // Report a bounded number of extents per call; the core asks again.
    for (int i = 0; i < 1024 && pos < end; ++i) {
      off_t data = ::lseek(m_fd.get(), static_cast<off_t>(pos), SEEK_DATA);
      if (data < 0) {
        if (errno == ENXIO) {  // no data after pos: a hole to the end
          out.push_back({pos, end - pos, ExtentType::hole});
          return {};
        }
        if (errno == EINVAL || errno == EOPNOTSUPP) {  // filesystem without SEEK_DATA
          out.push_back({pos, end - pos, ExtentType::data});
          return {};
        }
        return fail_errno(errno, m_description + ": SEEK_DATA");
      }
      auto d = static_cast<std::uint64_t>(data);
      if (d > pos) {
        out.push_back({pos, std::min(d, end) - pos, ExtentType::hole});
        pos = std::min(d, end);
        continue;
      }
      off_t hole = ::lseek(m_fd.get(), static_cast<off_t>(pos), SEEK_HOLE);
      if (hole < 0) {
        return fail_errno(errno, m_description + ": SEEK_HOLE");
      }
      std::uint64_t h = std::min(static_cast<std::uint64_t>(hole), end);
      if (h <= pos) {  // racing truncate; report the rest as data
        h = end;
      }
      out.push_back({pos, h - pos, ExtentType::data, pos});
      pos = h;
    }
    return {};
  }

 private:
  std::pair<std::uint64_t, std::uint64_t> inner_blocks(std::uint64_t offset, std::uint64_t length) const {
    std::uint64_t b = m_logical_block;
    std::uint64_t start = (offset + b - 1) / b * b;
    std::uint64_t end = (offset + length) / b * b;
    return {start, end};
  }

  // BLKZEROOUT needs logical-block alignment; unaligned edges are written.
  // may_unmap first tries fallocate(PUNCH_HOLE) on the device, which the
  // kernel serves only by an unmapping zero-out that reads back as zeros
  // (WRITE ZEROES with unmap, a loop device's punched backing file) and
  // refuses otherwise; BLKZEROOUT then keeps the allocation.
  Result<void> zero_block(std::uint64_t offset, std::uint64_t length, ZeroMode mode) {
    auto [start, end] = inner_blocks(offset, length);
    if (end <= start) {
      return fail(Errc::not_supported, m_description + ": zero range smaller than a block");
    }
    std::vector<std::uint8_t> zeros(m_logical_block, 0);
    if (start > offset) {
      UTSUSHI_TRY(pwrite_full(m_fd.get(), std::span(zeros).first(start - offset), offset, m_description));
    }
    if (offset + length > end) {
      UTSUSHI_TRY(pwrite_full(m_fd.get(), std::span(zeros).first(offset + length - end), end, m_description));
    }
    if (mode == ZeroMode::may_unmap &&
        ::fallocate(m_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(start),
                    static_cast<off_t>(end - start)) == 0) {
      return {};
    }
    std::uint64_t range[2] = {start, end - start};
    if (::ioctl(m_fd.get(), BLKZEROOUT, range) != 0) {
      if (errno == EOPNOTSUPP || errno == EINVAL) {
        return fail(Errc::not_supported, m_description + ": BLKZEROOUT not supported");
      }
      return fail_errno(errno, m_description + ": BLKZEROOUT at " + std::to_string(start));
    }
    return {};
  }

  // QEMU's rule for probed raw images: a guest must not turn the image into
  // something that probes as another format on the next open.
  Result<void> check_first_sector_write(std::span<const std::uint8_t> buf, std::uint64_t offset) {
    std::vector<std::uint8_t> sector(512, 0);
    std::uint64_t have = std::min<std::uint64_t>(512, m_size);
    UTSUSHI_TRY(pread_full(m_fd.get(), std::span(sector).first(have), 0, m_description));
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), 512 - offset));
    std::copy_n(buf.begin(), n, sector.begin() + static_cast<std::ptrdiff_t>(offset));
    auto probed = probe_format(sector, m_size);
    if (probed.format != "raw") {
      return fail(Errc::permission_denied, m_description + ": refusing to write a " + probed.format +
                                               " header into an image probed as raw (name the format explicitly)");
    }
    return {};
  }

  Fd m_fd;
  std::string m_description;
  bool m_writable;
  bool m_is_block;
  std::uint64_t m_size;
  std::uint32_t m_logical_block;
  bool m_probed;
};

std::string sysfs_dir(dev_t rdev) {
  return "/sys/dev/block/" + std::to_string(major(rdev)) + ":" + std::to_string(minor(rdev));
}

// Mount points of filesystems on `rdev`, from /proc/self/mountinfo.
std::string mounted_at(dev_t rdev) {
  std::ifstream mi("/proc/self/mountinfo");
  std::string line;
  std::string want = std::to_string(major(rdev)) + ":" + std::to_string(minor(rdev));
  while (std::getline(mi, line)) {
    std::istringstream fields(line);
    std::string id, parent, majmin, root, mountpoint;
    fields >> id >> parent >> majmin >> root >> mountpoint;
    if (majmin == want) {
      return mountpoint;
    }
  }
  return {};
}

std::string read_dev_file(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

Result<std::string> busy_reason_for(dev_t rdev, const std::string& name) {
  if (std::string mp = mounted_at(rdev); !mp.empty()) {
    return name + " is mounted at " + mp;
  }
  std::error_code ec;
  std::string dir = sysfs_dir(rdev);
  for (const auto& h : std::filesystem::directory_iterator(dir + "/holders", ec)) {
    return name + " is in use by " + h.path().filename().string();
  }
  return std::string();
}

}  // namespace

bool is_block_device(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

Result<std::string> block_device_busy_reason(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return fail_errno(errno, "cannot stat '" + path + "'");
  }
  if (!S_ISBLK(st.st_mode)) {
    return std::string();
  }
  std::string reason = UTSUSHI_TRY(busy_reason_for(st.st_rdev, path));
  if (!reason.empty()) {
    return reason;
  }
  // Partitions of a whole disk: subdirectories of its sysfs node with a dev file.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(sysfs_dir(st.st_rdev), ec)) {
    std::string dev = read_dev_file(entry.path().string() + "/dev");
    if (dev.empty() || !std::filesystem::exists(entry.path() / "partition")) {
      continue;
    }
    unsigned maj = 0, min = 0;
    if (std::sscanf(dev.c_str(), "%u:%u", &maj, &min) == 2) {
      std::string part_reason =
          UTSUSHI_TRY(busy_reason_for(makedev(maj, min), "partition " + entry.path().filename().string()));
      if (!part_reason.empty()) {
        return part_reason + " (on " + path + ")";
      }
    }
  }
  // Active swap on the device itself.
  std::ifstream swaps("/proc/swaps");
  std::string line;
  std::getline(swaps, line);  // header
  while (std::getline(swaps, line)) {
    std::string swap_path = line.substr(0, line.find_first_of(" \t"));
    struct stat sst {};
    if (::stat(swap_path.c_str(), &sst) == 0 && S_ISBLK(sst.st_mode) && sst.st_rdev == st.st_rdev) {
      return path + " is in use as swap";
    }
  }
  return std::string();
}

namespace {

// Builds a driver over an open descriptor: size and block size from the kernel.
Result<std::unique_ptr<BlockDriver>> make_raw(Fd fd, std::string description, Access access, bool probed) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return fail_errno(errno, "cannot stat '" + description + "'");
  }
  std::uint64_t size = 0;
  std::uint32_t logical = 512;
  bool is_block = S_ISBLK(st.st_mode);
  if (is_block) {
    if (::ioctl(fd.get(), BLKGETSIZE64, &size) != 0) {
      return fail_errno(errno, description + ": BLKGETSIZE64");
    }
    int ssz = 0;
    if (::ioctl(fd.get(), BLKSSZGET, &ssz) == 0 && ssz > 0) {
      logical = static_cast<std::uint32_t>(ssz);
    }
  } else if (S_ISREG(st.st_mode)) {
    size = static_cast<std::uint64_t>(st.st_size);
  } else {
    return fail(Errc::invalid_argument, "'" + description + "' is neither a regular file nor a block device");
  }
  return std::unique_ptr<BlockDriver>(
      std::make_unique<RawDriver>(std::move(fd), std::move(description), access, is_block, size, logical, probed));
}

}  // namespace

Result<std::unique_ptr<BlockDriver>> raw_from_fd(Fd fd, std::string description, Access access) {
  return make_raw(std::move(fd), std::move(description), access, false);
}

Result<std::unique_ptr<BlockDriver>> open_raw(const std::string& path, const RawOpenOptions& options) {
  bool block = is_block_device(path);
  int flags = options.access == Access::read_write ? O_RDWR : O_RDONLY;
  if (block && options.access == Access::read_write) {
    std::string busy = UTSUSHI_TRY(block_device_busy_reason(path));
    if (!busy.empty()) {
      return fail(Errc::failed_precondition, "refusing to write to " + path + ": " + busy);
    }
    flags |= O_EXCL;  // the kernel refuses if anything else claims the device
  }
  auto fd = open_input(path, flags);
  if (!fd) {
    if (fd.error().sys_errno() == EBUSY) {
      return fail(Errc::failed_precondition, "refusing to write to " + path + ": the device is in use (mounted, "
                                             "mapped or opened exclusively by another program)");
    }
    return std::unexpected(std::move(fd).error());
  }
  return make_raw(std::move(*fd), path, options.access, options.probed);
}

}  // namespace utsushi::imagefmt
