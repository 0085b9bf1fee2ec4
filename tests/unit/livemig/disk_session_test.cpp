// disk_session.h and its wiring into run_sender/run_receiver (--copy-storage),
// against scripted monitors (fake_monitor.h): which disks are chosen and
// matched, the disk list's checks, the receiver's disk sink through a real
// NBD server (qemu-nbd standing in for the destination QEMU's writable
// export): batches written and hashed, a hash that differs refused with its
// exports removed; the source's exports and bitmaps removed when setting up
// fails half-way; and both ends refusing a peer that does not agree on
// --copy-storage before anything changes. The whole path on real QEMUs with
// a real guest is e2e.livemig.disks.
#include "utsushi/livemig/disk_session.h"

#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "session_fixtures.h"
#include "test_support.h"
#include "utsushi/livemig/disk_copy.h"
#include "utsushi/livemig/file_hash.h"

using namespace utsushi;
using namespace utsushi::livemig;
using namespace utsushi::livemig::test;
using namespace std::chrono;
using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

// A query-block reply: a writable local overlay (virtio, anonymous device)
// over a raw backing file (its file's allocated size given), a read-only
// CD-ROM, a writable disk on a remote NBD server, a drive with no medium and
// a writable raw disk (no allocated size).
json query_block() {
  return json::parse(R"([
    {"device": "", "qdev": "/machine/peripheral-anon/device[0]/virtio-backend",
     "inserted": {"node-name": "#block123", "ro": false, "file": "/var/lib/vm/a.qcow2",
                  "image": {"virtual-size": 1073741824, "format": "qcow2", "filename": "/var/lib/vm/a.qcow2",
                            "actual-size": 328007680, "backing-image": {"filename": "/var/lib/vm/base.raw", "format": "raw",
                                              "virtual-size": 1073741824}}}},
    {"device": "ide1-cd0", "qdev": "/machine/unattached/device[23]",
     "inserted": {"node-name": "#block456", "ro": true, "file": "/srv/debian.iso",
                  "image": {"virtual-size": 4096, "format": "raw"}}},
    {"device": "drive2", "qdev": "vd2",
     "inserted": {"node-name": "remote", "ro": false, "file": "nbd://storage:10809/x",
                  "image": {"virtual-size": 2097152, "format": "raw"}}},
    {"device": "floppy0", "qdev": "fd0"},
    {"device": "drive3", "qdev": "vd3",
     "inserted": {"node-name": "plain", "ro": false, "file": "/var/lib/vm/b.raw",
                  "image": {"virtual-size": 2097152, "format": "raw"}}}
  ])");
}

const std::string k_anon = "/machine/peripheral-anon/device[0]/virtio-backend";
const SessionDisk k_overlay{"#block123", k_anon, 1073741824, "/var/lib/vm/a.qcow2", "qcow2", "/var/lib/vm/base.raw",
                            "raw", "", 328007680};
const SessionDisk k_plain{"plain", "vd3", 2097152, "/var/lib/vm/b.raw", "raw", "", "", "", 0};

}  // namespace

TEST_CASE("livemig select_disks: 'all' takes the writable local disks, names take what they name",
          "[livemig][disk_session]") {
  auto all = select_disks(query_block(), {"all"});
  REQUIRE(all);
  CHECK(*all == std::vector<SessionDisk>{k_overlay, k_plain});
  auto named = select_disks(query_block(), {"drive3", k_anon});
  REQUIRE(named);
  CHECK(*named == std::vector<SessionDisk>{k_plain, k_overlay});

  auto missing = select_disks(query_block(), {"nosuch"});
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == Errc::invalid_argument);
  CHECK_THAT(missing.error().message(), Contains("no disk 'nosuch'"));
  auto ro = select_disks(query_block(), {"ide1-cd0"});
  REQUIRE_FALSE(ro);
  CHECK_THAT(ro.error().message(), Contains("read-only"));
  auto twice = select_disks(query_block(), {"#block123", k_anon});
  REQUIRE_FALSE(twice);
  CHECK_THAT(twice.error().message(), Contains("twice"));
  auto none = select_disks(json::array(), {"all"});
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error().message(), Contains("no writable disk"));
  // What the destination could not recreate or compare: another protocol, format or a deeper chain.
  auto remote = select_disks(query_block(), {"remote"});
  REQUIRE_FALSE(remote);
  CHECK(remote.error().code() == Errc::not_supported);
  json odd = query_block();
  odd[4]["inserted"]["image"]["format"] = "vmdk";
  CHECK(select_disks(odd, {"plain"}).error().code() == Errc::not_supported);
  json deep = query_block();
  deep[0]["inserted"]["image"]["backing-image"]["backing-image"] = json::object();
  auto d = select_disks(deep, {"all"});
  REQUIRE_FALSE(d);
  CHECK_THAT(d.error().message(), Contains("one level"));
}

