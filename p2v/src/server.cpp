#include "utsushi/p2v/server.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <new>
#include <optional>

#include "utsushi/common/atomic_file.h"
#include "utsushi/common/auth.h"
#include "utsushi/common/cancel.h"
#include "utsushi/common/disk_space.h"
#include "utsushi/common/endian.h"
#include "utsushi/common/handles.h"
#include "utsushi/common/link/server.h"
#include "utsushi/common/log.h"
#include "utsushi/common/net.h"
#include "utsushi/common/zstd_stream.h"
#include "utsushi/imagefmt/raw.h"
#include "utsushi/p2v/capture.h"
#include "utsushi/p2v/wire_format.h"

namespace utsushi::p2v {
namespace {

namespace fs = std::filesystem;
using link::Link;
using wire::MsgType;

constexpr std::size_t k_journal_entry = 16;
constexpr auto k_sync_interval = std::chrono::seconds(1);
constexpr std::chrono::milliseconds k_client_pause = std::chrono::minutes(10);  // a client may pause to read its disk

// One disk being received.
class Receiver {
 public:
  // Refuses, before creating or allocating anything, a plan that cannot fit:
  // each chunk holds at least one 512-byte sector, and the journal takes 16
  // bytes per chunk.
  static Result<Receiver> open(const std::string& dir, const wire::Begin& begin) {
    Receiver r;
    r.m_name = begin.client + "/" + begin.name;
    r.m_size = begin.size;
    r.m_chunks = begin.chunks;
    r.m_format = begin.format;
    r.m_compress = begin.compress;
    std::string client_dir = (fs::path(dir) / begin.client).string();
    r.m_final = (fs::path(client_dir) / begin.name).string();
    r.m_partial = (fs::path(client_dir) / ("." + begin.name + ".p2v-partial")).string();
    UTSUSHI_TRY_CTX(parse_output_format(r.m_format), "BEGIN");
    std::uint64_t need = r.m_chunks * (512 + k_journal_entry);
    std::uint64_t have = UTSUSHI_TRY(free_space(dir));
    if (need > have) {
      return fail(Errc::no_space, fmt::format("{}: the plan needs at least {} bytes; {} has {} free", r.m_name, need,
                                              dir, have));
    }
    std::error_code ec;
    if (fs::exists(r.m_final, ec)) {
      return fail(Errc::failed_precondition,
                  fmt::format("{} already exists on the server: name this capture otherwise (capture -o NAME, or "
                              "--name CLIENT), or remove it there",
                              r.m_final));
    }
    fs::create_directories(r.m_partial, ec);
    if (ec) {
      return fail(Errc::io_error, "cannot create " + r.m_partial + ": " + ec.message());
    }
    r.m_lock = UTSUSHI_TRY(open_fd(r.m_partial + "/lock", O_RDWR | O_CREAT));
    if (::flock(r.m_lock.get(), LOCK_EX | LOCK_NB) != 0) {
      return fail(Errc::failed_precondition, r.m_name + " is being received by another session");
    }
    // A partial capture of a different plan (the disk changed) is discarded.
    std::string meta_path = r.m_partial + "/plan";
    std::string meta = begin.plan_id + " " + std::to_string(r.m_size) + " " + std::to_string(r.m_chunks);
    std::string old;
    if (auto f = std::ifstream(meta_path); f) {
      std::getline(f, old);
    }
    bool fresh = old != meta;
    int flags = O_RDWR | O_CREAT | (fresh ? O_TRUNC : 0);
    r.m_data = UTSUSHI_TRY(open_fd(r.m_partial + "/data.raw", flags));
    r.m_journal = UTSUSHI_TRY(open_fd(r.m_partial + "/journal", flags));
    if (::ftruncate(r.m_data.get(), static_cast<off_t>(r.m_size)) != 0 ||
        ::ftruncate(r.m_journal.get(), static_cast<off_t>(r.m_chunks * k_journal_entry)) != 0) {
      return fail_errno(errno, "cannot size " + r.m_partial);
    }
    if (fresh) {
      std::ofstream(meta_path) << meta << "\n";
    }
    r.m_done.assign(r.m_chunks, false);
    r.m_hash.assign(r.m_chunks, 0);
    std::vector<std::uint8_t> j(static_cast<std::size_t>(r.m_chunks * k_journal_entry));
    if (!j.empty()) {
      UTSUSHI_TRY(pread_full(r.m_journal.get(), j, 0, r.m_partial + "/journal"));
    }
    for (std::uint64_t i = 0; i < r.m_chunks; ++i) {
      r.m_hash[i] = le64_at(j, static_cast<std::size_t>(i * k_journal_entry));
      r.m_done[i] = le64_at(j, static_cast<std::size_t>(i * k_journal_entry + 8)) == 1;
    }
    return r;
  }

