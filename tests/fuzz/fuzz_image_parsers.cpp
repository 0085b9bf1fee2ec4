// Fuzz target for the qcow2 and VMDK parsers (open, read everything, map,
// check). Built with AddressSanitizer + UBSan by g++ (the project's C++23 needs
// a newer clang than Debian 12's for libFuzzer), with a small built-in driver:
//   fuzz_image_parsers SECONDS CORPUS_DIR...
// replays every corpus file, then mutates random corpus files (bit flips,
// interesting values at header offsets, table entries, truncation) until the
// time is up, and prints the number of executions. A crash or sanitizer
// report aborts with the input saved as ./fuzz-crash-input.
// The same file also exports LLVMFuzzerTestOneInput, which afl-run.sh builds
// with afl-g++-fast and AFL++'s libAFLDriver into a real AFL++ target.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "utsushi/imagefmt/qcow2.h"
#include "utsushi/imagefmt/registry.h"
#include "utsushi/imagefmt/vmdk.h"

using namespace utsushi;
using namespace utsushi::imagefmt;

namespace {

std::string g_path;

void exercise(const std::string& fmt) {
  auto dev = open_image(g_path, OpenOptions{fmt, Access::read_only});
  if (!dev) {
    return;
  }
  BlockDevice& d = **dev;
  auto ext = d.extents(0, std::min<std::uint64_t>(d.size(), 1ull << 32));
  (void)ext;
  std::vector<std::uint8_t> buf(1 << 20);
  // Read up to 8 MiB at the start and 1 MiB at the end.
  for (std::uint64_t off = 0; off < std::min<std::uint64_t>(d.size(), 8u << 20); off += buf.size()) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), d.size() - off));
    if (!d.pread(std::span(buf).first(n), off)) {
      break;
    }
  }
  if (d.size() > buf.size()) {
    (void)d.pread(buf, d.size() - buf.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (g_path.empty()) {  // driven by libFuzzer or AFL++'s libAFLDriver: no main of ours
    g_path = "/dev/shm/utsushi-fuzz-" + std::to_string(::getpid()) + ".img";
  }
  {
    std::ofstream f(g_path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  exercise("qcow2");
  exercise("vmdk");
  (void)check_qcow2(g_path);
  return 0;
}

#ifndef UTSUSHI_LIBFUZZER
int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SECONDS CORPUS_DIR...\n", argv[0]);
    return 2;
  }
  g_path = "/dev/shm/utsushi-fuzz-" + std::to_string(::getpid()) + ".img";
  double seconds = std::atof(argv[1]);
  std::vector<std::vector<std::uint8_t>> corpus;
  for (int i = 2; i < argc; ++i) {
    for (const auto& e : std::filesystem::directory_iterator(argv[i])) {
      std::ifstream f(e.path(), std::ios::binary);
      corpus.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "empty corpus\n");
    return 2;
  }
  std::uint64_t execs = 0;
  for (const auto& c : corpus) {
    LLVMFuzzerTestOneInput(c.data(), c.size());
    ++execs;
  }
  std::mt19937_64 rng(12345);
  const std::uint64_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, 0x1ff, 0x200, 0xffff, 0x10000, 0x7fffffff,
                                       0xffffffff, 1ull << 40, 1ull << 62, 1ull << 63, ~0ull};
  auto start = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
    std::vector<std::uint8_t> in = corpus[rng() % corpus.size()];
    int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations && !in.empty(); ++m) {
      // Header and the first metadata clusters are where the parsers live.
      std::size_t limit = std::min<std::size_t>(in.size(), rng() % 2 ? 512 : in.size());
      std::size_t pos = rng() % limit;
      switch (rng() % 4) {
        case 0:
          in[pos] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
          break;
        case 1: {
          std::uint64_t v = interesting[rng() % std::size(interesting)];
          int width = 1 << (rng() % 4);
          pos &= ~static_cast<std::size_t>(width - 1);
          for (int b = 0; b < width && pos + b < in.size(); ++b) {
            in[pos + b] = static_cast<std::uint8_t>(v >> (8 * (rng() % 2 ? width - 1 - b : b)));
          }
          break;
        }
        case 2:
          in[pos] = static_cast<std::uint8_t>(rng());
          break;
        default:
          if (rng() % 8 == 0) {
            in.resize(rng() % in.size());
          }
          break;
      }
    }
    {
      std::ofstream keep("fuzz-crash-input", std::ios::binary | std::ios::trunc);
      keep.write(reinterpret_cast<const char*>(in.data()), static_cast<std::streamsize>(in.size()));
    }
    LLVMFuzzerTestOneInput(in.data(), in.size());
    ++execs;
  }
  std::remove("fuzz-crash-input");
  std::remove(g_path.c_str());
  std::printf("fuzz_image_parsers: %llu executions in %.0f s, corpus %zu files, no crash\n",
              static_cast<unsigned long long>(execs), seconds, corpus.size());
  return 0;
}
#endif
