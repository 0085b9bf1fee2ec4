#include "commands.h"

namespace utsushi::livemig_cli {

namespace {
struct MigrateCmd {
  CacheFlag cache;
  std::string source_qmp;
  std::string dest_qmp;
  std::vector<std::string> copy_storage;
  SendFlags flags;
  HoldFlags hold;
};
}  // namespace

void setup_migrate(cli::Context& ctx) {
  auto o = std::make_shared<MigrateCmd>();
  auto* sub = ctx.app.add_subcommand("migrate", "Migrate between two QEMU processes on this host (both ends in one process)");
  sub->add_option("--source-qmp", o->source_qmp, "QMP socket of the source QEMU")->required();
  sub->add_option("--dest-qmp", o->dest_qmp, "QMP socket of the destination QEMU (started with -incoming defer)")
      ->required();
  sub->add_option("--copy-storage", o->copy_storage,
                  "Also copy these disks (as send --copy-storage) into the destination QEMU's disks of the same "
                  "devices (same format and virtual size); implies --hold")
      ->delimiter(',');
  add_send_flags(*sub, o->flags);
  add_hold_flags(*sub, o->hold);
  add_cache_flag(*sub, o->cache);
  sub->callback([&ctx, o] {
    apply_cache_flag(o->cache);
    livemig::LocalOptions opts;
    opts.source_qmp = o->source_qmp;
    opts.dest_qmp = o->dest_qmp;
    opts.bandwidth = bandwidth_of(o->flags);
    opts.send = to_send_options(o->flags);
    apply_hold_flags(o->hold, opts.receive);
    opts.send.copy_storage = o->copy_storage;
    opts.receive.copy_storage = !o->copy_storage.empty();
    finish(ctx, livemig::migrate_local(opts));
  });
}

}  // namespace utsushi::livemig_cli
