#include "utsushi/livemig/page_store.h"

#include <sys/mman.h>

#include <cerrno>
#include <utility>

namespace utsushi::livemig {

Result<Mapping> Mapping::anonymous(std::size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return fail_errno(errno, "livemig: mapping " + std::to_string(size) + " bytes for the page mirror");
  }
  // Transparent huge pages where the system allows them on request: the
  // store fills in QEMU's first pass, when a fault per 4 KiB page costs the
  // pipeline about a quarter of its time (perf, storage bench). Advice only.
  (void)madvise(p, size, MADV_HUGEPAGE);
  Mapping m;
  m.m_data = static_cast<std::uint8_t*>(p);
  m.m_size = size;
  return m;
}

Mapping::Mapping(Mapping&& other) noexcept
    : m_data(std::exchange(other.m_data, nullptr)), m_size(std::exchange(other.m_size, 0)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    if (m_data != nullptr) {
      munmap(m_data, m_size);
    }
    m_data = std::exchange(other.m_data, nullptr);
    m_size = std::exchange(other.m_size, 0);
  }
  return *this;
}

Mapping::~Mapping() {
  if (m_data != nullptr) {
    munmap(m_data, m_size);
  }
}

Result<void> PageStore::reset(const std::vector<RamBlock>& blocks) {
  m_blocks.clear();
  m_maps.clear();
  m_state.clear();
  for (const auto& b : blocks) {
    m_maps.push_back(UTSUSHI_TRY(Mapping::anonymous(b.used_length)));
    m_state.emplace_back(b.pages(), SlotState::unsent);
  }
  m_blocks = blocks;
  return {};
}

std::uint64_t PageStore::total_bytes() const noexcept {
  std::uint64_t t = 0;
  for (const auto& b : m_blocks) {
    t += b.used_length;
  }
  return t;
}

}  // namespace utsushi::livemig
