#pragma once
// QmpClient: the Monitor (monitor.h) over a QMP UNIX socket
// (qemu/qemu docs/interop/qmp-spec.rst). Events that arrive while a command
// waits for its reply are kept; the others are read by poll_events() and
// wait_event(). A passed descriptor travels as SCM_RIGHTS.
//
// REQUIRES external synchronisation: one thread uses a client at a time.

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "utsushi/common/fd.h"
#include "utsushi/livemig/monitor.h"

namespace utsushi::livemig {

class QmpClient final : public Monitor {
 public:
  // Connects, reads the greeting and negotiates capabilities.
  [[nodiscard]] static Result<QmpClient> connect(const std::string& path, std::chrono::milliseconds timeout);

  [[nodiscard]] Result<nlohmann::json> execute(const std::string& command,
                                               const nlohmann::json& arguments = nlohmann::json::object(),
                                               int pass_fd = -1) override;
  [[nodiscard]] Result<QmpEvent> wait_event(const std::string& name, std::chrono::milliseconds timeout) override;
  std::optional<QmpEvent> last_event(const std::string& name) const override;
  // Reads any events already waiting on the socket without blocking.
  [[nodiscard]] Result<void> poll_events() override;

  const std::string& path() const noexcept override { return m_path; }
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
