// The sender's pump (pump.h): QEMU's stream in, DATA frames out.
#include "pump.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

#include <fmt/core.h>

#include <cstring>
#include <functional>
#include <memory>
#include <thread>

#include "utsushi/livemig/batch_compressor.h"
#include "utsushi/livemig/first_pass_hold.h"
#include "utsushi/livemig/shipper.h"

namespace utsushi::livemig {

using namespace std::chrono;
using nlohmann::json;

namespace {

// Frames between the pump and the shipper: about 2 MB at 1 MiB batches, 60 ms
// of a 32 MiB/s link, so the link stays busy while QEMU finishes its stream
// after stopping the guest, without hiding the link's speed from QEMU.
constexpr std::size_t k_ship_queue = 4;
// The first batch's limit (doubling up to SendOptions::batch_bytes).
constexpr std::size_t k_first_batch = 64 * 1024;

// Reads QEMU's stream socket. Before blocking it calls `idle` (the encoder's
// flush), so a batch never waits for input that QEMU is not sending; the
// pending stream bytes are hashed for the end-to-end check.
class QemuReader final : public ByteReader {
 public:
  QemuReader(int fd, std::function<Result<void>()> idle, const std::atomic<bool>& stop)
      : m_fd(fd), m_idle(std::move(idle)), m_stop(stop) {
    XXH3_64bits_reset(m_hash.get());
  }
  Result<std::size_t> read_some(std::span<std::uint8_t> buf) override {
    pollfd p{m_fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) {
      UTSUSHI_TRY(m_idle());
    }
    for (;;) {
      if (m_stop.load()) {
        return fail(Errc::aborted, "livemig: stream reader stopped");
      }
      p.revents = 0;
      auto t0 = std::chrono::steady_clock::now();
      int r = ::poll(&p, 1, 100);
      m_waited += std::chrono::steady_clock::now() - t0;
      if (r < 0 && errno != EINTR) {
        return fail_errno(errno, "livemig: poll on the QEMU stream");
      }
      if (r <= 0) {
        continue;
      }
      ssize_t n = ::recv(m_fd, buf.data(), buf.size(), 0);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) {
          continue;
        }
        return fail(Errc::aborted, fmt::format("livemig: reading the QEMU stream: {}", std::strerror(errno)), errno);
      }
      XXH3_64bits_update(m_hash.get(), buf.data(), static_cast<std::size_t>(n));
      m_bytes += static_cast<std::uint64_t>(n);
      return static_cast<std::size_t>(n);
    }
  }
  std::uint64_t hash() const { return XXH3_64bits_digest(m_hash.get()); }
  std::uint64_t bytes() const { return m_bytes; }
  // Time spent waiting for QEMU to send more.
  std::chrono::steady_clock::duration waited() const { return m_waited; }

 private:
  struct StateFree {
    void operator()(XXH3_state_t* s) const noexcept { XXH3_freeState(s); }
  };
  int m_fd;
  std::function<Result<void>()> m_idle;
  const std::atomic<bool>& m_stop;
  std::unique_ptr<XXH3_state_t, StateFree> m_hash{XXH3_createState()};
  std::uint64_t m_bytes = 0;
  std::chrono::steady_clock::duration m_waited{};
};

std::uint64_t page_records(const KindTable& kinds) noexcept {
  std::uint64_t n = 0;
  for (std::size_t k = 1; k < k_page_kinds; ++k) {
    n += kinds[k].records;
  }
  return n;
}

}  // namespace

namespace {

// The flow control's wait (pump.h): until `sent` stream bytes are at most
// k_flow_window beyond the receiver's progress.
Result<void> wait_for_receiver(PeerInbox& inbox, std::uint64_t sent, const std::atomic<bool>& stop) {
  UTSUSHI_TRY(inbox.drain());
  std::uint64_t seen = inbox.taken();
  auto stalled_since = steady_clock::now();
  while (sent > inbox.taken() + k_flow_window) {
    if (stop.load()) {
      return fail(Errc::aborted, "livemig: stream reader stopped");
    }
    if (auto reason = inbox.abort_reason()) {
      return fail(Errc::aborted, "the receiver stopped the migration: " + *reason);
    }
    UTSUSHI_TRY(inbox.poll(milliseconds(100)));
    if (inbox.taken() > seen) {
      seen = inbox.taken();
      stalled_since = steady_clock::now();
    } else if (steady_clock::now() - stalled_since > k_flow_stall) {
      return fail(Errc::unavailable, fmt::format("livemig: the receiver took no stream bytes for {} s",
                                                 k_flow_stall.count()));
    }
  }
  return {};
}

}  // namespace

