#include <catch2/catch.hpp>

#include "rebuild_sink.h"
#include "synthetic_stream.h"
#include "utsushi/livemig/page_codec.h"
#include "utsushi/livemig/stream_parser.h"

using namespace utsushi;
using namespace utsushi::livemig;
using livemig::test::RebuildSink;
using livemig::test::StreamBuilder;

namespace {

Result<StreamSummary> parse_bytes(const Bytes& in, RebuildSink& sink, std::size_t chunk = SIZE_MAX) {
  SpanReader reader(in, chunk);
  return parse_stream(reader, sink);
}

// Parses, encodes to tokens, decodes, and returns the rebuilt bytes.
Bytes through_codec(const Bytes& in, std::size_t batch) {
  Bytes rebuilt;
  TokenDecoder decoder;
  PageEncoder encoder(batch, [&](Bytes& b, const std::array<std::uint64_t, k_page_kinds>&) -> Result<void> {
    return decoder.decode(b, rebuilt);
  });
  SpanReader reader(in, 1000);
  auto r = parse_stream(reader, encoder);
  REQUIRE(r);
  REQUIRE(encoder.flush());
  return rebuilt;
}

// A stream with its header and the RAM START section (one 8 KiB block
// "pc.ram"), opening the first RAM iteration section.
StreamBuilder ram_iteration_stream() {
  StreamBuilder s;
  s.header();
  s.ram_start({{"pc.ram", 8192}});
  s.section(0x02);
  return s;
}

Errc refusal(const Bytes& in) {
  RebuildSink sink;
  auto r = parse_bytes(in, sink);
  REQUIRE_FALSE(r);
  return r.error().code();
}

}  // namespace

TEST_CASE("livemig::parse_stream rebuilds a synthetic stream byte for byte", "[livemig][stream]") {
  Bytes in = livemig::test::sample_stream();
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, SIZE_MAX}) {
    RebuildSink sink;
    auto r = parse_bytes(in, sink, chunk);
    REQUIRE(r);
    CHECK(sink.out == in);
    CHECK(r->bytes == in.size());
    CHECK(r->machine == "pc-i440fx-7.2");
    CHECK(r->sections == 5);
    CHECK(sink.blocks.size() == 2);
    CHECK(r->tail_bytes > 0);
  }
}

TEST_CASE("livemig::parse_stream tracks the current block across sections", "[livemig][stream]") {
  RebuildSink sink;
  REQUIRE(parse_bytes(livemig::test::sample_stream(), sink));
  // The END section starts with a CONTINUE record: it belongs to the block of
  // the last record of the previous section.
  const auto& last = sink.pages[sink.pages.size() - 3];
  CHECK(last.cont);
  CHECK(last.block == 0);
  CHECK(last.page == 2);
}

TEST_CASE("livemig page codec round trip is byte-identical", "[livemig][stream][codec]") {
  Bytes in = livemig::test::sample_stream();
  for (std::size_t batch : {std::size_t{100}, std::size_t{64 * 1024}, std::size_t{1 << 20}}) {
    CHECK(through_codec(in, batch) == in);
  }
}

TEST_CASE("livemig::parse_stream refuses layouts it does not know", "[livemig][stream]") {
  SECTION("bad magic") {
    Bytes in = livemig::test::sample_stream();
    in[0] = 'X';
    CHECK(refusal(in) == Errc::corruption);
  }
  SECTION("stream version 2") {
    Bytes in = livemig::test::sample_stream();
    in[7] = 2;
    CHECK(refusal(in) == Errc::not_supported);
  }
  SECTION("configuration subsection (x-ignore-shared / validate-uuid)") {
    StreamBuilder s;
    s.header();
    s.u8(0x05);
    s.u8(4);
    s.str("uuid");
    CHECK(refusal(s.bytes) == Errc::not_supported);
  }
  SECTION("QEMU_VM_COMMAND (return path)") {
    CHECK(refusal(test::return_path_stream()) == Errc::not_supported);
  }
  SECTION("device state before RAM") {
    StreamBuilder s;
    s.header();
    s.tail();
    CHECK(refusal(s.bytes) == Errc::not_supported);
  }
  SECTION("an iterable section other than ram") {
    StreamBuilder s;
    s.header();
    s.u8(0x01);
    s.be32(3);
    s.u8(5);
    s.str("block");
    s.be32(0);
    s.be32(1);
    CHECK(refusal(s.bytes) == Errc::not_supported);
  }
  SECTION("ram version 5") {
    StreamBuilder s;
    s.header();
    s.u8(0x01);
    s.be32(2);
    s.u8(3);
    s.str("ram");
    s.be32(0);
    s.be32(5);
    CHECK(refusal(s.bytes) == Errc::not_supported);
  }
  SECTION("postcopy page_size field in the setup") {
    StreamBuilder s;
    s.header();
    s.u8(0x01);
    s.be32(2);
    s.u8(3);
    s.str("ram");
    s.be32(0);
    s.be32(4);
    s.be64(8192 | 0x04);
    s.u8(6);
    s.str("pc.ram");
    s.be64(8192);
    s.be64(2 << 20);  // page_size instead of EOS
    CHECK(refusal(s.bytes) == Errc::not_supported);
  }
  for (std::uint64_t flag : {0x40u, 0x80u, 0x100u, 0x200u, 0x01u}) {
    DYNAMIC_SECTION("RAM record flag " << flag) {
      StreamBuilder s = ram_iteration_stream();
      s.be64(flag);
      CHECK(refusal(s.bytes) == Errc::not_supported);
    }
  }
  SECTION("CONTINUE before any block") {
    StreamBuilder s = ram_iteration_stream();
    s.zero(0, "");
    CHECK(refusal(s.bytes) == Errc::corruption);
  }
  SECTION("unknown block") {
    StreamBuilder s = ram_iteration_stream();
    s.zero(0, "pc.rom");
    CHECK(refusal(s.bytes) == Errc::corruption);
  }
  SECTION("page beyond the block") {
    StreamBuilder s = ram_iteration_stream();
    s.zero(2, "pc.ram");
    CHECK(refusal(s.bytes) == Errc::corruption);
  }
  SECTION("zero page with a non-zero fill byte") {
    StreamBuilder s = ram_iteration_stream();
    s.be64(0x02);
    s.u8(6);
    s.str("pc.ram");
    s.u8(0x55);
    CHECK(refusal(s.bytes) == Errc::not_supported);
  }
  SECTION("bad footer") {
    Bytes in = livemig::test::sample_stream();
    StreamBuilder s;
    s.header();
    s.ram_start({{"pc.ram", 8192}});
    s.bytes[s.bytes.size() - 1] = 9;
    CHECK(refusal(s.bytes) == Errc::corruption);
  }
  SECTION("truncated anywhere before RAM END") {
    Bytes in = livemig::test::sample_stream();
    for (std::size_t cut : {std::size_t{3}, std::size_t{30}, std::size_t{200}, in.size() / 2}) {
      Bytes part(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(cut));
      CHECK(refusal(part) == Errc::corruption);
    }
  }
}
