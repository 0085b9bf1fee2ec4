#pragma once
// A builder for synthetic QEMU 7.2 migration streams, written independently
// of livemig's rebuilder (byte layout from the reference, section 1-2).
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace utsushi::livemig::test {

class StreamBuilder {
 public:
  std::vector<std::uint8_t> bytes;

  void u8(std::uint8_t v) { bytes.push_back(v); }
  void be32(std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<std::uint8_t>(v >> s));
  }
  void be64(std::uint64_t v) {
    for (int s = 56; s >= 0; s -= 8) bytes.push_back(static_cast<std::uint8_t>(v >> s));
  }
  void str(const std::string& s) { bytes.insert(bytes.end(), s.begin(), s.end()); }

  void header(const std::string& machine = "pc-i440fx-7.2") {
    be32(0x5145564d);
    be32(3);
    u8(0x07);
    be32(static_cast<std::uint32_t>(machine.size()));
    str(machine);
  }
  // START 'ram' with the given blocks (idstr, bytes).
  void ram_start(const std::vector<std::pair<std::string, std::uint64_t>>& blocks, std::uint32_t sid = 2) {
    u8(0x01);
    be32(sid);
    u8(3);
    str("ram");
    be32(0);
    be32(4);
    std::uint64_t total = 0;
    for (const auto& b : blocks) total += b.second;
    be64(total | 0x04);
    for (const auto& b : blocks) {
      u8(static_cast<std::uint8_t>(b.first.size()));
      str(b.first);
      be64(b.second);
    }
    be64(0x10);
    footer(sid);
  }
  void section(std::uint8_t type, std::uint32_t sid = 2) {
    u8(type);
    be32(sid);
  }
  void footer(std::uint32_t sid = 2) {
    u8(0x7e);
    be32(sid);
  }
  void eos() { be64(0x10); }
  // A page record; `idstr` empty means CONTINUE.
  void page(std::uint64_t page_index, const std::string& idstr, const std::vector<std::uint8_t>& data) {
    be64(page_index * 4096 | 0x08 | (idstr.empty() ? 0x20 : 0));
    if (!idstr.empty()) {
      u8(static_cast<std::uint8_t>(idstr.size()));
      str(idstr);
    }
    bytes.insert(bytes.end(), data.begin(), data.end());
  }
  void zero(std::uint64_t page_index, const std::string& idstr) {
    be64(page_index * 4096 | 0x02 | (idstr.empty() ? 0x20 : 0));
    if (!idstr.empty()) {
      u8(static_cast<std::uint8_t>(idstr.size()));
      str(idstr);
    }
    u8(0);
  }
  void tail() {
    u8(0x04);  // FULL 'timer' (opaque to livemig)
    be32(0);
    u8(5);
    str("timer");
    be32(0);
    be32(2);
    for (int i = 0; i < 37; ++i) u8(static_cast<std::uint8_t>(i * 7));
    footer(0);
    u8(0x00);  // EOF
    std::string json = "{\"page_size\": 4096, \"devices\": []}";
    u8(0x06);
    be32(static_cast<std::uint32_t>(json.size()));
    str(json);
  }
};

// Deterministic page content of several kinds.
inline std::vector<std::uint8_t> random_page(std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> p(4096);
  for (auto& b : p) b = static_cast<std::uint8_t>(rng());
  return p;
}

// A realistic multi-section stream: two blocks, first pass of every page
// (zero / random / duplicated), then passes with sparse updates, repeats and
// CONTINUE records across section boundaries, then the opaque tail.
inline std::vector<std::uint8_t> sample_stream() {
  StreamBuilder s;
  s.header();
  const std::uint64_t pages = 64;
  s.ram_start({{"pc.ram", pages * 4096}, {"/rom@etc/acpi/tables", 2 * 4096}});
  std::vector<std::vector<std::uint8_t>> mem(pages, std::vector<std::uint8_t>(4096, 0));
  s.section(0x02);
  for (std::uint64_t i = 0; i < pages; ++i) {
    if (i % 5 == 0) {
      s.zero(i, i == 0 ? "pc.ram" : "");
      continue;
    }
    mem[i] = random_page(static_cast<std::uint32_t>(i % 9 == 1 ? 1 : i));  // some duplicates
    s.page(i, i == 0 ? "pc.ram" : "", mem[i]);
  }
  s.page(1, "/rom@etc/acpi/tables", random_page(99));
  s.eos();
  s.footer();
  for (int round = 0; round < 3; ++round) {
    s.section(0x02);
    bool first = true;
    for (std::uint64_t i = 1; i < pages; i += 3) {
      if (i % 5 == 0) {
        continue;
      }
      if (round % 2 == 0) {
        for (int k = 0; k < 64; ++k) mem[i][static_cast<std::size_t>(k * 3 + round)] ^= static_cast<std::uint8_t>(k + 1);
      }
      // The first record of a later section may still be CONTINUE (last_sent_block carries over).
      s.page(i, first && round == 0 ? "pc.ram" : "", mem[i]);
      first = false;
    }
    s.eos();
    s.footer();
  }
  s.section(0x03);
  s.page(2, "", mem[2]);
  s.zero(5, "");
  s.page(62, "", std::vector<std::uint8_t>(4096, 0));  // a PAGE record with zero content
  s.eos();
  s.footer();
  s.tail();
  return s.bytes;
}

// A stream whose header is followed by a QEMU_VM_COMMAND record (what a
// source with the return path on writes): a layout livemig refuses.
inline std::vector<std::uint8_t> return_path_stream() {
  StreamBuilder s;
  s.header();
  s.u8(0x08);  // QEMU_VM_COMMAND
  s.u8(0);
  s.u8(1);     // MIG_CMD_OPEN_RETURN_PATH
  s.u8(0);
  s.u8(0);     // no payload
  return s.bytes;
}

}  // namespace utsushi::livemig::test