TEST_CASE("livemig match_disks: the destination's disk of the same device, writable, same size and format",
          "[livemig][disk_session]") {
  json dest = json::parse(R"([
    {"device": "", "qdev": "/machine/peripheral-anon/device[0]/virtio-backend",
     "inserted": {"node-name": "#block999", "ro": false, "file": "/d/a.qcow2",
                  "image": {"virtual-size": 1073741824, "format": "qcow2",
                            "backing-image": {"filename": "/d/base.raw", "format": "raw"}}}},
    {"device": "", "qdev": "vd1",
     "inserted": {"node-name": "small", "ro": false, "file": "/d/b.raw",
                  "image": {"virtual-size": 1024, "format": "raw"}}},
    {"device": "", "qdev": "vd2",
     "inserted": {"node-name": "ro", "ro": true, "file": "/d/c.raw", "image": {"virtual-size": 1024, "format": "raw"}}}
  ])");
  auto m = match_disks(dest, {k_overlay});
  REQUIRE(m);
  REQUIRE(m->size() == 1);
  CHECK((m->front().node == "#block999" && m->front().file == "/d/a.qcow2" && m->front().backing == "/d/base.raw"));
  // Without a qdev the node name decides.
  SessionDisk small{"small", "", 1024, "/s/b.raw", "raw", "", "", ""};
  CHECK(match_disks(dest, {small}).value().front().node == "small");

  auto size = match_disks(dest, {{"x", "vd1", 2048, "/s/b.raw", "raw", "", "", ""}});
  REQUIRE_FALSE(size);
  CHECK(size.error().code() == Errc::failed_precondition);
  CHECK_THAT(size.error().message(), Contains("vd1") && Contains("1024") && Contains("2048"));
  auto format = match_disks(dest, {{"x", "vd1", 1024, "/s/b.qcow2", "qcow2", "", "", ""}});
  REQUIRE_FALSE(format);
  CHECK_THAT(format.error().message(), Contains("is raw, the source's qcow2"));
  SessionDisk unbacked = k_overlay;
  unbacked.backing = unbacked.backing_format = "";
  auto backing = match_disks(dest, {unbacked});
  REQUIRE_FALSE(backing);
  CHECK_THAT(backing.error().message(), Contains("backing file"));
  auto ro = match_disks(dest, {{"x", "vd2", 1024, "/s/c.raw", "raw", "", "", ""}});
  REQUIRE_FALSE(ro);
  CHECK_THAT(ro.error().message(), Contains("read-only"));
  auto none = match_disks(dest, {{"x", "vd7", 1024, "/s/d.raw", "raw", "", "", ""}});
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error().message(), Contains("no disk") && Contains("vd7"));
}

