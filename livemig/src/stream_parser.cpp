// QEMU 7.2 migration stream parser and page-record rebuilder (contract in
// stream_parser.h; constants and citations in stream_format.h).
#include "utsushi/livemig/stream_parser.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstring>

#include "utsushi/livemig/stream_format.h"

namespace utsushi::livemig {

Result<std::size_t> SpanReader::read_some(std::span<std::uint8_t> buf) {
  std::size_t n = std::min({buf.size(), m_data.size() - m_pos, m_chunk});
  std::memcpy(buf.data(), m_data.data() + m_pos, n);
  m_pos += n;
  return n;
}

namespace {

using namespace qemu;

// A refill buffer over a ByteReader: ensure(n) makes n bytes available at
// data(), consume(n) moves past them. Pointers are valid until the next ensure().
class Input {
 public:
  explicit Input(ByteReader& reader) : m_reader(reader), m_buf(1 << 18) {}

  // Ok(false) at a clean end of stream before any of the n bytes.
  Result<bool> try_ensure(std::size_t n) {
    while (avail() < n) {
      if (m_begin > 0) {
        std::memmove(m_buf.data(), m_buf.data() + m_begin, avail());
        m_end -= m_begin;
        m_begin = 0;
      }
      if (m_buf.size() < n) {
        m_buf.resize(n);
      }
      auto got = UTSUSHI_TRY(m_reader.read_some(std::span(m_buf).subspan(m_end)));
      if (got == 0) {
        if (avail() == 0) {
          return false;
        }
        return fail(Errc::corruption, fmt::format("migration stream truncated at byte {} (needed {} more bytes)",
                                                  m_offset + avail(), n - avail()));
      }
      m_end += got;
    }
    return true;
  }
  Result<void> ensure(std::size_t n) {
    if (!UTSUSHI_TRY(try_ensure(n))) {
      return fail(Errc::corruption, fmt::format("migration stream truncated at byte {}", m_offset));
    }
    return {};
  }
  const std::uint8_t* data() const { return m_buf.data() + m_begin; }
  std::size_t avail() const { return m_end - m_begin; }
  void consume(std::size_t n) {
    m_begin += n;
    m_offset += n;
  }
  std::uint64_t offset() const { return m_offset; }

 private:
  ByteReader& m_reader;
  std::vector<std::uint8_t> m_buf;
  std::size_t m_begin = 0;
  std::size_t m_end = 0;
  std::uint64_t m_offset = 0;
};

class Parser {
 public:
  Parser(ByteReader& reader, StreamSink& sink) : m_in(reader), m_sink(sink) {}

  Result<StreamSummary> run() {
    UTSUSHI_TRY(parse_header());
    bool ram_done = false;
    while (!ram_done) {
      ram_done = UTSUSHI_TRY(parse_section());
    }
    UTSUSHI_TRY(flush_raw());
    // Tail: opaque device state, EOF and vmdesc, until the source closes.
    while (UTSUSHI_TRY(m_in.try_ensure(1))) {
      std::size_t n = m_in.avail();
      UTSUSHI_TRY(m_sink.on_raw(std::span(m_in.data(), n)));
      m_summary.tail_bytes += n;
      m_in.consume(n);
    }
    m_summary.bytes = m_in.offset();
    return m_summary;
  }

 private:
  // Copies n bytes at the cursor into the pending verbatim output.
  Result<const std::uint8_t*> raw(std::size_t n) {
    UTSUSHI_TRY(m_in.ensure(n));
    const std::uint8_t* p = m_in.data();
    m_raw.insert(m_raw.end(), p, p + n);
    m_in.consume(n);
    return m_raw.data() + (m_raw.size() - n);
  }
  Result<std::uint8_t> raw_u8() { return *UTSUSHI_TRY(raw(1)); }
  Result<std::uint32_t> raw_be32() { return load_be32(UTSUSHI_TRY(raw(4))); }
  Result<std::uint64_t> raw_be64() { return load_be64(UTSUSHI_TRY(raw(8))); }
  Result<void> flush_raw() {
    if (!m_raw.empty()) {
      UTSUSHI_TRY(m_sink.on_raw(m_raw));
      m_raw.clear();
    }
    return {};
  }
  std::string at() const { return fmt::format(" (stream byte {})", m_in.offset()); }

