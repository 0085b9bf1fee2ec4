// e2e.livemig.disk_copy: the disk pre-copy's mechanics on two real QEMU 7.2
// processes (TCG, no guest OS, paused with -S): the source's qcow2 overlay
// over a golden image is exported read-only with dirty bitmaps
// (DirtyTracker), the destination (-incoming defer) exports its overlay over
// its own copy of the golden image writable; pass 0 sends the top image's
// allocated ranges, writes made during and after it (HMP qemu-io on the
// source's node, as a guest's would land) are sent by dirty passes, every
// batch goes through the disk message codec (zstd) and both ends hash it.
// The second case runs the last pass while the source waits before its
// switch-over (pause-before-switchover) and lets the destination load the
// migration stream afterwards. The third runs the `livemig migrate
// --copy-storage all` executable (UTSUSHI_BIN) on the same two QEMUs. After
// both QEMUs quit, `qemu-img compare` proves the images equal, and the byte
// counts prove that no block of the golden image was sent.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "test_support.h"
#include "utsushi/common/process.h"
#include "utsushi/livemig/disk_copy.h"
#include "utsushi/livemig/disk_exports.h"
#include "utsushi/livemig/disk_hash.h"
#include "utsushi/livemig/qemu_control.h"
#include "utsushi/livemig/qmp.h"

extern char** environ;

using namespace utsushi;
using namespace utsushi::livemig;
using namespace std::chrono;
using nlohmann::json;

namespace {

constexpr std::uint64_t M = 1u << 20;
constexpr std::uint64_t K = 1024;

// Runs a helper (qemu-img, qemu-io) and requires it to succeed.
std::string run(const std::vector<std::string>& argv) {
  ProcessOptions options;
  options.timeout = seconds(60);
  auto r = run_process(argv, options);
  REQUIRE(r);
  INFO(r->output);
  REQUIRE(r->ok());
  return r->output;
}

// One QEMU, paused, with `image` as node "disk0" on virtio-blk; killed and
// reaped on destruction unless it quit.
class Qemu {
 public:
  Qemu(const test::TempDir& dir, const std::string& role, const std::string& image, bool incoming)
      : m_qmp_path(dir.file(role + ".qmp")), m_livemig_qmp_path(dir.file(role + "-livemig.qmp")) {
    std::vector<std::string> argv = {"qemu-system-x86_64", "-accel", "tcg", "-nodefaults", "-display", "none", "-S",
                                     "-qmp", "unix:" + m_qmp_path + ",server=on,wait=off",
                                     // a second monitor, for the livemig executable
                                     "-qmp", "unix:" + m_livemig_qmp_path + ",server=on,wait=off", "-blockdev",
                                     "driver=qcow2,node-name=disk0,file.driver=file,file.filename=" + image,
                                     // share-rw: HMP qemu-io writes to the node beside the device, as a guest would.
                                     "-device", "virtio-blk-pci,drive=disk0,id=vd0,share-rw=on"};
    if (incoming) {
      argv.insert(argv.end(), {"-incoming", "defer"});
    }
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    // QEMU's output (HMP qemu-io prints there) goes to ROLE.log in the directory.
    posix_spawn_file_actions_t io;
    posix_spawn_file_actions_init(&io);
    std::string log = dir.file(role + ".log");
    posix_spawn_file_actions_addopen(&io, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&io, 1, 2);
    int rc = posix_spawnp(&m_pid, args[0], &io, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&io);
    REQUIRE(rc == 0);
  }
  ~Qemu() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGKILL);
      ::waitpid(m_pid, nullptr, 0);
    }
  }

  const std::string& livemig_qmp_path() const noexcept { return m_livemig_qmp_path; }
  // Whether QEMU exited (and was reaped) within `limit`.
  bool exited_within(milliseconds limit) {
    const auto deadline = steady_clock::now() + limit;
    while (m_pid > 0 && steady_clock::now() < deadline) {
      if (::waitpid(m_pid, nullptr, WNOHANG) == m_pid) {
        m_pid = -1;
      } else {
        std::this_thread::sleep_for(milliseconds(50));
      }
    }
    return m_pid < 0;
  }

  QmpClient& qmp() {
    for (int i = 0; !m_qmp && i < 200; ++i) {
      auto c = QmpClient::connect(m_qmp_path, seconds(15));
      if (c) {
        m_qmp = std::make_unique<QmpClient>(std::move(*c));
      } else {
        std::this_thread::sleep_for(milliseconds(50));
      }
    }
    REQUIRE(m_qmp);
    return *m_qmp;
  }
  // HMP qemu-io on node disk0 (writes go through the block layer and its bitmaps).
  void qemu_io(const std::string& command) {
    auto r = qmp().execute("human-monitor-command", {{"command-line", "qemu-io disk0 \"" + command + "\""}});
    REQUIRE(r);
    INFO(command << ": " << r->dump());
    REQUIRE(r->get<std::string>().find("rror") == std::string::npos);
  }
  void quit() {
    REQUIRE(qmp().execute("quit"));
    int status = 0;
    REQUIRE(::waitpid(m_pid, &status, 0) == m_pid);
    m_pid = -1;
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  }

 private:
  std::string m_qmp_path;
  std::string m_livemig_qmp_path;
  pid_t m_pid = -1;
  std::unique_ptr<QmpClient> m_qmp;
};

