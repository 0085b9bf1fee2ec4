#include "utsushi/common/cli.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "utsushi/common/atomic_file.h"
#include "utsushi/common/cancel.h"
#include "utsushi/common/endian.h"
#include "utsushi/common/fd.h"
#include "utsushi/common/log.h"
#include "utsushi/version.h"

namespace utsushi::cli {

int exit_code_for(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_argument: return k_exit_usage;
    case Errc::not_supported: return k_exit_unsupported;
    case Errc::failed_precondition: return k_exit_precondition;
    case Errc::cancelled: return k_exit_cancelled;
    default: return k_exit_failure;
  }
}

CLI::Validator seconds_between(double min, double max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        char* end = nullptr;
        double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < min || v > max) {
          return fmt::format("'{}' is not a number of seconds from {} to {}", text, min, max);
        }
        return {};
      },
      fmt::format("SECONDS in [{} - {}]", min, max));
}

std::chrono::milliseconds to_milliseconds(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(seconds * 1000)));
}

void print_json_line(const std::string& json_text) {
  std::fputs(json_text.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::function<void(const std::string& line)> event_reporter(const Context& ctx, std::string_view program) {
  const bool json = ctx.options.json, quiet = ctx.options.quiet;
  return [json, quiet, program = std::string(program)](const std::string& line) {
    if (json) {
      print_json_line(nlohmann::json({{"type", "event"}, {"message", line}}).dump());
    } else if (!quiet) {
      fmt::print(stderr, "{}: {}\n", program, line);
    }
  };
}

void write_port_file(const std::string& path, std::uint16_t port) {
  if (path.empty()) {
    return;
  }
  auto f = value_or_throw(AtomicFile::create(path));
  std::string text = std::to_string(port) + "\n";
  value_or_throw(write_full(f.fd(), as_bytes(text), path));
  value_or_throw(f.commit());
}

namespace {

void report_error(const Context& ctx, std::string_view code, const std::string& message) {
  log::write(log::Level::error, message);
  if (ctx.options.json) {
    nlohmann::json j = {{"type", "result"},
                        {"status", "error"},
                        {"error", {{"code", std::string(code)}, {"message", message}}}};
    print_json_line(j.dump());
  }
}

}  // namespace

int run_program(std::string_view name, std::string_view description, int argc, char** argv,
                const std::function<void(Context&)>& setup) {
  log::set_program(name);
  install_cancel_handlers();
  CLI::App app{std::string(description), std::string(name)};
  app.set_version_flag("--version", std::string(name) + " (utsushi) " + UTSUSHI_VERSION);
  app.option_defaults()->always_capture_default();
  // -v, -q and --json are accepted after the subcommand too (subcommands
  // inherit fallthrough: an option they do not know is matched on the app).
  app.fallthrough();
  Context ctx{app, {}, k_exit_ok};
  app.add_flag("-v,--verbose", ctx.options.verbose, "More messages on stderr (repeat for debug output, each line with the time of day)");
  app.add_flag("-q,--quiet", ctx.options.quiet, "Only errors on stderr; no progress bar");
  app.add_flag("--json", ctx.options.json,
               "Machine-readable output: progress and the final result as JSON lines on stdout");
  app.parse_complete_callback([&ctx] {
    if (ctx.options.quiet) {
      log::set_level(log::Level::error);
    } else if (ctx.options.verbose >= 2) {
      log::set_level(log::Level::debug);
    } else if (ctx.options.verbose == 1) {
      log::set_level(log::Level::info);
    }
  });
  setup(ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    report_error(ctx, "usage", std::string(e.what()) + " (see '" + std::string(name) + " --help')");
    return k_exit_usage;
  } catch (const Failure& e) {
    report_error(ctx, errc_name(e.error().code()), e.error().message());
    return exit_code_for(e.error().code());
  } catch (const std::exception& e) {
    report_error(ctx, "internal error", std::string("internal error: ") + e.what());
    return k_exit_failure;
  }
  return ctx.exit_code;
}

}  // namespace utsushi::cli
