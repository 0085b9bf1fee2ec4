#pragma once
// PageStore: the last-sent content of every guest page, kept identically by
// the sender (to choose an encoding) and the receiver (to apply it). One
// anonymous MAP_NORESERVE mapping per RAM block (huge pages advised), so
// regions never sent cost no memory; the worst case is one copy of guest RAM
// on each side.
//
// REQUIRES external synchronisation (one thread owns a store).

#include <cstdint>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/livemig/stream_parser.h"

namespace utsushi::livemig {

enum class SlotState : std::uint8_t { unsent, zero, data };

// Move-only owner of an anonymous mapping.
class Mapping {
 public:
  Mapping() = default;
  [[nodiscard]] static Result<Mapping> anonymous(std::size_t size);
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();
  std::uint8_t* data() const noexcept { return m_data; }

 private:
  std::uint8_t* m_data = nullptr;
  std::size_t m_size = 0;
};

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
  void set_state(std::uint32_t block, std::uint64_t page, SlotState s) noexcept { m_state[block][page] = s; }
  std::uint64_t total_bytes() const noexcept;

 private:
  std::vector<RamBlock> m_blocks;
  std::vector<Mapping> m_maps;
  std::vector<std::vector<SlotState>> m_state;
};

}  // namespace utsushi::livemig
