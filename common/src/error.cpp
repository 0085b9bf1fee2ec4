#include "utsushi/common/error.h"

#include <cstring>

namespace utsushi {

std::string_view errc_name(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_argument: return "invalid argument";
    case Errc::not_found: return "not found";
    case Errc::io_error: return "I/O error";
    case Errc::corruption: return "corruption";
    case Errc::not_supported: return "not supported";
    case Errc::out_of_range: return "out of range";
    case Errc::no_space: return "no space";
    case Errc::permission_denied: return "permission denied";
    case Errc::failed_precondition: return "failed precondition";
    case Errc::unavailable: return "unavailable";
    case Errc::aborted: return "aborted";
    case Errc::cancelled: return "cancelled";
    case Errc::internal: return "internal error";
  }
  return "unknown error";
}

Error& Error::context(std::string_view prefix) {
  if (!prefix.empty()) {
    m_message = std::string(prefix) + ": " + m_message;
  }
  return *this;
}

Error Error::with_context(std::string_view prefix) && {
  context(prefix);
  return std::move(*this);
}

Error errno_error(int err, std::string_view what) {
  Errc code = Errc::io_error;
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      code = Errc::no_space;
      break;
    case ENOENT:
      code = Errc::not_found;
      break;
    case EACCES:
    case EPERM:
    case EROFS:
      code = Errc::permission_denied;
      break;
    case EBUSY:
      code = Errc::failed_precondition;
      break;
    case EINTR:
    case ECANCELED:
      code = Errc::cancelled;
      break;
    case EINVAL:
      code = Errc::invalid_argument;
      break;
    case EOPNOTSUPP:
      code = Errc::not_supported;
      break;
    default:
      break;
  }
  std::string message(what);
  message += ": ";
  message += std::strerror(err);
  return Error(code, std::move(message), err);
}

}  // namespace utsushi