// Both ends of the link, in one process: what the sender sent and the receiver wrote.
struct Transfer {
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx{ZSTD_createCCtx(), ZSTD_freeCCtx};
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx{ZSTD_createDCtx(), ZSTD_freeDCtx};
  std::vector<std::uint64_t> disk_sizes;
  DiskWriteHash sent_hash;
  DiskWriteHash written_hash;
  std::uint64_t data_bytes = 0;  // data bytes in the batches
  std::uint64_t wire_bytes = 0;  // encoded messages
  std::uint64_t batches = 0;

  // Sends `ranges` of `source` to `dest`; `after_first` runs once the first batch is written.
  void pass(NbdClient& source, NbdClient& dest, std::span<const DiskRange> ranges,
            const std::function<void()>& after_first = {}) {
    auto r = read_batches(source, 0, ranges, BatchLimits{256 * K, 4096}, [&](DiskBatch&& b) -> Result<void> {
      sent_hash.add(b);
      data_bytes += b.data.size();
      Bytes msg;
      UTSUSHI_TRY(encode_disk_batch(b, cctx.get(), msg));
      wire_bytes += msg.size();
      auto got = UTSUSHI_TRY(decode_disk_batch(msg, disk_sizes, dctx.get()));
      UTSUSHI_TRY(write_batch(dest, got));
      written_hash.add(got);
      if (batches++ == 0 && after_first) {
        after_first();
      }
      return {};
    });
    INFO((r ? "" : r.error().message()));
    REQUIRE(r);
  }
};

// The bytes of the image's own layer (not its backing file) that hold data.
std::uint64_t top_data_bytes(const std::string& image) {
  auto map = json::parse(run({"qemu-img", "map", "--output=json", image}));
  std::uint64_t n = 0;
  for (const auto& e : map) {
    if (e.value("depth", -1) == 0 && e.value("data", false)) {
      n += e["length"].get<std::uint64_t>();
    }
  }
  return n;
}

std::vector<DiskRange> pass_ranges(NbdClient& c, const PassExport& p) {
  auto alloc = c.extents(k_context_allocation);
  REQUIRE(alloc);
  if (!p.bitmap) {
    auto depth = c.extents(k_context_depth);
    REQUIRE(depth);
    return top_image_ranges(*depth, *alloc);
  }
  auto dirty = c.extents(dirty_bitmap_context(*p.bitmap));
  REQUIRE(dirty);
  return dirty_ranges(*dirty, *alloc);
}