  Bytes state() const { return wire::encode_state(m_done); }

  std::uint64_t held() const { return static_cast<std::uint64_t>(std::count(m_done.begin(), m_done.end(), true)); }

  // A CHUNK payload: verified, written, journalled at the next sync. One
  // that arrived damaged is left missing (asked for again after DONE).
  Result<void> chunk(const link::Frame& f, ZSTD_DCtx* dctx) {
    auto c = UTSUSHI_TRY(wire::decode_chunk(f.payload, m_chunks, m_size));
    const wire::ChunkHeader& h = c.header;
    m_buf.resize(h.length);
    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    if (f.damaged || !zstd_decompress_exact(dctx, c.compressed, m_buf, ZstdInput::whole) ||
        XXH64(m_buf.data(), h.length, 0) != h.hash) {
      UTSUSHI_LOG_WARN("{}: chunk {} at byte {} arrived corrupt; asking for it again", m_name, h.index, h.offset);
      return {};
    }
    UTSUSHI_TRY(pwrite_full(m_data.get(), m_buf, h.offset, m_partial + "/data.raw"));
    m_hash[h.index] = h.hash;
    m_pending.push_back(h.index);
    if (std::chrono::steady_clock::now() - m_last_sync > k_sync_interval) {
      UTSUSHI_TRY(sync());
    }
    return {};
  }

  // Data first, then the journal entries that name it.
  Result<void> sync() {
    m_last_sync = std::chrono::steady_clock::now();
    if (m_pending.empty()) {
      return {};
    }
    if (::fdatasync(m_data.get()) != 0) {
      return fail_errno(errno, "fdatasync " + m_partial + "/data.raw");
    }
    for (std::uint64_t i : m_pending) {
      std::uint8_t e[k_journal_entry];
      store_le64(e, m_hash[i]);
      store_le64(e + 8, 1);
      UTSUSHI_TRY(pwrite_full(m_journal.get(), e, i * k_journal_entry, m_partial + "/journal"));
      m_done[i] = true;
    }
    m_pending.clear();
    if (::fdatasync(m_journal.get()) != 0) {
      return fail_errno(errno, "fdatasync " + m_partial + "/journal");
    }
    return {};
  }

  // Chunks to send again: corrupt ones and any never received.
  std::vector<std::uint64_t> missing() {
    std::vector<std::uint64_t> out;
    for (std::uint64_t i = 0; i < m_chunks; ++i) {
      if (!m_done[i]) {
        out.push_back(i);
      }
    }
    return out;
  }

  Result<std::string> finish(unsigned threads) {
    UTSUSHI_TRY(sync());
    if (m_format == "raw") {
      // Durable like every other output (common/atomic_file.h): data, rename, directory.
      UTSUSHI_TRY(commit_rename(m_partial + "/data.raw", m_final));
    } else {
      auto driver = UTSUSHI_TRY(imagefmt::open_raw(m_partial + "/data.raw", {}));
      imagefmt::BlockDevice dev(std::move(driver));
      ImageOptions o;
      o.format = UTSUSHI_TRY(parse_output_format(m_format));
      o.compress = m_compress;
      o.threads = threads;
      UTSUSHI_TRY(write_image(dev, m_final, o));
    }
    std::error_code ec;
    fs::remove_all(m_partial, ec);
    return m_final;
  }

  const std::string& name() const { return m_name; }