TEST_CASE("livemig warm_backings: the destination's backing files hashed and indexed before a sender comes",
          "[livemig][disk_session]") {
  utsushi::test::TempDir dir;
  std::string base = dir.file("base.raw");
  utsushi::test::make_sparse_file(base, 1 << 20);
  utsushi::test::write_at(base, 8192, utsushi::test::pattern(3 * 4096, 11));
  json blocks = query_block();
  blocks[0]["inserted"]["image"]["backing-image"]["filename"] = base;
  FakeMonitor qmp{"warm-backings.qmp"};
  qmp.on("query-block", Reply::ok(blocks));
  auto warm = warm_backings(qmp);
  REQUIRE(warm);
  auto got = warm->wait();
  CHECK_FALSE(warm->first_error());
  REQUIRE(got.size() == 1);
  REQUIRE(got[0] != nullptr);
  CHECK(got[0]->size() == 3);
  // What a session asks for next is the same index.
  auto again = BackingBlocks::of_file(base, "raw", file_content_hash(base).value());
  REQUIRE(again);
  CHECK(again->get() == got[0].get());

  FakeMonitor none{"warm-backings-none.qmp"};
  none.on("query-block", Reply::ok(json::array({blocks[1], blocks[4]})));  // a CD-ROM, a plain disk
  CHECK(warm_backings(none) == nullptr);
}

TEST_CASE("livemig check_backings: the backing file must exist here with the sender's content hash",
          "[livemig][disk_session]") {
  utsushi::test::TempDir dir;
  std::string base = dir.file("base.raw");
  utsushi::test::make_sparse_file(base, 1 << 20);
  utsushi::test::write_at(base, 4096, utsushi::test::pattern(70000, 3));
  SessionDisk d = k_overlay;
  d.backing = base;
  d.backing_hash = file_content_hash(base).value();
  CHECK(check_backings({d}, {}));
  CHECK(check_backings({k_plain, d}, {"", base}));
  SessionDisk other = d;
  other.backing_hash = std::string(32, '0');
  auto differs = check_backings({other}, {});
  REQUIRE_FALSE(differs);
  CHECK(differs.error().code() == Errc::failed_precondition);
  CHECK_THAT(differs.error().message(), Contains(base) && Contains("differs"));
  auto missing = check_backings({d}, {dir.file("gone.raw")});
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == Errc::failed_precondition);
  CHECK_THAT(missing.error().message(), Contains("gone.raw"));
}

namespace {

// A destination QEMU's disk exports played by qemu-nbd: nbd-server-start
// remembers the socket, block-export-add serves `file` there (writable) as the
// export's id, block-export-del stops it, query-block lists one disk of `size`.
class NbdDestination {
 public:
  FakeMonitor qmp{"fake-dest-disks.qmp"};

  NbdDestination(const utsushi::test::TempDir& dir, std::string file, std::uint64_t size)
      : m_file(std::move(file)), m_pidfile(dir.file("nbd.pid")) {
    qmp.on("query-block", Reply::ok(json::array({{{"device", ""},
                                                  {"qdev", "vd0"},
                                                  {"inserted",
                                                   {{"node-name", "disk0"},
                                                    {"ro", false},
                                                    {"file", m_file},
                                                    {"image", {{"virtual-size", size}, {"format", "raw"}}}}}}})));
    qmp.on("nbd-server-start", Reply::from([this](const json& a, int) -> Result<json> {
             m_socket = a["addr"]["data"]["path"].get<std::string>();
             return json::object();
           }));
    qmp.on("block-export-add", Reply::from([this](const json& a, int) -> Result<json> {
             m_id = a["id"].get<std::string>();
             std::string cmd = "qemu-nbd -f raw -e 2 -x " + m_id + " --socket=" + m_socket +
                               " --persistent --fork --pid-file=" + m_pidfile + " " + m_file;
             if (utsushi::test::sh(cmd) != 0) {
               return fail(Errc::failed_precondition, "qemu-nbd did not start");
             }
             return json::object();
           }));
    qmp.on("block-export-del", Reply::from([this](const json&, int) -> Result<json> {
             stop();
             m_id.clear();
             return json::object();
           }));
    qmp.on("query-block-exports", Reply::from([this](const json&, int) -> Result<json> {
             return m_id.empty() ? json::array() : json::array({{{"id", m_id}}});
           }));
    qmp.on("nbd-server-stop", Reply::ok());
  }
  ~NbdDestination() { stop(); }

