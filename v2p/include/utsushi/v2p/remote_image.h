#pragma once
// Both ends of a network restore (protocol: image_wire.h).
//
// serve_image() serves one image to any number of clients until cancelled
// (Ctrl-C). The image is opened and checked before listening, as restore
// checks a local one: a corrupt qcow2 (or one of its backing chain) is
// refused before any client connects.
//
// open_remote_image() is the client: the served image as an imagefmt block
// device (read-only, thread-safe: each thread that reads gets a link of its
// own from a pool). Reads are answered compressed; a link that drops or
// returns a damaged frame is replaced and the request sent again, for up to
// RemoteOptions::reconnect_for without progress, so a server restarted within
// that time is picked up where the restore was; after it, Errc::unavailable
// naming the server.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "utsushi/common/error.h"
#include "utsushi/imagefmt/block_device.h"

namespace utsushi::v2p {

struct ServeImageOptions {
  std::string image;
  std::optional<std::string> format;  // probed when empty
  std::string listen;                 // ADDR:PORT (port 0: any free port)
  std::string token;
  unsigned sessions = 16;  // links served at once (a client opens one per thread)
  std::function<void(std::uint16_t port)> on_listening;
  std::function<void(const std::string& line)> report;  // one line per event
};

[[nodiscard]] Result<void> serve_image(const ServeImageOptions& options);

struct RemoteOptions {
  std::string address;  // HOST:PORT
  std::string token;
  std::chrono::seconds reconnect_for{60};
};

struct RemoteImage {
  std::unique_ptr<imagefmt::BlockDevice> device;
  std::string identity;  // the server's identity of its image: the same from any address it is served on
};

[[nodiscard]] Result<RemoteImage> open_remote_image(const RemoteOptions& options);

}  // namespace utsushi::v2p
