#pragma once
// Cooperative cancellation. The CLI edge installs handlers for SIGINT and
// SIGTERM that set a process-wide flag; long-running library loops poll
// check_cancelled() between chunks and unwind with Errc::cancelled, so RAII
// cleanup (temporary files removed, handles closed) runs normally.

#include "utsushi/common/error.h"

namespace utsushi {

// Installs SIGINT/SIGTERM handlers (idempotent). A second signal while the
// first is being handled restores the default action, so a stuck process can
// still be killed by pressing Ctrl-C twice.
void install_cancel_handlers();

// True once a cancel signal arrived or request_cancel() was called.
bool cancel_requested() noexcept;
// The signal number that cancelled us, 0 if none (or request_cancel()).
int cancel_signal() noexcept;
void request_cancel() noexcept;

// Returns Errc::cancelled when cancellation was requested, success otherwise.
[[nodiscard]] Result<void> check_cancelled();

}  // namespace utsushi
