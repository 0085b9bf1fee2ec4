#pragma once
// PageStore: the last-sent content of every guest page, kept identically by
// the sender (to choose an encoding) and the receiver (to apply it). One
// anonymous MAP_NORESERVE mapping per RAM block, so regions never sent, or
// sent only as zeros, cost no memory; the worst case is one copy of guest
// RAM on each side. A mapping may come from memory faulted in ahead
// (prefault_page_memory), so that the store, which fills in QEMU's first
// pass, does not pay then for a page fault and the kernel's zeroing of each
// new page. Small pages, not transparent huge pages: on the test machines
// (VMs whose memory the host backs on first touch) a huge page was mostly
// memory never touched before, and faulting 512 MiB in took 4.4 s that way
// against 0.2 s in 4 KiB pages; with huge pages advised, perf put the
// kernel's zeroing at a third of the machine's CPU time in the storage
// benchmark's memory phase (both ends' stores and the destination QEMU's RAM).
//
// REQUIRES external synchronisation (one thread owns a store).

#include <cstdint>
#include <cstring>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/livemig/stream_parser.h"

namespace utsushi::livemig {

enum class SlotState : std::uint8_t { unsent, zero, data };

// Move-only owner of an anonymous mapping (zero-filled when made).
class Mapping {
 public:
  Mapping() = default;
  // A fresh mapping, or `size` bytes of the prefaulted memory when it holds
  // that much (page-aligned sizes only).
  [[nodiscard]] static Result<Mapping> anonymous(std::size_t size);
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();
  std::uint8_t* data() const noexcept { return m_data; }

 private:
  friend class PrefaultedMemory;
  std::uint8_t* m_data = nullptr;
  std::size_t m_size = 0;
};

// Maps `bytes` (rounded up to 2 MiB) and faults them in on a thread of its
// own, for the next page stores of this process to take (Mapping::anonymous);
// at most half the memory the system has available (MemAvailable), nothing
// when that cannot be read. Memory a previous call left untaken is released.
// For a caller that knows the guest's RAM size before QEMU's stream starts
// and has idle time until then (the disks' bulk pass).
void prefault_page_memory(std::size_t bytes);

class PageStore {
 public:
  // Allocates slots for `blocks` (all unsent). Fails on allocation failure.
  [[nodiscard]] Result<void> reset(const std::vector<RamBlock>& blocks);

  bool ready() const noexcept { return !m_blocks.empty(); }
  const std::vector<RamBlock>& blocks() const noexcept { return m_blocks; }
  bool valid(std::uint32_t block, std::uint64_t page) const noexcept {
    return block < m_blocks.size() && page < m_blocks[block].pages();
  }
  // REQUIRES: valid(block, page). The pointer stays valid until reset().
  std::uint8_t* page(std::uint32_t block, std::uint64_t page) const noexcept {
    return m_maps[block].data() + page * 4096;
  }
  SlotState state(std::uint32_t block, std::uint64_t page) const noexcept { return m_state[block][page]; }
  // The page's content becomes zeros; a slot never written holds zeros
  // already and stays untouched.
  void clear(std::uint32_t block, std::uint64_t page) noexcept {
    if (m_state[block][page] == SlotState::data) {
      std::memset(this->page(block, page), 0, 4096);
    }
    m_state[block][page] = SlotState::zero;
  }
  void set_state(std::uint32_t block, std::uint64_t page, SlotState s) noexcept { m_state[block][page] = s; }
  std::uint64_t total_bytes() const noexcept;

 private:
  std::vector<RamBlock> m_blocks;
  std::vector<Mapping> m_maps;
  std::vector<std::vector<SlotState>> m_state;
};

}  // namespace utsushi::livemig
