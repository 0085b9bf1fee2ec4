#pragma once
// Move-only owners for libvirt's handles (the pattern of common/handles.h):
//   VirConnection  virConnectPtr     virConnectClose
//   VirDomain      virDomainPtr      virDomainFree
//   VirPool        virStoragePoolPtr virStoragePoolFree
//   VirVolume      virStorageVolPtr  virStorageVolFree
//   VirStream      virStreamPtr      virStreamFree
// Each handle holds a reference on its connection, so a VirDomain may outlive
// the Connection object it came from.

#include <memory>

struct _virConnect;
struct _virDomain;
struct _virStoragePool;
struct _virStorageVol;
struct _virStream;

namespace utsushi::virt {

struct VirConnectCloser { void operator()(_virConnect* c) const noexcept; };
struct VirDomainFreer { void operator()(_virDomain* d) const noexcept; };
struct VirPoolFreer { void operator()(_virStoragePool* p) const noexcept; };
struct VirVolumeFreer { void operator()(_virStorageVol* v) const noexcept; };
struct VirStreamFreer { void operator()(_virStream* s) const noexcept; };

using VirConnection = std::unique_ptr<_virConnect, VirConnectCloser>;
using VirDomain = std::unique_ptr<_virDomain, VirDomainFreer>;
using VirPool = std::unique_ptr<_virStoragePool, VirPoolFreer>;
using VirVolume = std::unique_ptr<_virStorageVol, VirVolumeFreer>;
using VirStream = std::unique_ptr<_virStream, VirStreamFreer>;

}  // namespace utsushi::virt
