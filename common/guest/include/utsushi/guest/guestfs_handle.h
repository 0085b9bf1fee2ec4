#pragma once
// The move-only owner of a libguestfs handle (guestfs_close on every path).
// Moved here from common/handles.h: only the guest library links libguestfs.

#include <memory>

struct guestfs_h;

namespace utsushi::guest {

struct GuestfsCloser {
  void operator()(guestfs_h* g) const noexcept;
};
using GuestfsHandle = std::unique_ptr<guestfs_h, GuestfsCloser>;

}  // namespace utsushi::guest