NbdClient connect_pass(const std::string& socket, const PassExport& p) {
  std::vector<std::string> contexts = {k_context_allocation};
  contexts.push_back(p.bitmap ? dirty_bitmap_context(*p.bitmap) : k_context_depth);
  auto c = NbdClient::connect(socket, p.name, contexts);
  INFO((c ? "" : c.error().message()));
  REQUIRE(c);
  return std::move(*c);
}

// A clone and the destination's overlay over its own copy of the golden
// image. The golden image holds 12 MiB of data; the clone's own writes put
// data over golden data (1M..2M), zeros over it (4M..5M) and data where the
// golden image has none (50M..50.5M).
struct Images {
  test::TempDir dir;
  std::string base = dir.file("golden.qcow2"), dbase = dir.file("golden-dst.qcow2");
  std::string src = dir.file("src.qcow2"), dst = dir.file("dst.qcow2");

  Images() {
    run({"qemu-img", "create", "-q", "-f", "qcow2", base, "64M"});
    run({"qemu-io", "-f", "qcow2", "-c", "write -P 0xaa 0 8M", "-c", "write -P 0xbb 32M 4M", base});
    run({"cp", base, dbase});
    run({"qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", src});
    run({"qemu-img", "create", "-q", "-f", "qcow2", "-b", dbase, "-F", "qcow2", dst});
    run({"qemu-io", "-f", "qcow2", "-c", "write -P 0x11 1M 1M", "-c", "write -z 4M 1M", "-c",
         "write -P 0x22 50M 512k", src});
  }
  // After both QEMUs quit: the two overlays read the same.
  void check_equal() {
    auto cmp = run_process({"qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", src, dst});
    REQUIRE(cmp);
    INFO(cmp->output);
    CHECK(cmp->ok());
  }
};

// Two QEMUs over the Images, the NBD servers, the destination's writable
// export, a tracker on the source and the writer.
struct Rig : Images {
  std::string src_nbd = dir.file("src.nbd"), dst_nbd = dir.file("dst.nbd");
  std::unique_ptr<Qemu> source, dest;
  std::optional<DirtyTracker> tracker;
  std::optional<NbdClient> writer;
  Transfer t;

  Rig() {
    source = std::make_unique<Qemu>(dir, "src", src, false);
    dest = std::make_unique<Qemu>(dir, "dst", dst, true);
    REQUIRE(start_nbd_server(source->qmp(), src_nbd));
    REQUIRE(start_nbd_server(dest->qmp(), dst_nbd));
    REQUIRE(export_disk(dest->qmp(), {"dst-vda", "disk0", Access::writable, false, std::nullopt}));
    auto tr = DirtyTracker::start(source->qmp(), "disk0", "lm-vda");
    REQUIRE(tr);
    tracker.emplace(std::move(*tr));
    auto w = NbdClient::connect(dst_nbd, "dst-vda");
    REQUIRE(w);
    writer.emplace(std::move(*w));
    REQUIRE(writer->size() == 64 * M);
    t.disk_sizes = {writer->size()};
  }