  Result<void> parse_header() {
    auto magic = UTSUSHI_TRY(raw_be32());
    if (magic != k_file_magic) {
      return fail(Errc::corruption, fmt::format("not a QEMU migration stream: magic {:#010x}", magic));
    }
    auto version = UTSUSHI_TRY(raw_be32());
    if (version != k_file_version) {
      return fail(Errc::not_supported, fmt::format("migration stream version {} not supported (want 3)", version));
    }
    auto type = UTSUSHI_TRY(raw_u8());
    if (type != k_vm_configuration) {
      return fail(Errc::not_supported,
                  fmt::format("migration stream has no configuration section (type {:#04x})", type));
    }
    auto len = UTSUSHI_TRY(raw_be32());
    if (len == 0 || len > k_max_config_name) {
      return fail(Errc::corruption, fmt::format("configuration name length {} out of range", len));
    }
    auto name = UTSUSHI_TRY(raw(len));
    m_summary.machine.assign(reinterpret_cast<const char*>(name), len);
    UTSUSHI_TRY(m_in.ensure(1));
    if (m_in.data()[0] == k_vm_subsection) {
      return fail(Errc::not_supported,
                  "configuration subsection present (x-ignore-shared, validate-uuid or target-page-bits); "
                  "livemig needs those off" + at());
    }
    return {};
  }

  Result<void> footer(std::uint32_t sid) {
    auto type = UTSUSHI_TRY(raw_u8());
    auto fsid = UTSUSHI_TRY(raw_be32());
    if (type != k_vm_section_footer || fsid != sid) {
      return fail(Errc::corruption, fmt::format("bad section footer {:#04x}/{} for section {}", type, fsid, sid) + at());
    }
    return {};
  }

  // Returns true after the RAM END section.
  Result<bool> parse_section() {
    auto type = UTSUSHI_TRY(raw_u8());
    switch (type) {
      case k_vm_section_start:
        UTSUSHI_TRY(parse_start());
        return false;
      case k_vm_section_part:
      case k_vm_section_end: {
        auto sid = UTSUSHI_TRY(raw_be32());
        if (!m_have_ram || sid != m_ram_sid) {
          return fail(Errc::not_supported, fmt::format("section {} is not the RAM section", sid) + at());
        }
        UTSUSHI_TRY(parse_ram_records());
        UTSUSHI_TRY(footer(sid));
        UTSUSHI_TRY(flush_raw());
        ++m_summary.sections;
        bool last = type == k_vm_section_end;
        UTSUSHI_TRY(m_sink.on_section_end(last));
        return last;
      }
      case k_vm_command: {
        auto cmd = load_be16(UTSUSHI_TRY(raw(2)));
        return fail(Errc::not_supported,
                    fmt::format("QEMU_VM_COMMAND {} in the stream (return path, postcopy or COLO): "
                                "livemig needs those capabilities off",
                                cmd) + at());
      }
      case k_vm_section_full:
        return fail(Errc::not_supported, "device state (FULL section) before RAM END: layout from a QEMU newer "
                                         "than 7.2 or a non-RAM iterable device" + at());
      case k_vm_eof:
        return fail(Errc::not_supported, "stream ended without a RAM END section" + at());
      default:
        return fail(Errc::corruption, fmt::format("unknown section type {:#04x}", type) + at());
    }
  }

  Result<void> parse_start() {
    auto sid = UTSUSHI_TRY(raw_be32());
    auto idlen = UTSUSHI_TRY(raw_u8());
    auto idp = UTSUSHI_TRY(raw(idlen));
    std::string idstr(reinterpret_cast<const char*>(idp), idlen);
    auto instance = UTSUSHI_TRY(raw_be32());
    auto version = UTSUSHI_TRY(raw_be32());
    if (m_have_ram) {
      return fail(Errc::not_supported,
                  fmt::format("second iterable section '{}' (block, dirty-bitmaps or VFIO migration)", idstr) + at());
    }
    if (idstr != k_ram_idstr || instance != k_ram_instance || version != k_ram_version) {
      return fail(Errc::not_supported,
                  fmt::format("first section is '{}' instance {} version {}, want 'ram' 0 4", idstr, instance, version) +
                      at());
    }
    m_have_ram = true;
    m_ram_sid = sid;
    auto word = UTSUSHI_TRY(raw_be64());
    if ((word & ~k_page_mask) != k_flag_mem_size) {
      return fail(Errc::not_supported, fmt::format("RAM setup record flags {:#x}, want MEM_SIZE", word & ~k_page_mask));
    }
    std::uint64_t total = word & k_page_mask;
    std::uint64_t sum = 0;
    while (sum < total) {
      auto len = UTSUSHI_TRY(raw_u8());
      if (len == 0) {
        return fail(Errc::corruption, "RAM block with an empty idstr" + at());
      }
      auto p = UTSUSHI_TRY(raw(len));
      RamBlock b{std::string(reinterpret_cast<const char*>(p), len), UTSUSHI_TRY(raw_be64())};
      if (b.used_length == 0 || b.used_length % k_page_size != 0 || b.used_length > total - sum) {
        return fail(Errc::corruption, fmt::format("RAM block '{}' length {} invalid", b.idstr, b.used_length) + at());
      }
      for (const auto& other : m_blocks) {
        if (other.idstr == b.idstr) {
          return fail(Errc::corruption, fmt::format("RAM block '{}' listed twice", b.idstr));
        }
      }
      sum += b.used_length;
      m_blocks.push_back(std::move(b));
    }
    // A non-EOS word here means per-block extras (postcopy page_size, x-ignore-shared addr).
    auto eos = UTSUSHI_TRY(raw_be64());
    if (eos != k_flag_eos) {
      return fail(Errc::not_supported,
                  fmt::format("RAM setup has extra fields ({:#x}): postcopy-ram or x-ignore-shared is on", eos) + at());
    }
    UTSUSHI_TRY(footer(sid));
    UTSUSHI_TRY(flush_raw());
    return m_sink.on_blocks(m_blocks);
  }

