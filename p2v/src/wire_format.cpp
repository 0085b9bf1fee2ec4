#include "utsushi/p2v/wire_format.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>

#include "utsushi/p2v/endian.h"

namespace utsushi::p2v::wire {
namespace {

Result<void> read_exact(int fd, std::span<std::uint8_t> buf) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::recv(fd, buf.data() + done, buf.size() - done, 0);
    if (n == 0) {
      return fail(Errc::unavailable, "the peer closed the connection");
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return fail(Errc::unavailable, "the peer sent nothing for too long (receive timeout)", errno);
      }
      return fail(Errc::unavailable, std::string("connection failed: ") + std::strerror(errno), errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<void> write_all(int fd, std::span<const std::uint8_t> buf) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::send(fd, buf.data() + done, buf.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail(Errc::unavailable, std::string("connection failed: ") + std::strerror(errno), errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

}  // namespace

Result<void> send_frame(int fd, MsgType type, std::span<const std::uint8_t> payload) {
  if (payload.size() > k_max_payload) {
    return fail(Errc::internal, "frame payload too large");
  }
  std::uint8_t h[k_frame_header] = {};
  put_le32(h, 0, k_magic);
  h[4] = static_cast<std::uint8_t>(type);
  put_le32(h, 8, static_cast<std::uint32_t>(payload.size()));
  UTSUSHI_TRY(write_all(fd, h));
  return write_all(fd, payload);
}

Result<void> send_frame(int fd, MsgType type, std::string_view text) {
  return send_frame(fd, type, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

Result<Frame> recv_frame(int fd) {
  std::uint8_t h[k_frame_header];
  UTSUSHI_TRY(read_exact(fd, h));
  if (le32(h, 0) != k_magic) {
    return fail(Errc::corruption, "protocol error: bad frame magic (not a p2v peer?)");
  }
  std::uint32_t len = le32(h, 8);
  if (len > k_max_payload) {
    return fail(Errc::corruption, "protocol error: frame too large");
  }
  Frame f;
  f.type = static_cast<MsgType>(h[4]);
  f.payload.resize(len);
  UTSUSHI_TRY(read_exact(fd, f.payload));
  return f;
}

std::array<std::uint8_t, k_mac_size> auth_mac(std::string_view token, std::string_view label,
                                              std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  std::vector<std::uint8_t> msg(label.begin(), label.end());
  msg.insert(msg.end(), a.begin(), a.end());
  msg.insert(msg.end(), b.begin(), b.end());
  std::array<std::uint8_t, k_mac_size> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), token.data(), static_cast<int>(token.size()), msg.data(), msg.size(), out.data(), &len);
  return out;
}

bool mac_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::array<std::uint8_t, k_nonce_size> random_nonce() {
  std::array<std::uint8_t, k_nonce_size> n{};
  if (RAND_bytes(n.data(), static_cast<int>(n.size())) != 1) {
    // Fall back to the kernel; a nonce must never be predictable.
    Fd f(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
    if (!f || ::read(f.get(), n.data(), n.size()) != static_cast<ssize_t>(n.size())) {
      std::abort();
    }
  }
  return n;
}

std::vector<ChunkRef> make_chunks(const ByteRanges& used) {
  std::vector<ChunkRef> out;
  for (const ByteRange& r : used.ranges()) {
    std::uint64_t off = r.offset;
    while (off < r.end()) {
      std::uint64_t boundary = (off / k_chunk_size + 1) * k_chunk_size;
      std::uint64_t end = std::min(r.end(), boundary);
      out.push_back({off, static_cast<std::uint32_t>(end - off)});
      off = end;
    }
  }
  return out;
}

std::uint64_t plan_id(std::uint64_t disk_size, const std::vector<ChunkRef>& chunks) {
  XXH64_state_t* s = XXH64_createState();
  XXH64_reset(s, 0);
  XXH64_update(s, &disk_size, sizeof disk_size);
  for (const ChunkRef& c : chunks) {
    XXH64_update(s, &c.offset, sizeof c.offset);
    XXH64_update(s, &c.length, sizeof c.length);
  }
  std::uint64_t h = XXH64_digest(s);
  XXH64_freeState(s);
  return h;
}

Result<std::pair<std::string, std::string>> split_address(const std::string& address) {
  std::string host, port;
  if (!address.empty() && address[0] == '[') {
    auto close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return fail(Errc::invalid_argument, "bad address '" + address + "' (expected [IPv6]:PORT)");
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) {
      return fail(Errc::invalid_argument, "bad address '" + address + "' (expected HOST:PORT)");
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos) {
    return fail(Errc::invalid_argument, "bad port in '" + address + "'");
  }
  return std::pair{host, port};
}

namespace {

void tune(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int keep = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &keep, sizeof keep);
}

Result<addrinfo*> resolve(const std::string& address, bool passive) {
  auto [host, port] = UTSUSHI_TRY(split_address(address));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return fail(Errc::unavailable, "cannot resolve '" + address + "': " + ::gai_strerror(rc));
  }
  return res;
}

}  // namespace

Result<Fd> connect_to(const std::string& address) {
  addrinfo* res = UTSUSHI_TRY(resolve(address, false));
  int last = 0;
  for (addrinfo* a = res; a; a = a->ai_next) {
    Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd) {
      last = errno;
      continue;
    }
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0) {
      ::freeaddrinfo(res);
      tune(fd.get());
      return fd;
    }
    last = errno;
  }
  ::freeaddrinfo(res);
  return fail(Errc::unavailable, "cannot connect to " + address + ": " + std::strerror(last), last);
}

Result<Fd> listen_on(const std::string& address) {
  addrinfo* res = UTSUSHI_TRY(resolve(address, true));
  int last = 0;
  for (addrinfo* a = res; a; a = a->ai_next) {
    Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd) {
      last = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd.get(), 8) == 0) {
      ::freeaddrinfo(res);
      return fd;
    }
    last = errno;
  }
  ::freeaddrinfo(res);
  return fail_errno(last, "cannot listen on " + address);
}

}  // namespace utsushi::p2v::wire
