#pragma once
// QmpClient: a synchronous QEMU Machine Protocol client over a UNIX socket
// (qemu/qemu docs/interop/qmp-spec.rst). execute() sends one command and
// returns its "return" value; asynchronous events that arrive meanwhile are
// kept (with their timestamps) for events()/wait_event(). A command can carry
// one file descriptor (SCM_RIGHTS), as `getfd` requires.
//
// REQUIRES external synchronisation: one thread uses a client at a time.

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "utsushi/common/fd.h"

namespace utsushi::livemig {

struct QmpEvent {
  std::string name;
  nlohmann::json data;
  std::int64_t timestamp_us = 0;  // QEMU's wall-clock timestamp of the event
};

class QmpClient {
 public:
  // Connects, reads the greeting and negotiates capabilities.
  [[nodiscard]] static Result<QmpClient> connect(const std::string& path, std::chrono::milliseconds timeout);

  // Runs `command`. A QMP error reply is Errc::failed_precondition with QEMU's
  // description; a dropped connection is Errc::unavailable.
  [[nodiscard]] Result<nlohmann::json> execute(const std::string& command,
                                               const nlohmann::json& arguments = nlohmann::json::object(),
                                               int pass_fd = -1);
  // Waits up to `timeout` for an event named `name` (returns the first one,
  // including one already received); Errc::unavailable on timeout.
  [[nodiscard]] Result<QmpEvent> wait_event(const std::string& name, std::chrono::milliseconds timeout);
  // The most recent event named `name` received so far, if any.
  std::optional<QmpEvent> last_event(const std::string& name) const;
  // Reads any events already waiting on the socket without blocking.
  [[nodiscard]] Result<void> poll_events();

  const std::string& path() const noexcept { return m_path; }
  std::chrono::milliseconds timeout() const noexcept { return m_timeout; }

 private:
  [[nodiscard]] Result<nlohmann::json> read_message(std::chrono::milliseconds timeout);
  [[nodiscard]] Result<void> send_line(const std::string& line, int pass_fd);
  void record_event(const nlohmann::json& msg);

  Fd m_fd;
  std::string m_path;
  std::chrono::milliseconds m_timeout{10000};
  std::string m_buf;
  std::deque<QmpEvent> m_events;
  std::uint64_t m_next_id = 1;
};

}  // namespace utsushi::livemig
