#pragma once
// libvirt's default event loop on a thread of its own, shared by every open
// Connection (private to the virt library).
//
// acquire() registers the loop with libvirt once per process (and silences
// libvirt's default error printer: errors travel as Result) and starts the
// thread when no Connection holds one; the thread is stopped and joined when
// the last holder releases it. Keepalive, close callbacks and every event
// callback run on that thread.

#include <memory>

#include "utsushi/common/error.h"

namespace utsushi::virt {

class EventLoop {
 public:
  [[nodiscard]] static Result<std::shared_ptr<EventLoop>> acquire();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

 private:
  EventLoop() = default;
  struct State;
  std::unique_ptr<State> m_state;
};

}  // namespace utsushi::virt
