#include "utsushi/livemig/nbd_client.h"

#include <libnbd.h>

#include <fmt/core.h>

#include <algorithm>

namespace utsushi::livemig {

std::string dirty_bitmap_context(const std::string& bitmap) { return "qemu:dirty-bitmap:" + bitmap; }

void NbdClient::Close::operator()(nbd_handle* h) const noexcept {
  // A clean disconnect first, so QEMU sees no connection in use; errors do not matter here.
  if (nbd_aio_is_ready(h) == 1) {
    nbd_shutdown(h, 0);
  }
  nbd_close(h);
}

NbdClient::~NbdClient() = default;

namespace {

Error libnbd_error(const std::string& what) {
  int err = nbd_get_errno();
  const char* msg = nbd_get_error();
  return Error(err == ENOSPC ? Errc::no_space : Errc::io_error,
               fmt::format("{}: {}", what, msg != nullptr ? msg : "libnbd failed"), err);
}

}  // namespace

Error NbdClient::nbd_error(const std::string& what) const {
  return libnbd_error(fmt::format("NBD export {}: {}", m_name, what));
}

Result<NbdClient> NbdClient::connect(const std::string& socket, const std::string& name,
                                     const std::vector<std::string>& contexts) {
  std::unique_ptr<nbd_handle, Close> h(nbd_create());
  if (!h) {
    return std::unexpected(libnbd_error("nbd_create"));
  }
  std::string where = fmt::format("NBD export {} on {}", name, socket);
  if (nbd_set_export_name(h.get(), name.c_str()) == -1) {
    return std::unexpected(libnbd_error(where));
  }
  for (const auto& c : contexts) {
    if (nbd_add_meta_context(h.get(), c.c_str()) == -1) {
      return std::unexpected(libnbd_error(where));
    }
  }
  if (nbd_connect_unix(h.get(), socket.c_str()) == -1) {
    return std::unexpected(libnbd_error(where));
  }
  for (const auto& c : contexts) {
    if (nbd_can_meta_context(h.get(), c.c_str()) != 1) {
      return fail(Errc::not_supported, fmt::format("{}: the server does not offer {}", where, c));
    }
  }
  int64_t size = nbd_get_size(h.get());
  int ro = nbd_is_read_only(h.get());
  if (size < 0 || ro < 0) {
    return std::unexpected(libnbd_error(where));
  }
  return NbdClient(std::move(h), name, static_cast<std::uint64_t>(size), ro == 1);
}

Result<void> NbdClient::check_range(std::uint64_t offset, std::uint64_t length, const char* what) const {
  if (length == 0 ? offset > m_size : !range_inside(offset, length, m_size)) {
    return fail(Errc::out_of_range,
                fmt::format("NBD export {}: {} of {}+{} outside its {} bytes", m_name, what, offset, length, m_size));
  }
  return {};
}

namespace {

// Collects one block-status answer for one context, clipped to [at, end).
struct ExtentSink {
  const std::string* context;
  std::uint64_t end;
  std::vector<NbdExtent>* out;
  bool seen = false;

  static int call(void* self, const char* metacontext, std::uint64_t offset, std::uint32_t* entries,
                  std::size_t n, int*) {
    auto* s = static_cast<ExtentSink*>(self);
    if (*s->context != metacontext) {
      return 0;
    }
    s->seen = true;
    for (std::size_t i = 0; i + 1 < n && offset < s->end; i += 2) {
      std::uint64_t len = std::min<std::uint64_t>(entries[i], s->end - offset);
      if (len == 0) {
        break;
      }
      s->out->push_back({offset, len, entries[i + 1]});
      offset += len;
    }
    return 0;
  }
};

}  // namespace

Result<std::vector<NbdExtent>> NbdClient::extents(const std::string& context, std::uint64_t offset,
                                                  std::uint64_t length) {
  UTSUSHI_TRY(check_range(offset, length, "block status"));
  std::vector<NbdExtent> out;
  std::uint64_t end = offset + length;
  while (offset < end) {
    ExtentSink sink{&context, end, &out};
    // NBD_CMD_BLOCK_STATUS carries a 32-bit length; the server may answer less.
    std::uint64_t ask = std::min<std::uint64_t>(end - offset, 1u << 30);
    if (nbd_block_status(m_h.get(), ask, offset, nbd_extent_callback{&ExtentSink::call, &sink, nullptr}, 0) == -1) {
      return std::unexpected(nbd_error(fmt::format("block status of {} at {}", context, offset)));
    }
    std::uint64_t reached = out.empty() ? offset : out.back().offset + out.back().length;
    if (!sink.seen || reached <= offset) {
      return fail(Errc::io_error, fmt::format("NBD export {}: no {} extents at {}", m_name, context, offset));
    }
    offset = reached;
  }
  return out;
}

namespace {

// Calls step(at, n) for consecutive pieces [at, at + n) of at most `max`
// bytes that cover [0, length), stopping at the first error.
template <class Step>
Result<void> in_pieces(std::uint64_t length, std::uint64_t max, Step&& step) {
  for (std::uint64_t at = 0; at < length;) {
    std::uint64_t n = std::min(length - at, max);
    UTSUSHI_TRY(step(at, n));
    at += n;
  }
  return {};
}

}  // namespace

Result<void> NbdClient::read(std::uint64_t offset, std::span<std::uint8_t> out) {
  UTSUSHI_TRY(check_range(offset, out.size(), "read"));
  return in_pieces(out.size(), k_nbd_max_request, [&](std::uint64_t at, std::uint64_t n) -> Result<void> {
    if (nbd_pread(m_h.get(), out.data() + at, n, offset + at, 0) == -1) {
      return std::unexpected(nbd_error(fmt::format("read of {} bytes at {}", n, offset + at)));
    }
    return {};
  });
}

Result<void> NbdClient::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
  UTSUSHI_TRY(check_range(offset, data.size(), "write"));
  return in_pieces(data.size(), k_nbd_max_request, [&](std::uint64_t at, std::uint64_t n) -> Result<void> {
    if (nbd_pwrite(m_h.get(), data.data() + at, n, offset + at, 0) == -1) {
      return std::unexpected(nbd_error(fmt::format("write of {} bytes at {}", n, offset + at)));
    }
    return {};
  });
}

Result<void> NbdClient::zero(std::uint64_t offset, std::uint64_t length) {
  UTSUSHI_TRY(check_range(offset, length, "zero"));
  // WRITE_ZEROES carries a 32-bit length.
  return in_pieces(length, std::uint64_t{1} << 30, [&](std::uint64_t at, std::uint64_t n) -> Result<void> {
    if (nbd_zero(m_h.get(), n, offset + at, 0) == -1) {
      return std::unexpected(nbd_error(fmt::format("zeroing {} bytes at {}", n, offset + at)));
    }
    return {};
  });
}

Result<void> NbdClient::flush() {
  if (nbd_flush(m_h.get(), 0) == -1) {
    return std::unexpected(nbd_error("flush"));
  }
  return {};
}

Result<void> NbdClient::shutdown() {
  if (nbd_shutdown(m_h.get(), 0) == -1) {
    return std::unexpected(nbd_error("disconnect"));
  }
  return {};
}

}  // namespace utsushi::livemig
