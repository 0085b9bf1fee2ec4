#pragma once
// Filters: drivers stacked on another BlockDevice. FilterDriver forwards every
// operation to the device below, so a filter overrides only what it changes
// (nbdkit's filters, leveldb's EnvWrapper).
//   WindowFilter  exposes [offset, offset + length) of the device below as a
//                 device of its own (a partition, an OVA member, an LV).

#include <memory>

#include "utsushi/imagefmt/block_device.h"

namespace utsushi::imagefmt {

class FilterDriver : public BlockDriver {
 public:
  // `below` must outlive the filter when not owned; `owned` keeps it alive.
  explicit FilterDriver(BlockDevice& below) : m_below(below) {}
  explicit FilterDriver(std::unique_ptr<BlockDevice> owned) : m_below(*owned), m_owned(std::move(owned)) {}

  std::string_view format_name() const override { return m_below.format_name(); }
  const std::string& description() const override { return m_below.description(); }
  std::uint64_t size() const override { return m_below.size(); }
  Capabilities capabilities() const override;
  [[nodiscard]] Result<void> pread(std::span<std::uint8_t> buf, std::uint64_t offset) override {
    return m_below.pread(buf, offset);
  }
  [[nodiscard]] Result<void> pwrite(std::span<const std::uint8_t> buf, std::uint64_t offset) override {
    return m_below.pwrite(buf, offset);
  }
  [[nodiscard]] Result<void> zero(std::uint64_t offset, std::uint64_t length, ZeroMode mode) override {
    return m_below.zero(offset, length, mode);
  }
  [[nodiscard]] Result<void> discard(std::uint64_t offset, std::uint64_t length) override {
    return m_below.discard(offset, length);
  }
  [[nodiscard]] Result<void> flush() override { return m_below.flush(); }
  [[nodiscard]] Result<void> extents(std::uint64_t offset, std::uint64_t length, std::vector<Extent>& out) override;
  [[nodiscard]] Result<void> verify_integrity() override { return m_below.verify_integrity(); }

 protected:
  BlockDevice& below() noexcept { return m_below; }
  const BlockDevice& below() const noexcept { return m_below; }

 private:
  BlockDevice& m_below;
  std::unique_ptr<BlockDevice> m_owned;
};

class WindowFilter final : public FilterDriver {
 public:
  // Fails (out_of_range) when the window does not lie inside `below`.
  // `below` must outlive the filter.
  [[nodiscard]] static Result<std::unique_ptr<BlockDriver>> create(BlockDevice& below, std::uint64_t offset,
                                                                   std::uint64_t length, std::string description);
  // The same, owning `below`.
  [[nodiscard]] static Result<std::unique_ptr<BlockDriver>> create(std::unique_ptr<BlockDevice> below,
                                                                   std::uint64_t offset, std::uint64_t length,
                                                                   std::string description);

  const std::string& description() const override { return m_description; }
  std::uint64_t size() const override { return m_length; }
  [[nodiscard]] Result<void> pread(std::span<std::uint8_t> buf, std::uint64_t offset) override {
    return below().pread(buf, offset + m_offset);
  }
  [[nodiscard]] Result<void> pwrite(std::span<const std::uint8_t> buf, std::uint64_t offset) override {
    return below().pwrite(buf, offset + m_offset);
  }
  [[nodiscard]] Result<void> zero(std::uint64_t offset, std::uint64_t length, ZeroMode mode) override {
    return below().zero(offset + m_offset, length, mode);
  }
  [[nodiscard]] Result<void> discard(std::uint64_t offset, std::uint64_t length) override {
    return below().discard(offset + m_offset, length);
  }
  [[nodiscard]] Result<void> extents(std::uint64_t offset, std::uint64_t length, std::vector<Extent>& out) override;

 private:
  WindowFilter(BlockDevice& below, std::uint64_t offset, std::uint64_t length, std::string description)
      : FilterDriver(below), m_offset(offset), m_length(length), m_description(std::move(description)) {}
  WindowFilter(std::unique_ptr<BlockDevice> below, std::uint64_t offset, std::uint64_t length,
               std::string description)
      : FilterDriver(std::move(below)), m_offset(offset), m_length(length), m_description(std::move(description)) {}

  std::uint64_t m_offset;
  std::uint64_t m_length;
  std::string m_description;
};

}  // namespace utsushi::imagefmt
