#include "utsushi/livemig/page_store.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "utsushi/common/meminfo.h"

namespace utsushi::livemig {

namespace {

#ifndef MADV_POPULATE_WRITE
constexpr int MADV_POPULATE_WRITE = 23;  // Linux 5.14 (uapi asm-generic/mman-common.h)
#endif
constexpr std::size_t k_round = 2u << 20;
constexpr std::size_t k_populate_chunk = 64u << 20;  // the populating thread checks its stop flag this often

}  // namespace

// One mapping, handed out front to back by take(), which a thread faults in
// with MADV_POPULATE_WRITE: the kernel allocates (and zeroes) each page as a
// write fault would, and leaves any content already written alone, so taken
// memory may be in use while the thread is still at work.
class PrefaultedMemory {
 public:
  static PrefaultedMemory& instance() {
    static PrefaultedMemory memory;
    return memory;
  }
  ~PrefaultedMemory() {
    std::lock_guard starting(m_starting);
    release();
  }

  // A session of its own each: parallel migrations (evacuate --parallel)
  // replace each other's memory, and take() then finds the newest.
  void start(std::size_t bytes) {
    std::lock_guard starting(m_starting);
    release();
    std::lock_guard lock(m_mutex);
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      return;
    }
    m_base = static_cast<std::uint8_t*>(p);
    m_size = bytes;
    m_taken = 0;
    m_stop = false;
    m_thread = std::thread([this, base = m_base, bytes] {
      for (std::size_t at = 0; at < bytes && !m_stop.load(); at += k_populate_chunk) {
        if (madvise(base + at, std::min(k_populate_chunk, bytes - at), MADV_POPULATE_WRITE) != 0) {
          return;  // an older kernel (EINVAL), no memory, or a taken range already unmapped
        }
      }
    });
  }

  std::optional<Mapping> take(std::size_t size) {
    std::lock_guard lock(m_mutex);
    if (m_base == nullptr || size % 4096 != 0 || m_size - m_taken < size) {
      return std::nullopt;
    }
    Mapping m;
    m.m_data = m_base + m_taken;
    m.m_size = size;
    m_taken += size;
    return m;
  }

 private:
  // Stops the thread and unmaps what was not taken. REQUIRES: m_starting held.
  void release() {
    m_stop = true;
    if (m_thread.joinable()) {
      m_thread.join();
    }
    std::lock_guard lock(m_mutex);
    if (m_base != nullptr && m_taken < m_size) {
      munmap(m_base + m_taken, m_size - m_taken);
    }
    m_base = nullptr;
    m_size = m_taken = 0;
  }

  std::mutex m_starting;  // start() and the destructor, one at a time
  std::mutex m_mutex;     // the fields below but the thread
  std::uint8_t* m_base = nullptr;
  std::size_t m_size = 0;
  std::size_t m_taken = 0;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

void prefault_page_memory(std::size_t bytes) {
  auto available = meminfo_bytes("MemAvailable");
  if (!available) {
    return;
  }
  bytes = std::min<std::uint64_t>(bytes, *available / 2);
  bytes = (bytes + k_round - 1) / k_round * k_round;
  if (bytes > 0) {
    PrefaultedMemory::instance().start(bytes);
  }
}

Result<Mapping> Mapping::anonymous(std::size_t size) {
  if (auto taken = PrefaultedMemory::instance().take(size)) {
    return std::move(*taken);
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return fail_errno(errno, "livemig: mapping " + std::to_string(size) + " bytes for the page mirror");
  }
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
