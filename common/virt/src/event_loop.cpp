#include "event_loop.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "utsushi/virt/libvirt_error.h"
#include "utsushi/common/log.h"

namespace utsushi::virt {

namespace {

void ignore_libvirt_error(void*, virErrorPtr) {}  // errors are reported through Result, not stderr

constexpr int k_loop_tick_ms = 100;

// Guards the loop's start and stop (libvirt allows one thread running
// virEventRunDefaultImpl) and the state below.
std::mutex g_loop_mutex;
std::condition_variable g_loop_stopped;
bool g_loop_thread_alive = false;  // a loop thread runs or is being stopped
// The loop's wake-up timer, made once with the event loop registration and
// kept: a timer libvirt is asked to remove is freed only by a later
// iteration of the loop, which a loop that is stopping never runs.
int g_loop_timer = -1;

}  // namespace

// A 100 ms timer makes every iteration return in bounded time, so the thread
// sees `stop`; on stop the timer fires at once.
struct EventLoop::State {
  std::atomic<bool> stop{false};
  std::thread thread;
};

Result<std::shared_ptr<EventLoop>> EventLoop::acquire() {
  static std::weak_ptr<EventLoop> current;
  static std::once_flag once;
  static int registered = -1;
  std::unique_lock lock(g_loop_mutex);
  if (auto p = current.lock()) {
    return p;
  }
  std::call_once(once, [] {
    virSetErrorFunc(nullptr, ignore_libvirt_error);
    registered = virEventRegisterDefaultImpl();
    if (registered >= 0) {
      g_loop_timer = virEventAddTimeout(k_loop_tick_ms, [](int, void*) {}, nullptr, nullptr);
    }
  });
  if (registered < 0) {
    return fail(Errc::internal, "libvirt: cannot register the default event loop: " + last_error());
  }
  if (g_loop_timer < 0) {
    return fail(Errc::internal, "libvirt: cannot add the event loop's timer: " + last_error());
  }
  // The last holder just let go: its destructor may not have stopped the
  // thread yet. Never run two.
  g_loop_stopped.wait(lock, [] { return !g_loop_thread_alive; });
  virEventUpdateTimeout(g_loop_timer, k_loop_tick_ms);
  std::shared_ptr<EventLoop> loop(new EventLoop());
  loop->m_state = std::make_unique<State>();
  State* state = loop->m_state.get();
  state->thread = std::thread([state] {
    while (!state->stop.load()) {
      if (virEventRunDefaultImpl() < 0) {
        UTSUSHI_LOG_WARN("libvirt event loop: {}", last_error());
        std::this_thread::sleep_for(std::chrono::milliseconds(k_loop_tick_ms));
      }
    }
  });
  g_loop_thread_alive = true;
  current = loop;
  return loop;
}

EventLoop::~EventLoop() {
  std::lock_guard lock(g_loop_mutex);
  m_state->stop = true;
  virEventUpdateTimeout(g_loop_timer, 0);  // wakes the loop now, not on the next tick
  if (m_state->thread.joinable()) {
    m_state->thread.join();
  }
  g_loop_thread_alive = false;
  g_loop_stopped.notify_all();
}

}  // namespace utsushi::virt