 private:
  std::string m_name, m_final, m_partial, m_format;
  bool m_compress = false;
  std::uint64_t m_size = 0, m_chunks = 0;
  Fd m_lock, m_data, m_journal;
  std::vector<bool> m_done;
  std::vector<std::uint64_t> m_hash, m_pending;
  std::vector<std::uint8_t> m_buf;
  std::chrono::steady_clock::time_point m_last_sync = std::chrono::steady_clock::now();
};

Result<void> send_result(Link& link, const wire::Outcome& r) { return link.send(MsgType::result, wire::encode_result(r)); }

// Opens the receiver for a BEGIN; never throws (a plan too large for memory
// is refused like any other).
Result<Receiver> open_receiver(const std::string& dir, const wire::Begin& begin) {
  try {
    return Receiver::open(dir, begin);
  } catch (const std::bad_alloc&) {
    return fail(Errc::no_space, "BEGIN: not enough memory for the plan's tables");
  }
}

// Receives one disk's chunks until it is complete; the image's path.
Result<std::string> receive_disk(Link& link, Receiver& r, const ServeOptions& o, ZSTD_DCtx* dctx) {
  for (;;) {
    auto m = link.recv(k_client_pause);
    if (!m) {
      (void)r.sync();  // keep what arrived intact for a resume
      return std::unexpected(std::move(m).error());
    }
    if (m->header.type == MsgType::chunk) {
      if (auto c = r.chunk(*m, dctx); !c) {
        (void)r.sync();
        return std::unexpected(std::move(c).error());
      }
      continue;
    }
    if (m->damaged || m->header.type != MsgType::done) {
      (void)r.sync();
      return fail(Errc::corruption, m->header.type == link::k_type_abort
                                        ? "the client aborted: " + m->text()
                                        : std::string("protocol error: unexpected message"));
    }
    UTSUSHI_TRY(r.sync());
    auto missing = r.missing();
    if (!missing.empty()) {
      UTSUSHI_TRY(send_result(link, {wire::Outcome::Status::resend, std::move(missing), {}, {}}));
      continue;
    }
    auto path = r.finish(o.threads);
    if (!path) {
      (void)send_result(link, {wire::Outcome::Status::error, {}, {}, path.error().message()});
      return std::unexpected(std::move(path).error());
    }
    UTSUSHI_TRY(send_result(link, {wire::Outcome::Status::ok, {}, *path, {}}));
    return path;
  }
}

// One session: any number of disks, one after another. True when at least
// one disk was written; `written` receives the final image paths, in order.
Result<bool> session(Link& link, const ServeOptions& o, std::vector<std::string>& written) {
  ZstdDCtx dctx(ZSTD_createDCtx());
  bool finished_any = false;
  for (;;) {
    auto f = link.recv(k_client_pause);
    if (!f) {
      if (f.error().code() == Errc::unavailable && finished_any) {
        return true;  // the client closed after its last disk
      }
      return std::unexpected(std::move(f).error());
    }
    if (f->damaged || f->header.type != MsgType::begin) {
      return fail(Errc::corruption, "protocol error: expected BEGIN");
    }
    auto begin = wire::decode_begin(f->payload);
    auto rr = begin ? open_receiver(o.output_dir, *begin) : Result<Receiver>(std::unexpected(begin.error()));
    if (!rr) {
      link.send_abort(rr.error().message());
      return std::unexpected(std::move(rr).error());
    }
    if (o.report) {
      o.report("receiving " + rr->name() + " (" + std::to_string(rr->held()) + " chunks already held)");
    }
    UTSUSHI_TRY(link.send(MsgType::state, rr->state()));
    auto path = UTSUSHI_TRY(receive_disk(link, *rr, o, dctx.get()));
    if (o.report) {
      o.report("wrote " + path);
    }
    written.push_back(std::move(path));
    finished_any = true;
  }
}

}  // namespace

Result<void> serve(const ServeOptions& o) {
  UTSUSHI_TRY(auth::check_token(o.token, "p2v serve"));
  auto address = UTSUSHI_TRY(net::parse_host_port(o.listen));
  std::error_code ec;
  fs::create_directories(o.output_dir, ec);
  if (ec) {
    return fail(Errc::io_error, "cannot create " + o.output_dir + ": " + ec.message());
  }
  link::ServerOptions so;
  so.protocol = wire::k_protocol;
  so.token = o.token;
  so.link = link::LinkOptions{0, std::chrono::seconds(60), wire::k_max_payload, true};
  so.max_sessions = std::max(1u, o.sessions);
  auto server = UTSUSHI_TRY(link::Server::listen(address, std::move(so)));
  if (o.on_listening) {
    o.on_listening(server.port());
  }
  if (o.report) {
    o.report("listening on " + net::format_host_port({address.host, std::to_string(server.port())}));
  }
  // The first error of an on_complete hook under `once`, returned by serve().
  std::mutex failed_mutex;
  std::optional<Error> failed;
  auto ran = server.run([&](Link& link) {
    std::vector<std::string> written;
    auto r = session(link, o, written);
    if (!r) {
      UTSUSHI_LOG_WARN("session ended: {}", r.error().message());
      return link::AfterSession::serve_on;
    }
    if (*r && o.on_complete) {
      if (auto done = o.on_complete(written); !done) {
        UTSUSHI_LOG_ERROR("{}", done.error().message());
        if (o.once) {
          std::lock_guard lock(failed_mutex);
          failed = std::move(done).error();
        }
      }
    }
    return o.once && *r ? link::AfterSession::stop : link::AfterSession::serve_on;
  });
  UTSUSHI_TRY(ran);
  if (failed) {
    return std::unexpected(std::move(*failed));
  }
  return {};
}

}  // namespace utsushi::p2v