 private:
  void stop() { utsushi::test::stop_daemon(m_pidfile); }
  std::string m_file;
  std::string m_pidfile;
  std::string m_socket;
  std::string m_id;
};

constexpr std::uint64_t G = k_disk_hash_granule;

// A sparse raw file of 16 granules in `dir` for qemu-nbd to serve; fails the
// test when qemu-nbd is missing.
std::string nbd_dest_file(const utsushi::test::TempDir& dir) {
  if (!utsushi::test::have("qemu-nbd")) {
    FAIL("qemu-nbd is not installed (scripts/setup installs qemu-utils)");
  }
  std::string file = dir.file("dest.raw");
  utsushi::test::make_sparse_file(file, 16 * G);
  return file;
}

Bytes message(const DiskBatch& b) {
  Bytes out;
  REQUIRE(encode_disk_batch(b, nullptr, out));
  return out;
}

}  // namespace

TEST_CASE("livemig DiskSink: batches written and hashed, a hash that differs is refused, exports removed",
          "[livemig][disk_session][nbd]") {
  utsushi::test::TempDir dir;
  std::string file = nbd_dest_file(dir);
  NbdDestination dest(dir, file, 16 * G);
  auto sink = DiskSink::open(dest.qmp, {{"#block1", "vd0", 16 * G, "/src/disk.raw", "raw", "", "", ""}});
  INFO((sink ? "" : sink.error().message()));
  REQUIRE(sink);
  DiskBatch b;
  b.ranges = {{2 * G, G, DiskRangeKind::data}, {5 * G, 2 * G, DiskRangeKind::zero}};
  b.data = utsushi::test::pattern(G, 7);
  REQUIRE((*sink)->write(message(b)));
  DiskWriteHash sent;
  sent.add(b);

  // Two of b's blocks again at 9 granules: they travel as copies, read back from the export.
  DiskBatch again;
  again.ranges = {{9 * G, 2 * k_ref_block, DiskRangeKind::data}};
  again.data.assign(b.data.begin() + 3 * k_ref_block, b.data.begin() + 5 * k_ref_block);
  DiskBatch wire = with_copies(again, [](const BlockHash&) { return true; });
  REQUIRE(copy_bytes(wire) == 2 * k_ref_block);
  REQUIRE((*sink)->write(message(wire)));
  sent.add(again);
  CHECK(utsushi::test::read_at(file, 9 * G, again.data.size()) == again.data);
  // The same two blocks 1536 bytes past a boundary (as in a tar): copies that start at a sector.
  DiskBatch shifted;
  shifted.ranges = {{11 * G + 1536, 2 * k_ref_block, DiskRangeKind::data}};
  shifted.data = again.data;
  DiskBatch shifted_wire = with_copies(shifted, [](const BlockHash&) { return true; });
  REQUIRE(shifted_wire.ranges == std::vector<DiskRange>{{11 * G + 1536, 2 * k_ref_block, DiskRangeKind::copy}});
  REQUIRE((*sink)->write(message(shifted_wire)));
  sent.add(shifted);
  CHECK(utsushi::test::read_at(file, 11 * G, 1536) == Bytes(1536, 0));
  CHECK(utsushi::test::read_at(file, 11 * G + 1536, shifted.data.size()) == shifted.data);
  // A batch that overwrites the block it copies: the copy is of the content before the batch.
  const Bytes first_block(b.data.begin(), b.data.begin() + k_ref_block);
  DiskBatch swap;
  swap.ranges = {{2 * G, k_ref_block, DiskRangeKind::data}, {10 * G, k_ref_block, DiskRangeKind::data}};
  swap.data = utsushi::test::pattern(k_ref_block, 8);
  swap.data.insert(swap.data.end(), first_block.begin(), first_block.end());
  DiskBatch swap_wire = with_copies(swap, [&](const BlockHash& h) { return h == block_hash(first_block.data()); });
  REQUIRE(copy_bytes(swap_wire) == k_ref_block);
  REQUIRE((*sink)->write(message(swap_wire)));
  sent.add(swap);
  CHECK(utsushi::test::read_at(file, 10 * G, k_ref_block) == first_block);
  CHECK(utsushi::test::read_at(file, 2 * G, k_ref_block) == utsushi::test::pattern(k_ref_block, 8));

  // Hostile input writes nothing: a disk id outside the list, a copy of a content never sent.
  DiskBatch other = b;
  other.disk = 3;
  auto bad = (*sink)->write(message(other));
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == Errc::corruption);
  DiskBatch unknown{0, {{12 * G, k_ref_block, DiskRangeKind::copy}}, Bytes(k_disk_copy_hash, 0x33)};
  bad = (*sink)->write(message(unknown));
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == Errc::corruption);
  CHECK(utsushi::test::read_at(file, 12 * G, k_ref_block) == Bytes(k_ref_block, 0));

  SECTION("the sender's hash: verified and flushed; the blocks it carried read back until close()") {
    REQUIRE((*sink)->finish(json{{"hashes", {sent.hex()}}}.dump()));
    CHECK((*sink)->finished());
    CHECK(dest.qmp.count("block-export-del") == 0);
    Bytes block(2 * k_ref_block);
    const std::size_t at = 5 * k_ref_block;
    const std::array<BlockFetch, 2> fetches{BlockFetch{block_hash(b.data.data() + at), block.data()},
                                            BlockFetch{block_hash(b.data.data()), block.data() + k_ref_block}};
    REQUIRE((*sink)->read_blocks(fetches));
    CHECK(std::equal(block.begin(), block.begin() + k_ref_block, b.data.begin() + at));
    CHECK(std::equal(block.begin() + k_ref_block, block.end(), b.data.begin()));
    REQUIRE((*sink)->close());
    CHECK(dest.qmp.count("block-export-del") == 1);
    CHECK(dest.qmp.count("nbd-server-stop") == 1);
    auto gone = (*sink)->read_blocks(std::span(fetches).first(1));
    REQUIRE_FALSE(gone);
    CHECK(gone.error().code() == Errc::corruption);
    const DiskReport& r = (*sink)->reports().at(0);
    CHECK(r.node == "disk0");
    CHECK(r.data_bytes == G + 6 * k_ref_block);
    CHECK(r.copied_bytes == 5 * k_ref_block);
    CHECK(r.zero_bytes == 2 * G);
    CHECK(r.hash == sent.hex());
    std::ifstream in(file, std::ios::binary);
    Bytes got(G);
    in.seekg(static_cast<std::streamoff>(2 * G));
    in.read(reinterpret_cast<char*>(got.data()), static_cast<std::streamsize>(G));
    Bytes want = b.data;
    std::copy_n(swap.data.begin(), k_ref_block, want.begin());  // the swap batch's first block
    CHECK(got == want);
    // Nothing after the end.
    CHECK_FALSE((*sink)->write(message(b)));
  }
  SECTION("another hash: corruption naming the disk; abandon removes the exports") {
    DiskWriteHash twice = sent;
    twice.add(b);
    auto r = (*sink)->finish(json{{"hashes", {twice.hex()}}}.dump());
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::corruption);
    CHECK_THAT(r.error().message(), Contains("disk 0 (disk0)") && Contains("differs"));
    CHECK_FALSE((*sink)->finished());
    (*sink)->abandon();
    CHECK(dest.qmp.count("block-export-del") == 1);
    CHECK(dest.qmp.count("nbd-server-stop") == 1);
  }
  SECTION("a disk end without one hash per disk") {
    for (const char* end : {"{}", R"({"hashes": []})", R"({"hashes": ["a", "b"]})", "nope"}) {
      auto r = (*sink)->finish(end);
      REQUIRE_FALSE(r);
      CHECK(r.error().code() == Errc::corruption);
    }
  }
}

