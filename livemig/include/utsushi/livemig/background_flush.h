#pragma once
// BackgroundFlusher: flushes a destination's disk exports on its own thread
// and its own NBD connections while the receiver goes on writing through its
// own. The disks' end (DiskSink::finish) must flush before it reports the
// disks verified, and that falls in the source's stopped phase: without
// earlier flushes it would write back everything the session wrote (hundreds
// of MB that the kernel had no reason to write yet), seconds of downtime.
//
// A flush on any connection covers every write the export completed before
// it (NBD FLUSH; QEMU flushes the whole node), so the receiver's own
// connections need not wait.
//
// Not copyable; the destructor stops the thread (as stop(), ignoring errors).

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/livemig/nbd_client.h"

namespace utsushi::livemig {

// The receiver asks for a flush each time this many bytes were written since
// it last asked.
inline constexpr std::uint64_t k_background_flush_bytes = 32u << 20;

class BackgroundFlusher {
 public:
  // Connects once to each of `exports` on the NBD server at `socket`.
  [[nodiscard]] static Result<std::unique_ptr<BackgroundFlusher>> connect(const std::string& socket,
                                                                          const std::vector<std::string>& exports);
  ~BackgroundFlusher();
  BackgroundFlusher(const BackgroundFlusher&) = delete;
  BackgroundFlusher& operator=(const BackgroundFlusher&) = delete;

  // Asks for a flush of every export; one already asked for and not yet
  // started covers this one too. Never blocks on the flush.
  void request();
  // Lets a flush under way finish, ends the thread and disconnects. The
  // first flush error (the export's message), if any: then some write may
  // not be on the destination's disk.
  [[nodiscard]] Result<void> stop();
  std::uint64_t flushes() const;

 private:
  explicit BackgroundFlusher(std::vector<NbdClient> clients);
  void run();

  std::vector<NbdClient> m_clients;  // used by the thread only, until it ends
  mutable std::mutex m_mutex;
  std::condition_variable m_wake;
  bool m_requested = false;
  bool m_stopping = false;
  std::uint64_t m_flushes = 0;
  std::optional<Error> m_error;
  std::thread m_thread;  // last: starts once the members above exist
};

}  // namespace utsushi::livemig
