#pragma once
// livemig subcommands: each adds itself to the app and calls the library.
#include <array>
#include <memory>
#include <string>

#include "utsushi/common/cli.h"
#include "utsushi/livemig/disk_cache.h"
#include "utsushi/livemig/endpoints.h"

namespace utsushi::livemig_cli {

void setup_send(cli::Context& ctx);
void setup_receive(cli::Context& ctx);
void setup_migrate(cli::Context& ctx);
void setup_evacuate(cli::Context& ctx);

// Options shared by send, migrate and evacuate (policy, encoding, link cap).
struct SendFlags {
  std::string bandwidth;
  std::uint32_t downtime_ms = 300;
  std::uint32_t max_downtime_ms = 0;  // 0: same as downtime
  double time_limit_s = 600;
  bool auto_converge = false;
  std::uint32_t max_throttle = 99;
  int zstd_level = 0;      // 0: adaptive
  int zstd_max_level = 9;
  bool keep_source = false;
};
void add_send_flags(CLI::App& sub, SendFlags& flags);
// Validates and converts; throws cli::Failure on bad values.
livemig::SendOptions to_send_options(const SendFlags& flags);
std::uint64_t bandwidth_of(const SendFlags& flags);

// --hold and --go-timeout (receive, migrate, evacuate): the destination stays
// paused after loading until the sender's "go" (the commit handshake, session.h).
struct HoldFlags {
  bool hold = false;
  double go_timeout_s = 30;
};
// Returns both options, for a command that limits where they apply.
std::array<CLI::Option*, 2> add_hold_flags(CLI::App& sub, HoldFlags& flags);
// Sets the receiving end's hold and go_timeout from the flags.
void apply_hold_flags(const HoldFlags& flags, livemig::ReceiveOptions& receive);

// --cache-dir (send, receive, migrate, evacuate): where backing files' content
// hashes and block indexes are remembered (disk_cache.h); "none" keeps none.
struct CacheFlag {
  std::string dir{livemig::k_default_disk_cache_dir};
};
void add_cache_flag(CLI::App& sub, CacheFlag& flag);
// Sets the process's disk cache from the flag.
void apply_cache_flag(const CacheFlag& flag);

// Prints the report (text, or one JSON object with --json; `domain` adds the
// libvirt domain's name) and sets the exit code.
void finish(cli::Context& ctx, const livemig::Outcome& outcome, const std::string& domain = {});

// Exactly one of two alternative options must be given (else a usage error).
void require_one_source(const std::string& a, const std::string& b, const char* a_name, const char* b_name);

}  // namespace utsushi::livemig_cli