TEST_CASE("livemig DiskSource: a tracker that cannot start leaves no bitmap and no NBD server behind",
          "[livemig][disk_session][fake]") {
  FakeMonitor src{"fake-src-disks.qmp"};
  src.on("nbd-server-start", Reply::ok());
  src.on("nbd-server-stop", Reply::ok());
  src.on("block-export-add", Reply::ok());
  src.on("block-export-del", Reply::ok());
  src.on("query-block-exports", Reply::ok(json::array()));
  src.on("block-dirty-bitmap-remove", Reply::ok());
  src.on("block-dirty-bitmap-add", Reply::from([](const json& a, int) -> Result<json> {
           if (a["node"] == "d1") {
             return fail(Errc::failed_precondition, "QMP error: Node 'd1' is read-only");
           }
           return json::object();
         }));
  auto s = DiskSource::open(src, {{"d0", "", 1 << 20, "/d0", "raw", "", "", ""}, {"d1", "", 1 << 20, "/d1", "raw", "", "", ""}}, 3, 3);
  REQUIRE_FALSE(s);
  CHECK_THAT(s.error().message(), Contains("read-only"));
  CHECK(src.count("block-dirty-bitmap-remove") == 1);  // d0's
  CHECK(src.count("nbd-server-stop") == 1);
}

