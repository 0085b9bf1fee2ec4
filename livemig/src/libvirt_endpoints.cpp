#include "utsushi/livemig/libvirt_endpoints.h"

#include <fmt/core.h>

#include <mutex>

#include "utsushi/common/disk_space.h"
#include "utsushi/common/log.h"
#include "utsushi/livemig/disk_images.h"
#include "utsushi/livemig/disk_session.h"
#include "utsushi/virt/domain_xml.h"

namespace utsushi::livemig {

using namespace std::chrono;
using virt::check_incoming_domain;
using virt::domain_identity;
using virt::incoming_domain_xml;
using virt::without_incoming_defer;

namespace {

// Starting a TCG QEMU can take a few seconds on a busy host.
constexpr milliseconds k_domain_start_timeout{60000};

std::span<const std::uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string as_text(const Bytes& b) { return std::string(b.begin(), b.end()); }

Outcome failed_outcome(Error e, ReportStatus status, const std::string& where) {
  Outcome o;
  o.report.status = status;
  o.report.error = e.message();
  o.report.source_qmp = where;
  o.report.source_state = "untouched";
  o.error = std::move(e);
  return o;
}

// Sender: the domain definition and its disk list (disks_frame_text; "[]"
// without --copy-storage) go first; the receiver answers once the
// destination domain waits for the stream.
Result<void> introduce_domain(Link& link, const std::string& domain, const std::string& xml,
                              const std::string& disks) {
  UTSUSHI_TRY_CTX(link.send(FrameType::domain_xml, as_bytes(xml)), "sending the domain definition");
  UTSUSHI_TRY_CTX(link.send(FrameType::domain_disks, as_bytes(disks)), "sending the domain's disk list");
  auto reply = UTSUSHI_TRY_CTX(link.recv(k_domain_start_timeout), "waiting for the destination domain");
  if (reply.header.type == FrameType::abort) {
    return fail(Errc::failed_precondition,
                fmt::format("the receiver refused domain {}: {}", domain, as_text(reply.payload)));
  }
  if (reply.header.type != FrameType::domain_ready) {
    return fail(Errc::corruption, fmt::format("unexpected frame type {} instead of domain_ready",
                                              static_cast<int>(reply.header.type)));
  }
  return {};
}

// Where this side's share of the downtime went, from QEMU's own clock: the
// end of loading (MIGRATION "completed") to the guest running (RESUME).
void log_resume_latency(const Monitor& monitor, const std::string& domain, milliseconds resume_call) {
  auto loaded = monitor.last_event("MIGRATION");
  auto resumed = monitor.last_event("RESUME");
  if (!loaded || !resumed || loaded->data.value("status", "") != "completed") {
    return;
  }
  UTSUSHI_LOG_INFO("domain {}: running {} ms after QEMU loaded its memory (resuming took {} ms)", domain,
                   (resumed->timestamp_us - loaded->timestamp_us) / 1000, resume_call.count());
}

// Receiver: the sender's disk list (domain_disks, right after domain_xml):
// empty unless the sender copies the disks, which this receiver must agree to.
Result<std::vector<SessionDisk>> receive_disk_list(Link& link, bool copy_storage) {
  auto f = UTSUSHI_TRY_CTX(link.recv(k_domain_start_timeout), "waiting for the domain's disk list");
  if (f.header.type == FrameType::abort) {
    return fail(Errc::aborted, "the sender aborted: " + as_text(f.payload));
  }
  if (f.header.type != FrameType::domain_disks) {
    return fail(Errc::corruption, fmt::format("frame type {} where the domain's disk list was expected",
                                              static_cast<int>(f.header.type)));
  }
  auto disks = UTSUSHI_TRY(parse_disk_list(as_text(f.payload), EmptyList::allowed));
  if (!disks.empty() && !copy_storage) {
    return fail(Errc::failed_precondition, "the sender copies the disks (--copy-storage): start the receiver with "
                                           "--copy-storage --storage-dir DIR (or the sender without it)");
  }
  if (disks.empty() && copy_storage) {
    return fail(Errc::failed_precondition, "this receiver takes the disks (--copy-storage): give the sender "
                                           "--copy-storage too (or start the receiver without it)");
  }
  return disks;
}

// The destination's images and the definitions that name them.
struct Staged {
  CreatedImages images;
  std::string incoming;  // the XML to start (with -incoming defer)
  std::string defined;   // the XML --persistent defines
};

// Without disks, the definitions as given. With disks: the backing files
// checked (before anything is created), the images created in
// `storage_dir` (disk_images.h) and both definitions naming them.
Result<Staged> stage_images(const std::vector<SessionDisk>& disks, const std::string& storage_dir,
                            const std::string& xml, const std::string& incoming) {
  Staged s{CreatedImages(), incoming, xml};
  if (disks.empty()) {
    return s;
  }
  UTSUSHI_TRY(check_backings(disks, {}));
  auto plan = UTSUSHI_TRY(plan_images(disks, storage_dir));
  const std::uint64_t available = UTSUSHI_TRY(free_space(storage_dir));
  UTSUSHI_TRY(check_free_space(disks, storage_dir, available));
  std::vector<virt::DiskMove> moves;
  for (const auto& p : plan) {
    moves.push_back({p.source_file, p.path});
  }
  s.incoming = UTSUSHI_TRY(virt::relocated_disks_xml(incoming, moves));
  s.defined = UTSUSHI_TRY(virt::relocated_disks_xml(xml, moves));
  s.images = UTSUSHI_TRY(CreatedImages::create(disks, plan));
  return s;
}

DomainOutcome receive_domain(LibvirtHost& host, Link& link, const ReceiveLibvirtOptions& options) {
  DomainOutcome d;
  bool created = false;
  // After a failure nothing may stay on this host; when that cannot be made
  // sure (libvirtd gone), the report says so.
  auto leave_nothing = [&](Outcome& o) {
    if (auto r = host.connection().destroy(d.domain); !r) {
      UTSUSHI_LOG_ERROR("{}", r.error().message());
      o.report.source_state = "unknown";
      o.report.error += "; " + r.error().message();
    } else {
      o.report.source_state = "discarded";
    }
  };
  auto refuse = [&](const Error& e, ReportStatus status) {
    link.send_abort(e.message());
    link.shutdown();
    d.outcome = failed_outcome(e, status, {});
    d.outcome.report.source_state = "none";
    if (created) {
      leave_nothing(d.outcome);
    }
    return std::move(d);
  };
  auto status_of = [](const Error& e) {
    return e.code() == Errc::failed_precondition || e.code() == Errc::not_supported ? ReportStatus::refused
                                                                                     : ReportStatus::failed;
  };
  auto frame = link.recv(k_domain_start_timeout);
  if (!frame) {
    return refuse(frame.error(), ReportStatus::failed);
  }
  if (frame->header.type == FrameType::abort) {
    return refuse(Error(Errc::aborted, "the sender aborted: " + as_text(frame->payload)), ReportStatus::failed);
  }
  if (frame->header.type != FrameType::domain_xml) {
    return refuse(Error(Errc::not_supported, "this receiver starts libvirt domains: the sender must migrate a "
                                             "libvirt domain (livemig send --libvirt)"),
                  ReportStatus::refused);
  }
  std::string xml = as_text(frame->payload);
  auto id = domain_identity(xml);
  if (!id) {
    return refuse(id.error(), ReportStatus::refused);
  }
  d.domain = id->name;
  auto disks = receive_disk_list(link, options.receive.copy_storage);
  if (!disks) {
    return refuse(disks.error(), status_of(disks.error()));
  }
  // A token holder may ask for a guest, not for the host: refused before
  // anything starts (the sender leaves its source untouched).
  if (auto r = check_incoming_domain(xml); !r) {
    return refuse(r.error(), ReportStatus::refused);
  }
  auto incoming = incoming_domain_xml(xml);
  if (!incoming) {
    return refuse(incoming.error(), ReportStatus::refused);
  }
  if (auto r = host.connection().check_absent(id->name, id->uuid); !r) {
    return refuse(r.error(), ReportStatus::refused);
  }
  // With disks: their images in the storage directory, named by the XML
  // (removed again by `images` unless the migration succeeds).
  auto staged = stage_images(*disks, options.storage_dir, xml, *incoming);
  if (!staged) {
    return refuse(staged.error(), status_of(staged.error()));
  }
  CreatedImages images = std::move(staged->images);
  if (auto r = host.connection().create_transient_paused(staged->incoming); !r) {
    return refuse(r.error(), status_of(r.error()));
  }
  created = true;
  UTSUSHI_LOG_INFO("domain {} started paused on {}, waiting for its stream", d.domain, host.uri());
  auto monitor = host.monitor(d.domain);
  if (!monitor) {
    return refuse(monitor.error(), ReportStatus::failed);
  }
  if (auto v = prepare_destination(**monitor); !v) {
    return refuse(v.error(), status_of(v.error()));
  }
  if (auto r = link.send(FrameType::domain_ready, {}); !r) {
    return refuse(r.error(), ReportStatus::failed);
  }
  ReceiveOptions receive = options.receive;
  // The domain was started paused: it runs only after the commit handshake.
  receive.hold = true;
  milliseconds resume_call{-1};
  receive.resume = [&] {
    auto t = steady_clock::now();
    auto r = host.connection().resume(d.domain);
    resume_call = duration_cast<milliseconds>(steady_clock::now() - t);
    return r;
  };
  receive.discard = [&] { return host.connection().destroy(d.domain); };
  d.outcome = run_receiver(receive, **monitor, link);
  log_resume_latency(**monitor, d.domain, resume_call);
  monitor->reset();
  if (d.outcome.error) {
    // run_receiver discarded the domain; make sure nothing is left (its
    // images go when `images` does), except when it could not tell whether
    // the domain runs (it may own the guest, and its images).
    if (d.outcome.report.status != ReportStatus::unknown) {
      leave_nothing(d.outcome);
    } else {
      images.keep();
    }
    return d;
  }
  images.keep();
  if (options.persistent) {
    if (auto r = host.connection().define(staged->defined, virt::Replace::update); !r) {
      UTSUSHI_LOG_WARN("domain {} runs but stays transient: {}", d.domain, r.error().message());
      d.outcome.report.error = "running, but not defined: " + r.error().message();
    }
  }
  return d;
}

}  // namespace

Outcome send_libvirt(LibvirtHost& host, const SendLibvirtOptions& options) {
  std::string where = fmt::format("{}@{}", options.domain, host.uri());
  auto monitor = host.monitor(options.domain);
  if (!monitor) {
    return failed_outcome(monitor.error(), ReportStatus::failed, where);
  }
  // A guest livemig received earlier still has `-incoming defer` in its live
  // definition: the destination adds its own.
  auto xml = host.migratable_xml(options.domain);
  if (xml) {
    xml = without_incoming_defer(*xml);
  }
  if (!xml) {
    return failed_outcome(xml.error(), status_for(xml.error()), where);
  }
  SendRemoteOptions remote = options.remote;
  remote.send.after = SourceAfter::keep;  // libvirt retires the source below
  std::vector<SessionDisk> disks;
  if (!remote.send.copy_storage.empty()) {
    // Described before anything starts: the receiver creates the images first.
    auto chosen = source_disks(**monitor, remote.send.copy_storage);
    if (!chosen) {
      return failed_outcome(chosen.error(), status_for(chosen.error()), where);
    }
    disks = std::move(*chosen);
  }
  std::string disk_list = disks_frame_text(disks);
  Outcome o = send_to_receiver(**monitor, remote, [&](Link& link) {
    return introduce_domain(link, options.domain, *xml, disk_list);
  });
  monitor->reset();
  if (o.report.status != ReportStatus::ok) {
    return o;
  }
  if (auto r = host.retire_source(options.domain, options.undefine_source); !r) {
    UTSUSHI_LOG_WARN("{} runs on the destination but the source was not retired: {}", options.domain,
                     r.error().message());
    o.report.error = "source not retired: " + r.error().message();
  } else {
    o.report.source_state = options.undefine_source ? "undefined" : "destroyed";
  }
  return o;
}

ReceiveLibvirtResult receive_libvirt(const ReceiveLibvirtOptions& options) {
  ReceiveLibvirtResult res;
  auto host = LibvirtHost::open(options.uri);
  if (!host) {
    res.error = host.error();
    return res;
  }
  ServeOptions serve = options.serve;
  serve.kind = ReceiverKind::libvirt;
  std::mutex mutex;
  auto r = serve_sessions(serve, [&](Link& link) {
    auto d = receive_domain(**host, link, options);
    std::lock_guard lock(mutex);
    res.sessions.push_back(std::move(d));
  });
  if (!r) {
    res.error = r.error();
  }
  return res;
}

}  // namespace utsushi::livemig
