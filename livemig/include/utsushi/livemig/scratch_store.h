#pragma once
// The receiver's scratch space for the blocks memory pages and disk batches
// may refer to (block_index.h's ReceivedBlocks): one run of bytes addressed
// from 0, its first `memory_bytes` in memory (a memfd), the rest in an
// unlinked file in a directory. Neither leaves anything behind, whatever ends
// the process.
//
// Why memory first: on the storage benchmark's machine writing 340 MiB of
// copies through ext4's page cache cost the receiver about a second of CPU
// (new large folios, faulted in by the host), and the migration about as
// much time; a memfd's pages cost a fraction of that. A file behind it keeps
// the room of a large disk's copies. The memory part is bounded by
// scratch_memory_budget(), so that the guest arriving on this host keeps its
// RAM.
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "utsushi/common/error.h"
#include "utsushi/common/fd.h"

namespace utsushi::livemig {

// A quarter of what the host has available beyond the arriving guest's RAM
// (0 when it has less).
[[nodiscard]] std::uint64_t scratch_memory_budget(std::uint64_t mem_available, std::uint64_t guest_ram) noexcept;

class ScratchStore {
 public:
  // The memfd (when `memory_bytes` > 0) and the unlinked file in `dir`.
  [[nodiscard]] static Result<ScratchStore> create(const std::string& dir, std::uint64_t memory_bytes);

  // [offset, offset + bytes.size()) of the run, split where memory ends.
  [[nodiscard]] Result<void> write(std::span<const std::uint8_t> bytes, std::uint64_t offset);
  [[nodiscard]] Result<void> read(std::span<std::uint8_t> out, std::uint64_t offset) const;

  std::uint64_t memory_bytes() const noexcept { return m_memory_bytes; }
  // Bytes free on the file's filesystem when it was created.
  std::uint64_t file_free() const noexcept { return m_file_free; }

 private:
  // Of [offset, offset + length): the bytes in memory (from `offset`), and
  // where the rest starts in the file.
  struct Split {
    std::size_t in_memory;
    std::uint64_t file_offset;
  };
  Split split(std::uint64_t offset, std::size_t length) const noexcept;
  ScratchStore(std::optional<Fd> memory, std::uint64_t memory_bytes, Fd file, std::uint64_t file_free)
      : m_memory(std::move(memory)), m_memory_bytes(memory_bytes), m_file(std::move(file)), m_file_free(file_free) {}

  std::optional<Fd> m_memory;
  std::uint64_t m_memory_bytes;
  Fd m_file;
  std::uint64_t m_file_free;
};

}  // namespace utsushi::livemig
