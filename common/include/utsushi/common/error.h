#pragma once
// Errors at library boundaries: every fallible library call returns Result<T>,
// which holds either a value or an Error (a code, an errno if one caused it,
// and a message that names its context: path, offset, device).
// Exceptions are used only at the CLI edge (see cli.h).

#include <cerrno>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace utsushi {

// What went wrong, with the retry meaning of absl's status codes where it applies.
enum class Errc {
  invalid_argument,     // the caller's input is wrong; do not retry
  not_found,            // a named thing does not exist
  io_error,             // the OS reported an I/O failure (errno set)
  corruption,           // on-disk or on-wire data is inconsistent
  not_supported,        // valid input we refuse to handle (feature, format, version)
  out_of_range,         // an offset/length outside a device or structure
  no_space,             // a device or filesystem is full
  permission_denied,    // access refused (token, file mode)
  failed_precondition,  // the system is not in a state that allows this (mounted, busy)
  unavailable,          // transient: a peer or service did not answer; retry the call
  aborted,              // a multi-step operation failed midway; retry at a higher level
  cancelled,            // SIGINT/SIGTERM or the caller asked to stop
  internal,             // a bug in utsushi
};

std::string_view errc_name(Errc code) noexcept;

class [[nodiscard]] Error {
 public:
  Error(Errc code, std::string message, int sys_errno = 0)
      : m_code(code), m_errno(sys_errno), m_message(std::move(message)) {}

  Errc code() const noexcept { return m_code; }
  // The errno that caused this error, 0 when none did.
  int sys_errno() const noexcept { return m_errno; }
  const std::string& message() const noexcept { return m_message; }

  // Prefixes context to the message: "CONTEXT: MESSAGE". Returns *this for chaining.
  Error& context(std::string_view prefix);
  Error with_context(std::string_view prefix) &&;

 private:
  Errc m_code;
  int m_errno;
  std::string m_message;
};

template <class T>
using Result = std::expected<T, Error>;

// Error from an errno value: "WHAT: strerror(err)". ENOSPC maps to no_space,
// ENOENT to not_found, EACCES/EPERM to permission_denied, EBUSY to
// failed_precondition, EINTR/ECANCELED to cancelled, anything else to io_error.
Error errno_error(int err, std::string_view what);

// Shorthand for std::unexpected(Error(...)).
inline std::unexpected<Error> fail(Errc code, std::string message, int sys_errno = 0) {
  return std::unexpected(Error(code, std::move(message), sys_errno));
}
inline std::unexpected<Error> fail_errno(int err, std::string_view what) {
  return std::unexpected(errno_error(err, what));
}

}  // namespace utsushi

// UTSUSHI_TRY(expr): evaluates a Result-returning expression; on error returns
// the error from the enclosing function, otherwise yields the value (void for
// Result<void>). Uses a GNU statement expression (g++ and clang).
#define UTSUSHI_TRY(expr)                                              \
  ({                                                                   \
    auto&& utsushi_try_result_ = (expr);                               \
    if (!utsushi_try_result_) {                                        \
      return std::unexpected(std::move(utsushi_try_result_).error());  \
    }                                                                  \
    std::move(utsushi_try_result_).value();                            \
  })

// UTSUSHI_TRY_CTX(expr, context): the same, prefixing context to the message.
#define UTSUSHI_TRY_CTX(expr, ctx)                                                     \
  ({                                                                                   \
    auto&& utsushi_try_result_ = (expr);                                               \
    if (!utsushi_try_result_) {                                                        \
      return std::unexpected(std::move(utsushi_try_result_).error().with_context(ctx)); \
    }                                                                                  \
    std::move(utsushi_try_result_).value();                                            \
  })
