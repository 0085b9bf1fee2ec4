#include "utsushi/virt/libvirt_error.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

namespace utsushi::virt {

std::string last_error() {
  const char* m = virGetLastErrorMessage();
  return m ? m : "unknown libvirt error";
}

bool last_error_is(int code) {
  virErrorPtr e = virGetLastError();
  return e && e->code == code;
}

}  // namespace utsushi::virt