  // Runs pass `p` (the tracker's current one): `during` runs once the reader
  // is connected, `after_first` once the first batch is written. Returns the
  // ranges the pass chose.
  std::vector<DiskRange> pass(const PassExport& p, const std::function<void()>& during = {},
                              const std::function<void()>& after_first = {}) {
    NbdClient reader = connect_pass(src_nbd, p);
    if (during) {
      during();
    }
    auto ranges = pass_ranges(reader, p);
    t.pass(reader, *writer, ranges, after_first);
    REQUIRE(reader.shutdown());
    return ranges;
  }
  std::vector<DiskRange> next_pass(const std::function<void()>& during = {}) {
    auto p = tracker->next_pass();
    REQUIRE(p);
    return pass(*p, during);
  }
  // Ends both sides' disk work: tracker, writer, exports.
  void finish_disks() {
    REQUIRE(tracker->stop());
    REQUIRE(writer->flush());
    REQUIRE(writer->shutdown());
    CHECK(t.sent_hash == t.written_hash);
    REQUIRE(remove_export(dest->qmp(), "dst-vda"));
    REQUIRE(stop_nbd_server(dest->qmp()));
    REQUIRE(stop_nbd_server(source->qmp()));
  }
  // After both QEMUs quit: the images are equal, and only the clone's own writes travelled.
  void check_images(std::uint64_t expected_data_bytes) {
    check_equal();
    std::uint64_t golden = top_data_bytes(base);
    CHECK(golden == 12 * M);
    CHECK(t.data_bytes == expected_data_bytes);
    CHECK(t.wire_bytes < t.data_bytes);  // the patterns compress
    CHECK(top_data_bytes(dst) <= t.data_bytes);
    WARN("disk pre-copy: " << t.batches << " batches, " << t.data_bytes << " data bytes, " << t.wire_bytes
                           << " on the wire; golden image " << golden << " bytes not sent; hash "
                           << t.sent_hash.hex());
  }
};

// Polls query-migrate (up to 30 s) until the migration pauses before its
// switch-over or ends; returns that status.
std::string wait_migration(Monitor& qmp) {
  for (int i = 0; i < 600; ++i) {
    auto st = query_migration(qmp);
    REQUIRE(st);
    if (st->status == "pre-switchover" || st->status == "completed" || st->status == "failed" ||
        st->status == "cancelled") {
      return st->status;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  return "timeout";
}

const std::vector<DiskRange> k_clone_ranges = {{1 * M, 1 * M, DiskRangeKind::data},
                                               {4 * M, 1 * M, DiskRangeKind::zero},
                                               {50 * M, 512 * K, DiskRangeKind::data}};

}  // namespace

TEST_CASE("livemig disk pre-copy between two real QEMUs: top image, then dirty passes", "[e2e][livemig][disk]") {
  Rig rig;
  // Pass 0: the top image only; a write lands in a range already sent while the pass runs.
  auto ranges = rig.pass(rig.tracker->current(), {}, [&] { rig.source->qemu_io("write -P 0x33 1088k 4k"); });
  CHECK(ranges == k_clone_ranges);
  CHECK(rig.t.data_bytes == 1 * M + 512 * K);
  // After pass 0: data over golden data, in a hole of both, and zeros over the top's data.
  rig.source->qemu_io("write -P 0x44 10M 64k");
  rig.source->qemu_io("write -P 0x55 33M 4k");
  rig.source->qemu_io("write -z 50M 64k");

  // Pass 1: exactly the dirty 64 KiB granules; a write after it starts goes to pass 2.
  ranges = rig.next_pass([&] { rig.source->qemu_io("write -P 0x66 60M 4k"); });
  CHECK(ranges == std::vector<DiskRange>{{1 * M + 64 * K, 64 * K, DiskRangeKind::data},
                                         {10 * M, 64 * K, DiskRangeKind::data},
                                         {33 * M, 64 * K, DiskRangeKind::data},
                                         {50 * M, 64 * K, DiskRangeKind::zero}});
  CHECK(rig.t.data_bytes == 1 * M + 512 * K + 3 * 64 * K);
  // Pass 2 holds only the write made during pass 1; pass 3 finds nothing.
  CHECK(rig.next_pass() == std::vector<DiskRange>{{60 * M, 64 * K, DiskRangeKind::data}});
  CHECK(rig.next_pass().empty());
  rig.finish_disks();
  rig.source->quit();
  rig.dest->quit();
  rig.check_images(1 * M + 512 * K + 4 * 64 * K);
}

TEST_CASE("livemig disk pre-copy: the last dirty pass while the source waits before switch-over, then the "
          "destination loads", "[e2e][livemig][disk]") {
  Rig rig;
  std::string stream = rig.dir.file("migration.sock");
  REQUIRE(rig.dest->qmp().execute("migrate-incoming", {{"uri", "unix:" + stream}}));
  CHECK(rig.pass(rig.tracker->current()) == k_clone_ranges);
  rig.source->qemu_io("write -P 0x77 20M 64k");  // after the last regular pass

  // The source stops before its switch-over: the guest cannot write, the disk is still active.
  json caps = json::array({{{"capability", "pause-before-switchover"}, {"state", true}}});
  REQUIRE(rig.source->qmp().execute("migrate-set-capabilities", {{"capabilities", caps}}));
  REQUIRE(rig.source->qmp().execute("migrate", {{"uri", "unix:" + stream}}));
  REQUIRE(wait_migration(rig.source->qmp()) == "pre-switchover");
  CHECK(query_runstate(rig.source->qmp()).value_or("") == "finish-migrate");

  // The final pass, in the stopped phase: exactly the write made after the last pass.
  CHECK(rig.next_pass() == std::vector<DiskRange>{{20 * M, 64 * K, DiskRangeKind::data}});
  rig.finish_disks();
  REQUIRE(rig.source->qmp().execute("migrate-continue", {{"state", "pre-switchover"}}));
  // Both QEMUs were started with -S: the destination ends its load in prelaunch.
  REQUIRE(wait_migration(rig.dest->qmp()) == "completed");
  CHECK(wait_migration(rig.source->qmp()) == "completed");
  CHECK(query_runstate(rig.dest->qmp()).value_or("") == "prelaunch");
  rig.source->quit();
  rig.dest->quit();
  rig.check_images(1 * M + 512 * K + 64 * K);
}

namespace {

// The last line of `output` that is a JSON object with a "status" (a --json
// result), else null.
json result_line(const std::string& output) {
  json found;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("status")) {
      found = std::move(j);
    }
  }
  return found;
}

}  // namespace

