#pragma once
// The connection between a livemig sender and receiver is common's Link
// (common/link/link.h: framing, pacing to a rate cap, MSG_MORE and
// TCP_NODELAY, shutdown from any thread) carrying livemig's frames (frame.h).

#include <cstdint>
#include <string_view>

#include "utsushi/common/link/link.h"
#include "utsushi/common/net.h"
#include "utsushi/livemig/frame.h"

namespace utsushi::livemig {

using link::Frame;
using link::Link;
using link::LinkOptions;

// Addresses and sockets are common/net.h's ("HOST:PORT", "[IPV6]:PORT";
// connect with a timeout; listen and accept with a timeout).
using net::HostPort;
using net::Listener;
using net::parse_host_port;
using net::tcp_connect;

// Parses "32M", "32MiB", "32MB/s", "1.5G", "100000" (bytes per second; K/M/G
// are powers of 1024 with or without "i", a trailing "B" or "/s" is ignored).
[[nodiscard]] Result<std::uint64_t> parse_rate(std::string_view text);

}  // namespace utsushi::livemig
