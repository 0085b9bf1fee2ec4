#pragma once
// Monitor: the seam between livemig and one QEMU's QMP monitor. Everything
// that drives QEMU (sender, receiver, qemu_control, evacuate) talks through
// it. Two implementations:
//   QmpClient       (qmp.h)             a QMP UNIX socket livemig connects to
//   LibvirtMonitor  (libvirt_host.h)    a libvirt domain: commands through
//                                       virDomainQemuMonitorCommandWithFiles,
//                                       events through the QEMU monitor event API
//
// Contract shared by both:
//   - execute() sends one QMP command and returns its "return" value. A QMP
//     error reply is Errc::failed_precondition with QEMU's description; a
//     monitor that is gone (QEMU exited, connection closed, libvirt domain no
//     longer running) is Errc::unavailable with a non-zero sys_errno (see
//     monitor_gone()); a reply that did not come in time is Errc::unavailable
//     with sys_errno 0 (QEMU may still be there). `pass_fd` >= 0 hands QEMU one file descriptor with
//     the command (as `getfd` requires); the caller keeps its own copy.
//   - Asynchronous events are kept with QEMU's own timestamps (seconds and
//     microseconds of its wall clock) from the moment the monitor is opened.
//
// REQUIRES external synchronisation: one thread uses a monitor at a time.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "utsushi/common/error.h"

namespace utsushi::livemig {

struct QmpEvent {
  std::string name;
  nlohmann::json data;
  std::int64_t timestamp_us = 0;  // QEMU's wall-clock timestamp of the event
};

class Monitor {
 public:
  virtual ~Monitor() = default;

  [[nodiscard]] virtual Result<nlohmann::json> execute(const std::string& command,
                                                       const nlohmann::json& arguments = nlohmann::json::object(),
                                                       int pass_fd = -1) = 0;
  // Waits up to `timeout` for an event named `name` (returns the first one,
  // including one already received); Errc::unavailable on timeout.
  [[nodiscard]] virtual Result<QmpEvent> wait_event(const std::string& name, std::chrono::milliseconds timeout) = 0;
  // The most recent event named `name` received so far, if any.
  virtual std::optional<QmpEvent> last_event(const std::string& name) const = 0;
  // Collects events already waiting without blocking (a no-op where events
  // arrive on their own).
  [[nodiscard]] virtual Result<void> poll_events() = 0;
  // Where this monitor is, for messages and reports: a socket path, or
  // "DOMAIN@URI" for libvirt.
  virtual const std::string& path() const noexcept = 0;

 protected:
  Monitor() = default;
  Monitor(const Monitor&) = default;
  Monitor& operator=(const Monitor&) = default;
};

// A monitor that several threads may use: each call on `inner` under one
// mutex (a wait_event holds it for its wait). `inner` must outlive it.
class SerialMonitor final : public Monitor {
 public:
  explicit SerialMonitor(Monitor& inner) noexcept : m_inner(inner) {}
  [[nodiscard]] Result<nlohmann::json> execute(const std::string& command,
                                               const nlohmann::json& arguments = nlohmann::json::object(),
                                               int pass_fd = -1) override {
    std::lock_guard lock(m_mutex);
    return m_inner.execute(command, arguments, pass_fd);
  }
  [[nodiscard]] Result<QmpEvent> wait_event(const std::string& name, std::chrono::milliseconds timeout) override {
    std::lock_guard lock(m_mutex);
    return m_inner.wait_event(name, timeout);
  }
  std::optional<QmpEvent> last_event(const std::string& name) const override {
    std::lock_guard lock(m_mutex);
    return m_inner.last_event(name);
  }
  [[nodiscard]] Result<void> poll_events() override {
    std::lock_guard lock(m_mutex);
    return m_inner.poll_events();
  }
  const std::string& path() const noexcept override { return m_inner.path(); }

 private:
  Monitor& m_inner;
  mutable std::mutex m_mutex;
};

// Whether `e` (from a Monitor call) says the monitor is gone: its QEMU exited
// or the connection closed, as opposed to a late reply or a refused command.
inline bool monitor_gone(const Error& e) noexcept { return e.code() == Errc::unavailable && e.sys_errno() != 0; }

}  // namespace utsushi::livemig