TEST_CASE("livemig migrate --copy-storage all: the executable moves a clone's own blocks with its memory",
          "[e2e][livemig][disk]") {
  const char* bin = std::getenv("UTSUSHI_BIN");
  REQUIRE(bin != nullptr);
  Images img;
  Qemu source(img.dir, "src", img.src, false);
  Qemu dest(img.dir, "dst", img.dst, true);
  source.qemu_io("write -P 0x99 8M 256k");  // through QEMU's node, where the golden image has none
  REQUIRE(source.qmp().execute("cont"));    // livemig moves running guests (this one: SeaBIOS, no OS)
  dest.qmp();
  ProcessOptions options;
  options.timeout = seconds(240);
  auto r = run_process({std::string(bin) + "/livemig", "--json", "migrate", "--source-qmp", source.livemig_qmp_path(),
                        "--dest-qmp", dest.livemig_qmp_path(), "--copy-storage", "all", "--bandwidth", "32M"},
                       options);
  REQUIRE(r);
  INFO(r->output);
  REQUIRE(r->ok());
  json res = result_line(r->output);
  REQUIRE(res.is_object());
  CHECK(res["status"] == "ok");
  REQUIRE(res["disks"].size() == 1);
  const json& d = res["disks"][0];
  // The clone's own data (1 MiB + 512 KiB + the 256 KiB written through QEMU) and its 1 MiB of
  // zeros travelled; the golden image's 12 MiB did not.
  CHECK(d["data_bytes"] == 1 * M + 512 * K + 256 * K);
  CHECK(d["zero_bytes"] == 1 * M);
  CHECK(d["wire_bytes"].get<std::uint64_t>() < 256 * K);  // patterns: zstd and copy ranges
  WARN("migrate --copy-storage all: " << res["total_ms"] << " ms, downtime " << res["downtime_ms"] << " ms; disk "
                                      << d.dump());
  CHECK(source.exited_within(seconds(30)));  // livemig quits the source after success
  dest.quit();
  img.check_equal();
}
