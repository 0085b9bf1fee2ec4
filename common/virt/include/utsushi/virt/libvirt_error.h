#pragma once
// libvirt's last error (per thread), for messages and for telling errors
// apart, for code that calls libvirt itself on top of a Connection (livemig
// reads it on the thread of its monitor command).

#include <string>

namespace utsushi::virt {

// virGetLastErrorMessage(), or "unknown libvirt error".
std::string last_error();
// Whether the calling thread's last libvirt error has code `code` (virErrorNumber).
bool last_error_is(int code);

}  // namespace utsushi::virt
