#pragma once
// Migrations whose ends are libvirt domains (libvirt_host.h).
//
// After the handshake the sender sends the domain's migratable XML (frame
// domain_xml), without secrets (a guest with a console password is not moved);
// the receiver refuses a definition check_incoming_domain() refuses, and a
// name or UUID that already exists on its host (ABORT with the reason: the
// source is not touched), otherwise starts
// the domain transient and paused with `-incoming defer` and answers
// domain_ready. The stream then flows as between QMP sockets. On success the
// receiver resumes the domain through libvirt (virDomainResume, so libvirt's
// state is right) before it sends its verdict, and with `persistent` defines
// the original XML; on any failure it destroys the domain: nothing is left.
// The sender destroys the source domain once the destination runs, keeping
// its persistent definition unless `undefine_source`.
//
// Disks (--copy-storage, disk_session.h): right after domain_xml the sender
// sends domain_disks, the disk list (empty without --copy-storage; a
// receiver that disagrees refuses before anything is created). Before it
// starts the domain the receiver checks every backing file (present, same
// content hash), creates the images in `storage_dir` (disk_images.h) and
// starts the domain on them (the XML's disk sources rewritten). Any failure
// afterwards destroys the domain and removes every image it created; only
// when the domain's state is unknown do the images stay. A receiver killed
// with SIGKILL leaves its images; the next one refuses those names.

#include <memory>
#include <string>
#include <vector>

#include "utsushi/livemig/endpoints.h"
#include "utsushi/livemig/libvirt_host.h"

namespace utsushi::livemig {

struct SendLibvirtOptions {
  std::string domain;
  SendRemoteOptions remote;  // qmp_path unused; send.after is ignored (see above)
  bool undefine_source = false;
};
Outcome send_libvirt(LibvirtHost& host, const SendLibvirtOptions& options);

struct ReceiveLibvirtOptions {
  std::string uri;
  ServeOptions serve;
  ReceiveOptions receive;  // copy_storage: take the sender's disks (needs storage_dir)
  bool persistent = false;
  // With receive.copy_storage: where the domains' images are created
  // (disk_images.h); an absolute directory.
  std::string storage_dir;
};

struct DomainOutcome {
  std::string domain;  // as the sender named it; empty if it never said
  Outcome outcome;
};
struct ReceiveLibvirtResult {
  std::vector<DomainOutcome> sessions;  // in the order they ended
  std::optional<Error> error;           // listening, libvirt connection or accept time
};
ReceiveLibvirtResult receive_libvirt(const ReceiveLibvirtOptions& options);

}  // namespace utsushi::livemig