// Parse + encode + compress on this thread, send on a second one, with at
// most k_ship_queue frames between them. The zstd level follows the
// bottleneck (batch_compressor.h) unless pinned.
void pump(int qemu_fd, Link& link, PeerInbox& inbox, const SendOptions& options, const std::atomic<bool>& stop,
          PumpResult& out, PumpProgress& progress, std::mutex& send_lock, const SentBlocks* disk_blocks,
          std::function<void()> first_pass_near_end) {
  Shipper shipper(k_ship_queue, [&](const OutFrame& f) -> Result<void> {
    std::lock_guard lock(send_lock);
    return link.send(f.type, f.payload, f.flags, f.raw_len);
  });
  const LevelBounds bounds = level_bounds(options.zstd_level, options.zstd_max_level);
  LevelController levels(bounds.min, bounds.max);
  LevelFollower follower(levels, shipper);
  BatchCompressor compressor(levels.level());
  const QemuReader* reader_ptr = nullptr;
  // The pump's own time per batch: from the end of the previous batch's push
  // to this batch's compressed bytes, less the waits for QEMU.
  auto batch_start = steady_clock::now();
  steady_clock::duration waited_at_start{};
  // The first batches are small and double up to the limit, so the link
  // starts at once instead of after a whole batch.
  std::size_t batch_limit = std::min(options.batch_bytes, k_first_batch);
  PageEncoder* encoder_ptr = nullptr;
  std::uint64_t stream_sent = 0;  // stream bytes in DATA frames so far (flow control)
  steady_clock::duration flow_waited{};
  PageEncoder encoder(batch_limit, [&](Bytes& batch, const std::array<std::uint64_t, k_page_kinds>& share)
                                       -> Result<void> {
    Bytes compressed;
    auto t0 = steady_clock::now();
    int level = compressor.level();
    UTSUSHI_TRY(compressor.compress(batch, compressed));
    auto t1 = steady_clock::now();
    double busy_s = duration<double>((t1 - batch_start) - (reader_ptr->waited() - waited_at_start)).count();
    double wire = static_cast<double>(compressed.size() + k_frame_header);
    compressor.set_level(follower.after_batch(batch.size(), duration<double>(t1 - t0).count(), busy_s, wire,
                                              std::min(LevelController::k_judged_batch, options.batch_bytes)));
    out.level_bytes[static_cast<std::size_t>(level)] += batch.size();
    out.data_frames++;
    out.data_payload += compressed.size();
    KindTable& kinds = encoder_ptr->kinds();
    for (std::size_t k = 0; k < k_page_kinds; ++k) {
      kinds[k].wire_bytes += wire * static_cast<double>(share[k]) / static_cast<double>(batch.size());
    }
    stream_sent += encoder_ptr->batch_stream_bytes();
    const auto w0 = steady_clock::now();
    UTSUSHI_TRY(wait_for_receiver(inbox, stream_sent, stop));
    flow_waited += steady_clock::now() - w0;
    UTSUSHI_TRY(shipper.push({FrameType::data, std::move(compressed), k_frame_zstd,
                              static_cast<std::uint32_t>(batch.size())}));
    if (batch_limit < options.batch_bytes && batch.size() >= batch_limit) {  // full: QEMU keeps up
      batch_limit = std::min(options.batch_bytes, batch_limit * 2);
      encoder_ptr->set_batch_limit(batch_limit);
    }
    batch_start = steady_clock::now();
    waited_at_start = reader_ptr->waited();
    return {};
  });
  encoder_ptr = &encoder;
  encoder.set_disk_blocks(disk_blocks);
  QemuReader reader(
      qemu_fd,
      [&]() -> Result<void> {
        progress.bytes = reader.bytes();
        progress.pages = page_records(encoder.kinds());
        return encoder.flush_when_idle();
      },
      stop);
  reader_ptr = &reader;
  FirstPassWatch watch(encoder, k_first_pass_margin, std::move(first_pass_near_end));
  auto run = [&]() -> Result<void> {
    out.summary = UTSUSHI_TRY(parse_stream(reader, watch));
    UTSUSHI_TRY(encoder.flush());
    json end = {{"bytes", reader.bytes()}, {"hash", fmt::format("{:016x}", reader.hash())}};
    std::string text = end.dump();
    UTSUSHI_TRY(shipper.push({FrameType::end, Bytes(text.begin(), text.end()), 0,
                              static_cast<std::uint32_t>(text.size())}));
    return {};
  };
  auto r = run();
  if (!r) {
    // Nobody reads QEMU's stream any more: end it now, so that QEMU's
    // migration thread fails its write instead of blocking on a full socket.
    // Blocked, it may hold QEMU's global lock (the completion phase does),
    // and then every monitor command waits for it; libvirt's monitor calls
    // have no timeout, so the sender would hang in its next query.
    ::shutdown(qemu_fd, SHUT_RDWR);
    // Prefer the shipper's error (the link) when it caused ours.
    auto link_error = shipper.error();
    out.error = link_error ? *link_error : r.error();
    shipper.abandon(r.error());
  } else if (auto shipped = shipper.finish(); !shipped) {
    out.error = shipped.error();
  } else {
    out.stream_complete = true;
  }
  out.bytes = reader.bytes();
  out.hash = reader.hash();
  out.ship_ms = shipper.ship_ns() / 1000000;
  out.qemu_wait_ms = static_cast<std::uint64_t>(duration_cast<milliseconds>(reader.waited()).count());
  out.flow_wait_ms = static_cast<std::uint64_t>(duration_cast<milliseconds>(flow_waited).count());
  progress.bytes = reader.bytes();
  progress.pages = page_records(encoder.kinds());
  out.kinds = encoder.kinds();
}

}  // namespace utsushi::livemig