namespace {

// run_sender against a receiver played by hand that announces `mode`.
Outcome send_to_mode(ScriptedSource& source, const SendOptions& options, const json& mode, Frame& answer) {
  auto links = link_pair();
  REQUIRE(links.receiver->send_text(FrameType::mode, mode.dump()));
  Outcome out = run_sender(options, source.qmp, *links.sender);
  auto f = links.receiver->recv(seconds(5));
  REQUIRE(f);
  answer = std::move(*f);
  return out;
}

}  // namespace

TEST_CASE("livemig --copy-storage: a sender and a receiver that do not agree are refused before anything changes",
          "[livemig][disk_session][fake]") {
  ScriptedSource source;
  Frame answer;
  SECTION("the sender copies disks, the receiver does not take them") {
    SendOptions o = test_send_options();
    o.copy_storage = {"all"};
    Outcome out = send_to_mode(source, o, {{"hold", false}}, answer);
    CHECK(out.report.status == ReportStatus::refused);
    CHECK_THAT(out.report.error, Contains("receiver was not started with --copy-storage"));
  }
  SECTION("the receiver takes disks, the sender copies none") {
    Outcome out = send_to_mode(source, test_send_options(), {{"hold", true}, {"copy_storage", true}}, answer);
    CHECK(out.report.status == ReportStatus::refused);
    CHECK_THAT(out.report.error, Contains("give the sender --copy-storage"));
  }
  SECTION("a mode frame whose fields have other types: an error, not an exception") {
    Outcome out = send_to_mode(source, test_send_options(), {{"hold", 1}, {"copy_storage", "yes"}}, answer);
    CHECK(out.report.status == ReportStatus::failed);
    CHECK_THAT(out.report.error, Contains("the receiver's mode frame") && Contains("hold"));
  }
  CHECK(answer.header.type == FrameType::abort);
  for (const char* changed : {"nbd-server-start", "block-dirty-bitmap-add", "migrate", "migrate-set-capabilities"}) {
    CHECK(source.qmp.count(changed) == 0);
  }
}

TEST_CASE("livemig --copy-storage receiver: memory before the disk list, or the end before the disks' end, is "
          "refused and the destination discarded",
          "[livemig][disk_session][fake]") {
  bool end_first = GENERATE(false, true);
  ScriptedDestination dest({}, 5'000'000);
  ReceiveOptions o = test_receive_options();
  o.copy_storage = true;
  auto links = link_pair();
  Outcome out;
  std::thread receiver([&] { out = run_receiver(o, dest.qmp, *links.receiver); });
  auto mode = links.sender->recv(seconds(10));
  REQUIRE(mode);
  json m = json::parse(mode->text());
  CHECK(m.value("copy_storage", false));
  CHECK(m.value("hold", false));  // --copy-storage implies hold
  if (end_first) {
    REQUIRE(links.sender->send_text(FrameType::end, R"({"bytes": 0, "hash": "2d06800538d394c2"})"));
  } else {
    Bytes junk(64, 0xa5);
    REQUIRE(links.sender->send(FrameType::data, junk, k_frame_zstd, 4096));
  }
  auto answer = links.sender->recv(seconds(10));
  receiver.join();
  REQUIRE(answer);
  CHECK(answer->header.type == FrameType::abort);
  CHECK_THAT(answer->text(), Contains(end_first ? "before the disks' end" : "before the disk list"));
  CHECK(out.report.status == ReportStatus::failed);
  CHECK(out.report.source_state == "discarded");
  CHECK(dest.qmp.count("quit") == 1);
}

