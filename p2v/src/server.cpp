#include "utsushi/p2v/server.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "utsushi/common/atomic_file.h"
#include "utsushi/common/auth.h"
#include "utsushi/common/cancel.h"
#include "utsushi/common/handles.h"
#include "utsushi/common/log.h"
#include "utsushi/common/net.h"
#include "utsushi/imagefmt/raw.h"
#include "utsushi/p2v/capture.h"
#include "utsushi/common/endian.h"
#include "utsushi/p2v/wire_format.h"

namespace utsushi::p2v {
namespace {

namespace fs = std::filesystem;
using wire::MsgType;

constexpr std::size_t k_journal_entry = 16;
constexpr auto k_sync_interval = std::chrono::seconds(1);

bool valid_name(const std::string& n) {
  return !n.empty() && n.size() < 200 && n[0] != '.' && n.find('/') == std::string::npos &&
         n.find('\0') == std::string::npos;
}

// One disk being received.
class Receiver {
 public:
  static Result<Receiver> open(const std::string& dir, const nlohmann::json& begin) {
    Receiver r;
    r.m_name = begin.at("name").get<std::string>();
    if (!valid_name(r.m_name)) {
      return fail(Errc::invalid_argument, "bad image name '" + r.m_name + "'");
    }
    r.m_size = begin.at("size").get<std::uint64_t>();
    r.m_chunks = begin.at("chunks").get<std::uint64_t>();
    r.m_format = begin.at("format").get<std::string>();
    r.m_compress = begin.value("compress", false);
    r.m_final = (fs::path(dir) / r.m_name).string();
    r.m_partial = (fs::path(dir) / ("." + r.m_name + ".p2v-partial")).string();
    std::string plan = begin.at("plan_id").get<std::string>();
    // Used ranges are whole sectors, so a disk of SIZE bytes has at most
    // SIZE/512 + 1 chunks; anything more is a bad peer, refused before the
    // count sizes the journal and the tables below.
    if (r.m_size > (std::uint64_t{1} << 50) || r.m_chunks > r.m_size / 512 + 1) {
      return fail(Errc::invalid_argument, "BEGIN: " + std::to_string(r.m_chunks) + " chunks for a disk of " +
                                              std::to_string(r.m_size) + " bytes is not a valid plan");
    }
    UTSUSHI_TRY_CTX(parse_output_format(r.m_format), "BEGIN");
    std::error_code ec;
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
    std::string meta = plan + " " + std::to_string(r.m_size) + " " + std::to_string(r.m_chunks);
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
      r.m_hash[i] = load_le64(j.data() + static_cast<std::size_t>(i * k_journal_entry));
      r.m_done[i] = load_le64(j.data() + static_cast<std::size_t>(i * k_journal_entry + 8)) == 1;
    }
    return r;
  }

