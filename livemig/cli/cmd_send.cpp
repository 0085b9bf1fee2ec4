#include "commands.h"
#include "utsushi/livemig/handshake.h"
#include "utsushi/livemig/libvirt_endpoints.h"

namespace utsushi::livemig_cli {

namespace {
struct SendCmd {
  CacheFlag cache;
  std::string qmp;
  std::string libvirt;
  std::string domain;
  bool undefine_source = false;
  std::string to;
  std::string token_file;
  std::vector<std::string> copy_storage;
  SendFlags flags;
};
}  // namespace

void setup_send(cli::Context& ctx) {
  auto o = std::make_shared<SendCmd>();
  auto* sub = ctx.app.add_subcommand("send", "Migrate one guest (QMP socket or libvirt domain) to a `livemig receive`");
  auto* qmp = sub->add_option("--qmp", o->qmp, "QMP socket of the source QEMU");
  auto* uri = sub->add_option("--libvirt", o->libvirt, "Libvirt URI of the source host (with --domain)");
  auto* dom = sub->add_option("--domain", o->domain, "Name of the running libvirt domain to migrate");
  auto* undef = sub->add_flag("--undefine-source", o->undefine_source,
                              "After success, also remove the source domain's persistent definition");
  qmp->excludes(uri)->excludes(dom)->excludes(undef);
  uri->needs(dom);
  dom->needs(uri);
  undef->needs(uri);
  sub->add_option("--to", o->to, "HOST:PORT of the receiver")->required();
  sub->add_option("--token-file", o->token_file, "File holding the shared token (>= 16 bytes)")->required();
  sub->add_option("--copy-storage", o->copy_storage,
                  "Also copy these disks (node names, device names or qdev ids, or 'all': every writable disk on a "
                  "local qcow2 or raw image) into the receiver's disks of the same devices (the receiver needs "
                  "--copy-storage)")
      ->delimiter(',');
  add_send_flags(*sub, o->flags);
  add_cache_flag(*sub, o->cache);
  sub->callback([&ctx, o] {
    apply_cache_flag(o->cache);
    require_one_source(o->qmp, o->libvirt, "--qmp", "--libvirt");
    livemig::SendRemoteOptions opts;
    opts.qmp_path = o->qmp;
    opts.to = o->to;
    opts.token = cli::value_or_throw(livemig::read_token_file(o->token_file));
    opts.bandwidth = bandwidth_of(o->flags);
    opts.send = to_send_options(o->flags);
    opts.send.copy_storage = o->copy_storage;
    if (o->libvirt.empty()) {
      finish(ctx, livemig::send_remote(opts));
      return;
    }
    auto host = cli::value_or_throw(livemig::LibvirtHost::open(o->libvirt));
    livemig::Outcome out = livemig::send_libvirt(*host, {o->domain, opts, o->undefine_source});
    finish(ctx, out, o->domain);
  });
}

}  // namespace utsushi::livemig_cli