TEST_CASE("livemig --copy-storage sender: a disk copy that fails before migrate leaves the source running with no "
          "export, bitmap or NBD server",
          "[livemig][disk_session][fake]") {
  ScriptedSource source;
  source.qmp.on("query-block", Reply::ok(query_block()));
  for (const char* c : {"nbd-server-start", "nbd-server-stop", "block-export-add", "block-export-del",
                        "block-dirty-bitmap-add", "block-dirty-bitmap-remove"}) {
    source.qmp.on(c, Reply::ok());
  }
  source.qmp.on("query-block-exports", Reply::ok(json::array()));
  SendOptions o = test_send_options();
  o.copy_storage = {"plain"};  // (no backing file to hash)
  Frame answer;
  // The fake QEMU creates no NBD socket: the first pass cannot connect.
  Outcome out = send_to_mode(source, o, {{"hold", true}, {"copy_storage", true}}, answer);
  CHECK(answer.header.type == FrameType::disks);  // the list went out, then the abort
  CHECK(out.report.status == ReportStatus::failed);
  CHECK(out.report.source_state == "running");
  REQUIRE(out.error);
  CHECK(source.qmp.count("migrate") == 0);
  CHECK(source.qmp.count("block-dirty-bitmap-add") == 1);
  CHECK(source.qmp.count("block-dirty-bitmap-remove") == 1);
  CHECK(source.qmp.count("block-export-add") == 1);
  CHECK(source.qmp.count("block-export-del") == 1);
  CHECK(source.qmp.count("nbd-server-stop") == 1);
  REQUIRE(out.report.disks.size() == 1);
  CHECK(out.report.disks[0].node == "plain");
  CHECK(out.report.disks[0].file == "/var/lib/vm/b.raw");
  REQUIRE(out.report.disk_phases.size() == 1);
  CHECK(out.report.disk_phases[0].phase == "bulk");
  CHECK(out.report.disk_phases[0].data_bytes == 0);
}

TEST_CASE("livemig BackgroundFlusher: flushes on request off the caller's thread, a failed flush is reported at stop",
          "[livemig][disk_session][nbd]") {
  utsushi::test::TempDir dir;
  std::string file = nbd_dest_file(dir);
  std::string socket = dir.file("nbd.sock"), pidfile = dir.file("nbd.pid");
  REQUIRE(utsushi::test::sh("qemu-nbd -f raw -e 2 -x d0 --socket=" + socket + " --persistent --fork --pid-file=" +
                            pidfile + " " + file) == 0);
  auto flusher = BackgroundFlusher::connect(socket, {"d0"});
  INFO((flusher ? "" : flusher.error().message()));
  REQUIRE(flusher);
  auto wait_flushes = [&](std::uint64_t n) {
    for (int i = 0; i < 500 && (*flusher)->flushes() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return (*flusher)->flushes();
  };
  (*flusher)->request();
  CHECK(wait_flushes(1) == 1);
  SECTION("a clean stop") { CHECK((*flusher)->stop()); }
  SECTION("the export gone: the next flush fails, and stop() says so") {
    utsushi::test::stop_daemon(pidfile);
    (*flusher)->request();
    CHECK(wait_flushes(2) == 2);
    auto r = (*flusher)->stop();
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::io_error);
  }
  utsushi::test::stop_daemon(pidfile);
}