  std::vector<std::uint8_t> state() const {
    std::vector<std::uint8_t> s(8 + (m_chunks + 7) / 8, 0);
    for (int b = 0; b < 8; ++b) {
      s[static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(m_chunks >> (8 * b));
    }
    for (std::uint64_t i = 0; i < m_chunks; ++i) {
      if (m_done[i]) {
        s[8 + i / 8] |= static_cast<std::uint8_t>(1u << (i % 8));
      }
    }
    return s;
  }

  std::uint64_t held() const { return static_cast<std::uint64_t>(std::count(m_done.begin(), m_done.end(), true)); }

  // A CHUNK payload: verified, written, journalled at the next sync.
  Result<void> chunk(std::span<const std::uint8_t> p, ZSTD_DCtx* dctx) {
    if (p.size() < wire::k_chunk_header) {
      return fail(Errc::corruption, "protocol error: short chunk");
    }
    std::uint64_t index = load_le64(p.data()), offset = load_le64(p.data() + 8);
    std::uint32_t length = load_le32(p.data() + 16);
    std::uint64_t hash = load_le64(p.data() + 20);
    std::uint64_t end = 0;
    if (index >= m_chunks || length == 0 || length > wire::k_chunk_size || __builtin_add_overflow(offset, length, &end) ||
        end > m_size) {
      return fail(Errc::corruption, "protocol error: chunk out of range");
    }
    m_buf.resize(length);
    std::size_t n = ZSTD_decompressDCtx(dctx, m_buf.data(), m_buf.size(), p.data() + wire::k_chunk_header,
                                        p.size() - wire::k_chunk_header);
    if (ZSTD_isError(n) || n != length || XXH64(m_buf.data(), length, 0) != hash) {
      UTSUSHI_LOG_WARN("{}: chunk {} at byte {} arrived corrupt; asking for it again", m_name, index, offset);
      return {};
    }
    UTSUSHI_TRY(pwrite_full(m_data.get(), m_buf, offset, m_partial + "/data.raw"));
    m_hash[index] = hash;
    m_pending.push_back(index);
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
      for (int b = 0; b < 8; ++b) {
        e[b] = static_cast<std::uint8_t>(m_hash[i] >> (8 * b));
        e[8 + b] = b == 0 ? 1 : 0;
      }
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

Result<void> authenticate(int fd, const std::string& token) {
  auto nonce = UTSUSHI_TRY(auth::random_nonce());
  std::vector<std::uint8_t> hello(4 + nonce.size());
  store_le32(hello.data(), wire::k_version);
  std::copy(nonce.begin(), nonce.end(), hello.begin() + 4);
  UTSUSHI_TRY(wire::send_frame(fd, MsgType::hello, hello));
  auto f = UTSUSHI_TRY(wire::recv_frame(fd));
  if (f.type != MsgType::auth || f.payload.size() != wire::k_nonce_size + wire::k_mac_size) {
    return fail(Errc::permission_denied, "peer did not authenticate");
  }
  std::span<const std::uint8_t> cn(f.payload.data(), wire::k_nonce_size);
  std::span<const std::uint8_t> mac(f.payload.data() + wire::k_nonce_size, wire::k_mac_size);
  if (!auth::equal_constant_time(mac, wire::auth_mac(token, "p2v-client", nonce, cn))) {
    (void)wire::send_frame(fd, MsgType::error, "authentication failed: wrong token");
    return fail(Errc::permission_denied, "a peer presented a wrong token; refused");
  }
  auto reply = wire::auth_mac(token, "p2v-server", cn, nonce);
  return wire::send_frame(fd, MsgType::auth_ok, reply);
}

std::vector<std::uint8_t> json_bytes(const nlohmann::json& j) {
  std::string s = j.dump();
  return {s.begin(), s.end()};
}

// One session: any number of disks, one after another. Receive waits are
// bounded, so one silent connection cannot hold the (one-session-at-a-time)
// server forever.
// `written` receives the final image paths, in order.
Result<bool> session(int fd, const ServeOptions& o, std::vector<std::string>& written) {
  UTSUSHI_TRY(net::set_receive_timeout(fd, std::chrono::seconds(30)));  // until the peer has authenticated
  UTSUSHI_TRY(authenticate(fd, o.token));
  UTSUSHI_TRY(net::set_receive_timeout(fd, std::chrono::minutes(10)));  // a client may pause to read its disk
  ZstdDCtx dctx(ZSTD_createDCtx());
  bool finished_any = false;
  for (;;) {
    auto f = wire::recv_frame(fd);
    if (!f) {
      if (f.error().code() == Errc::unavailable && finished_any) {
        return true;  // the client closed after its last disk
      }
      return std::unexpected(std::move(f).error());
    }
    if (f->type != MsgType::begin) {
      return fail(Errc::corruption, "protocol error: expected BEGIN");
    }
    nlohmann::json begin = nlohmann::json::parse(f->payload.begin(), f->payload.end(), nullptr, false);
    if (begin.is_discarded() || !begin.is_object()) {
      return fail(Errc::corruption, "protocol error: bad BEGIN");
    }
    Result<Receiver> rr = fail(Errc::internal, "");
    try {
      rr = Receiver::open(o.output_dir, begin);
    } catch (const nlohmann::json::exception& e) {
      rr = fail(Errc::corruption, std::string("protocol error: bad BEGIN: ") + e.what());
    }
    if (!rr) {
      (void)wire::send_frame(fd, MsgType::error, rr.error().message());
      return std::unexpected(std::move(rr).error());
    }
    Receiver& r = *rr;
    if (o.report) {
      o.report("receiving " + r.name() + " (" + std::to_string(r.held()) + " chunks already held)");
    }
    UTSUSHI_TRY(wire::send_frame(fd, MsgType::state, r.state()));
    for (;;) {
      auto m = wire::recv_frame(fd);
      if (!m) {
        (void)r.sync();  // keep what arrived intact for a resume
        return std::unexpected(std::move(m).error());
      }
      if (m->type == MsgType::chunk) {
        if (auto c = r.chunk(m->payload, dctx.get()); !c) {
          (void)r.sync();
          return std::unexpected(std::move(c).error());
        }
        continue;
      }
      if (m->type != MsgType::done) {
        (void)r.sync();
        return fail(Errc::corruption, "protocol error: unexpected message");
      }
      UTSUSHI_TRY(r.sync());
      auto missing = r.missing();
      if (!missing.empty()) {
        UTSUSHI_TRY(wire::send_frame(fd, MsgType::result, json_bytes({{"status", "resend"}, {"resend", missing}})));
        continue;
      }
      auto path = r.finish(o.threads);
      if (!path) {
        (void)wire::send_frame(fd, MsgType::result,
                               json_bytes({{"status", "error"}, {"message", path.error().message()}}));
        return std::unexpected(std::move(path).error());
      }
      UTSUSHI_TRY(wire::send_frame(fd, MsgType::result, json_bytes({{"status", "ok"}, {"path", *path}})));
      if (o.report) {
        o.report("wrote " + *path);
      }
      written.push_back(*path);
      finished_any = true;
      break;
    }
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
  auto listener = UTSUSHI_TRY(net::Listener::listen(address));
  if (o.report) {
    o.report("listening on " + o.listen);
  }
  for (;;) {
    auto conn = listener.accept(std::chrono::seconds(1));
    if (!conn) {
      if (conn.error().code() == Errc::unavailable) {
        continue;  // nobody connected yet, or the peer left before accept
      }
      return std::unexpected(std::move(conn).error());
    }
    std::vector<std::string> written;
    auto r = session(conn->get(), o, written);
    if (!r) {
      if (r.error().code() == Errc::cancelled) {
        return std::unexpected(std::move(r).error());
      }
      UTSUSHI_LOG_WARN("session ended: {}", r.error().message());
      continue;
    }
    if (*r && o.on_complete) {
      if (auto done = o.on_complete(written); !done) {
        if (o.once || done.error().code() == Errc::cancelled) {
          return done;
        }
        UTSUSHI_LOG_ERROR("{}", done.error().message());
      }
    }
    if (o.once && *r) {
      return {};
    }
  }
}

}  // namespace utsushi::p2v
