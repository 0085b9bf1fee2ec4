// The receiver's scratch space: memory first, then a file (scratch_store.h).
#include "utsushi/livemig/scratch_store.h"

#include <fcntl.h>
#include <sys/mman.h>

#include <algorithm>

#include "utsushi/common/disk_space.h"

namespace utsushi::livemig {

std::uint64_t scratch_memory_budget(std::uint64_t mem_available, std::uint64_t guest_ram) noexcept {
  return mem_available > guest_ram ? (mem_available - guest_ram) / 4 : 0;
}

Result<ScratchStore> ScratchStore::create(const std::string& dir, std::uint64_t memory_bytes) {
  std::optional<Fd> memory;
  if (memory_bytes > 0) {
    int fd = ::memfd_create("livemig-scratch", MFD_CLOEXEC);
    if (fd < 0) {
      return std::unexpected(errno_error(errno, "the receiver's scratch memory (memfd_create)"));
    }
    memory.emplace(fd);
  }
  Fd file = UTSUSHI_TRY_CTX(open_fd(dir, O_TMPFILE | O_RDWR, 0600), "the receiver's scratch file for referenced blocks");
  const std::uint64_t free = free_space(file.get()).value_or(0);
  return ScratchStore(std::move(memory), memory ? memory_bytes : 0, std::move(file), free);
}

ScratchStore::Split ScratchStore::split(std::uint64_t offset, std::size_t length) const noexcept {
  const std::size_t in_memory =
      offset < m_memory_bytes ? static_cast<std::size_t>(std::min<std::uint64_t>(length, m_memory_bytes - offset)) : 0;
  return {in_memory, offset + in_memory - m_memory_bytes};
}

Result<void> ScratchStore::write(std::span<const std::uint8_t> bytes, std::uint64_t offset) {
  const auto [in_memory, file_at] = split(offset, bytes.size());
  if (in_memory > 0) {
    UTSUSHI_TRY(pwrite_full(m_memory->get(), bytes.first(in_memory), offset, "the scratch memory"));
  }
  if (in_memory < bytes.size()) {
    UTSUSHI_TRY(pwrite_full(m_file.get(), bytes.subspan(in_memory), file_at, "the scratch file"));
  }
  return {};
}

Result<void> ScratchStore::read(std::span<std::uint8_t> out, std::uint64_t offset) const {
  const auto [in_memory, file_at] = split(offset, out.size());
  if (in_memory > 0) {
    UTSUSHI_TRY(pread_full(m_memory->get(), out.first(in_memory), offset, "the scratch memory"));
  }
  if (in_memory < out.size()) {
    UTSUSHI_TRY(pread_full(m_file.get(), out.subspan(in_memory), file_at, "the scratch file"));
  }
  return {};
}

}  // namespace utsushi::livemig
