#include "utsushi/virt/handles.h"

#include <libvirt/libvirt.h>

namespace utsushi::virt {

void VirConnectCloser::operator()(_virConnect* c) const noexcept { virConnectClose(c); }
void VirDomainFreer::operator()(_virDomain* d) const noexcept { virDomainFree(d); }
void VirPoolFreer::operator()(_virStoragePool* p) const noexcept { virStoragePoolFree(p); }
void VirVolumeFreer::operator()(_virStorageVol* v) const noexcept { virStorageVolFree(v); }
void VirStreamFreer::operator()(_virStream* s) const noexcept { virStreamFree(s); }

}  // namespace utsushi::virt
