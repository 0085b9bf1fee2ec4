#include "utsushi/common/cancel.h"

#include <signal.h>

#include <atomic>
#include <cstring>

namespace utsushi {
namespace {

std::atomic<int> g_cancel_signal{0};
std::atomic<bool> g_cancelled{false};
std::atomic<bool> g_installed{false};

extern "C" void on_cancel_signal(int sig) {
  if (g_cancelled.exchange(true)) {
    // Second signal: the user insists. Restore the default action and re-raise.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, nullptr);
    raise(sig);
    return;
  }
  g_cancel_signal.store(sig);
}

}  // namespace

void install_cancel_handlers() {
  if (g_installed.exchange(true)) {
    return;
  }
  struct sigaction sa {};
  sa.sa_handler = on_cancel_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR and loops re-check
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A closed pipe or socket is reported as EPIPE by write, not as a fatal signal.
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, nullptr);
}

bool cancel_requested() noexcept { return g_cancelled.load(std::memory_order_relaxed); }
int cancel_signal() noexcept { return g_cancel_signal.load(); }
void request_cancel() noexcept { g_cancelled.store(true); }

Result<void> check_cancelled() {
  if (cancel_requested()) {
    int sig = cancel_signal();
    std::string why = sig ? std::string("interrupted by ") + sigabbrev_np(sig) : "cancelled";
    return fail(Errc::cancelled, why);
  }
  return {};
}

}  // namespace utsushi
