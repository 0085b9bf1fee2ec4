#pragma once
// MemoryDriver: an in-memory BlockDriver for front-end tests, with settable
// capabilities, a log of the requests the core passed down, and an error
// switch that fails the Nth call (leveldb's StringSource::force_error_).

#include <algorithm>
#include <cstring>
#include <vector>

#include "utsushi/imagefmt/block_driver.h"

namespace utsushi::test {

struct DriverCall {
  char op;  // 'r' read, 'w' write, 'z' zero, 'd' discard, 'e' extents
  std::uint64_t offset;
  std::uint64_t length;
};

class MemoryDriver final : public imagefmt::BlockDriver {
 public:
  MemoryDriver(std::uint64_t size, imagefmt::Capabilities caps)
      : m_data(static_cast<std::size_t>(size), 0), m_caps(caps) {}

  std::string_view format_name() const override { return "memory"; }
  const std::string& description() const override { return m_name; }
  std::uint64_t size() const override { return m_data.size(); }
  imagefmt::Capabilities capabilities() const override { return m_caps; }

  Result<void> pread(std::span<std::uint8_t> buf, std::uint64_t offset) override {
    UTSUSHI_TRY(record('r', offset, buf.size()));
    std::memcpy(buf.data(), m_data.data() + offset, buf.size());
    return {};
  }
  Result<void> pwrite(std::span<const std::uint8_t> buf, std::uint64_t offset) override {
    UTSUSHI_TRY(record('w', offset, buf.size()));
    std::memcpy(m_data.data() + offset, buf.data(), buf.size());
    return {};
  }
  Result<void> zero(std::uint64_t offset, std::uint64_t length, imagefmt::ZeroMode) override {
    UTSUSHI_TRY(record('z', offset, length));
    std::fill_n(m_data.begin() + static_cast<std::ptrdiff_t>(offset), length, 0);
    return {};
  }
  Result<void> discard(std::uint64_t offset, std::uint64_t length) override {
    return record('d', offset, length);
  }
  Result<void> extents(std::uint64_t offset, std::uint64_t length, std::vector<imagefmt::Extent>& out) override {
    UTSUSHI_TRY(record('e', offset, length));
    // Report one extent per 4 KiB block: data when any byte is non-zero.
    for (std::uint64_t b = offset; b < offset + length && out.size() < m_extent_limit; b += 4096) {
      std::uint64_t n = std::min<std::uint64_t>(4096 - b % 4096, offset + length - b);
      bool data = std::any_of(m_data.begin() + static_cast<std::ptrdiff_t>(b),
                              m_data.begin() + static_cast<std::ptrdiff_t>(b + n), [](auto c) { return c != 0; });
      out.push_back({b, n, data ? imagefmt::ExtentType::data : imagefmt::ExtentType::hole});
      b -= b % 4096;
    }
    return {};
  }

  std::vector<std::uint8_t>& data() { return m_data; }
  std::vector<DriverCall>& calls() { return m_calls; }
  // Makes call number `n` (counting from 1, any operation) fail with EIO.
  void fail_call(std::size_t n) { m_fail_at = n; }
  // At most this many extents per extents() call (the core must ask again).
  void set_extent_limit(std::size_t n) { m_extent_limit = n; }

 private:
  Result<void> record(char op, std::uint64_t offset, std::uint64_t length) {
    m_calls.push_back({op, offset, length});
    if (m_calls.size() == m_fail_at) {
      return fail_errno(EIO, "memory: injected failure");
    }
    return {};
  }

  std::string m_name = "memory";
  std::vector<std::uint8_t> m_data;
  imagefmt::Capabilities m_caps;
  std::vector<DriverCall> m_calls;
  std::size_t m_fail_at = 0;
  std::size_t m_extent_limit = 1u << 30;
};

}  // namespace utsushi::test
