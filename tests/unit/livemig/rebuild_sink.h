#pragma once
// RebuildSink: a StreamSink (stream_parser.h) that rebuilds the stream
// directly from the parser's events (no tokens) and keeps the page records,
// for tests of the parser and of sinks that forward to another.
#include <vector>

#include "utsushi/common/endian.h"
#include "utsushi/livemig/stream_parser.h"

namespace utsushi::livemig::test {

class RebuildSink final : public StreamSink {
 public:
  Bytes out;
  std::vector<RamBlock> blocks;
  std::vector<PageRecord> pages;  // `data` is not valid after on_page()
  Result<void> on_raw(std::span<const std::uint8_t> b) override {
    put_bytes(out, b);
    return {};
  }
  Result<void> on_blocks(const std::vector<RamBlock>& b) override {
    blocks = b;
    return {};
  }
  Result<void> on_page(const PageRecord& r) override {
    rebuild_page_record(out, blocks, r.block, r.page, r.cont, r.kind, r.data);
    pages.push_back(r);
    return {};
  }
};

}  // namespace utsushi::livemig::test
