#pragma once
// Parser and rebuilder for the QEMU 7.2 pre-copy migration stream (layout in
// stream_format.h). The parser splits the stream into three kinds of event:
// verbatim bytes (header, configuration, section headers and footers, the
// START body, EOS words, everything after RAM END), the RAM block list, and
// page records. Concatenating the verbatim bytes with rebuild_page_record()
// of each page, in order, reproduces the input byte for byte.
//
// It accepts only the layout livemig knows (reference section 7, "Parser
// invariants"): magic/version 3; a configuration without subsections; START
// 'ram' instance 0 version 4 as the first section; then only PART/END of that
// section with ZERO/PAGE(/CONTINUE) records and EOS; after RAM END anything
// (opaque device state, EOF, vmdesc) until end of input. Anything else is
// refused with Errc::not_supported (a QEMU feature livemig does not handle)
// or Errc::corruption (bytes that are not a valid stream).

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/common/endian.h"

namespace utsushi::livemig {

// A source of stream bytes. read_some() blocks until at least one byte is
// available and returns how many it stored (0 = end of stream).
class ByteReader {
 public:
  virtual ~ByteReader() = default;
  [[nodiscard]] virtual Result<std::size_t> read_some(std::span<std::uint8_t> buf) = 0;
};

// Reads from a span (unit tests, captured streams).
class SpanReader final : public ByteReader {
 public:
  // `chunk` limits each read, to exercise record splits across reads.
  explicit SpanReader(std::span<const std::uint8_t> data, std::size_t chunk = SIZE_MAX)
      : m_data(data), m_chunk(chunk) {}
  [[nodiscard]] Result<std::size_t> read_some(std::span<std::uint8_t> buf) override;

 private:
  std::span<const std::uint8_t> m_data;
  std::size_t m_pos = 0;
  std::size_t m_chunk;
};

struct RamBlock {
  std::string idstr;         // RAMBlock idstr, 1..255 bytes, e.g. "pc.ram"
  std::uint64_t used_length;  // bytes; a multiple of the page size
  std::uint64_t pages() const noexcept { return used_length / 4096; }
};

enum class RecordKind : std::uint8_t { zero, page };

// One RAM page record. `data` (4096 bytes, kind page only) is valid only for
// the duration of the on_page() call.
struct PageRecord {
  std::uint32_t block = 0;     // index into the block list
  std::uint64_t page = 0;      // page index inside the block (offset / 4096)
  bool cont = false;           // RAM_SAVE_FLAG_CONTINUE was set (no idstr on the wire)
  RecordKind kind = RecordKind::zero;
  const std::uint8_t* data = nullptr;
};

// Receives parser events in stream order. Any error returned stops the parse
// and is returned from parse_stream().
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  [[nodiscard]] virtual Result<void> on_raw(std::span<const std::uint8_t> bytes) = 0;
  [[nodiscard]] virtual Result<void> on_blocks(const std::vector<RamBlock>& blocks) = 0;
  [[nodiscard]] virtual Result<void> on_page(const PageRecord& record) = 0;
  // After each RAM PART/END footer: a natural point to flush a batch.
  [[nodiscard]] virtual Result<void> on_section_end(bool last) { (void)last; return {}; }
};

struct StreamSummary {
  std::uint64_t bytes = 0;        // total bytes read
  std::uint64_t sections = 0;     // RAM PART + END sections
  std::uint64_t zero_records = 0;
  std::uint64_t page_records = 0;
  std::uint64_t tail_bytes = 0;   // bytes after RAM END (device state, EOF, vmdesc)
  std::string machine;            // configuration name, e.g. "pc-i440fx-7.2"
};

// Parses the whole stream from `reader` (until it reports end of stream),
// feeding `sink`. Fails on the first violation of the accepted layout; a
// stream that ends before RAM END is Errc::corruption ("truncated").
[[nodiscard]] Result<StreamSummary> parse_stream(ByteReader& reader, StreamSink& sink);

// Appends QEMU's exact bytes for `record` (save_page_header + payload) to
// `out`. `blocks` is the list from on_blocks(); for kind page `data` holds 4096 bytes.
void rebuild_page_record(Bytes& out, const std::vector<RamBlock>& blocks, std::uint32_t block, std::uint64_t page,
                         bool cont, RecordKind kind, const std::uint8_t* data);

}  // namespace utsushi::livemig