  Result<void> parse_ram_records() {
    for (;;) {
      UTSUSHI_TRY(m_in.ensure(8));
      std::uint64_t word = load_be64(m_in.data());
      std::uint64_t flags = word & ~k_page_mask;
      std::uint64_t offset = word & k_page_mask;
      if (flags == k_flag_eos) {
        if (offset != 0) {
          return fail(Errc::corruption, fmt::format("EOS word with offset {:#x}", offset) + at());
        }
        UTSUSHI_TRY(raw(8));
        return {};
      }
      bool cont = (flags & k_flag_continue) != 0;
      std::uint64_t kind_flags = flags & ~k_flag_continue;
      if (kind_flags != k_flag_zero && kind_flags != k_flag_page) {
        return fail(Errc::not_supported,
                    fmt::format("RAM record flags {:#x} not supported (xbzrle, compress, multifd or RDMA?)", flags) +
                        at());
      }
      std::size_t header = 8;
      std::uint32_t block = m_cur_block;
      if (!cont) {
        UTSUSHI_TRY(m_in.ensure(9));
        std::size_t len = m_in.data()[8];
        UTSUSHI_TRY(m_in.ensure(9 + len));
        std::string_view id(reinterpret_cast<const char*>(m_in.data() + 9), len);
        auto it = std::find_if(m_blocks.begin(), m_blocks.end(), [&](const RamBlock& b) { return b.idstr == id; });
        if (it == m_blocks.end()) {
          return fail(Errc::corruption, fmt::format("page record names unknown RAM block '{}'", id) + at());
        }
        block = static_cast<std::uint32_t>(it - m_blocks.begin());
        header += 1 + len;
      } else if (m_cur_block == k_no_block) {
        return fail(Errc::corruption, "CONTINUE page record before any RAM block was named" + at());
      }
      std::uint64_t page = offset / k_page_size;
      if (page >= m_blocks[block].pages()) {
        return fail(Errc::corruption,
                    fmt::format("page offset {:#x} beyond RAM block '{}'", offset, m_blocks[block].idstr) + at());
      }
      bool zero = kind_flags == k_flag_zero;
      std::size_t total = header + (zero ? 1 : k_page_size);
      UTSUSHI_TRY(m_in.ensure(total));
      if (zero && m_in.data()[header] != 0) {
        return fail(Errc::not_supported, fmt::format("zero page with fill byte {:#04x}", m_in.data()[header]) + at());
      }
      UTSUSHI_TRY(flush_raw());
      PageRecord rec{block, page, cont, zero ? RecordKind::zero : RecordKind::page,
                     zero ? nullptr : m_in.data() + header};
      UTSUSHI_TRY(m_sink.on_page(rec));
      m_in.consume(total);
      m_cur_block = block;
      ++(zero ? m_summary.zero_records : m_summary.page_records);
    }
  }

  static constexpr std::uint32_t k_no_block = UINT32_MAX;
  Input m_in;
  StreamSink& m_sink;
  Bytes m_raw;
  std::vector<RamBlock> m_blocks;
  bool m_have_ram = false;
  std::uint32_t m_ram_sid = 0;
  // pss->last_sent_block: carries across PART/END sections (reference pitfall 9).
  std::uint32_t m_cur_block = k_no_block;
  StreamSummary m_summary;
};

}  // namespace

Result<StreamSummary> parse_stream(ByteReader& reader, StreamSink& sink) {
  Parser parser(reader, sink);
  return parser.run();
}

void rebuild_page_record(Bytes& out, const std::vector<RamBlock>& blocks, std::uint32_t block, std::uint64_t page,
                         bool cont, RecordKind kind, const std::uint8_t* data) {
  std::uint64_t flags = (kind == RecordKind::zero ? qemu::k_flag_zero : qemu::k_flag_page) |
                        (cont ? qemu::k_flag_continue : 0);
  put_be64(out, page * qemu::k_page_size | flags);
  if (!cont) {
    const auto& id = blocks[block].idstr;
    put_u8(out, static_cast<std::uint8_t>(id.size()));
    put_string(out, id);
  }
  if (kind == RecordKind::zero) {
    put_u8(out, 0);
  } else {
    out.insert(out.end(), data, data + qemu::k_page_size);
  }
}

}  // namespace utsushi::livemig
