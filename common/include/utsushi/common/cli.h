#pragma once
// The CLI edge shared by every utsushi program: common options (-v, -q,
// --json, --version, --help), signal handlers, and the one place where an
// Error becomes "PROGRAM: error: MESSAGE" and a documented exit code.
// Library code never includes this header.

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "utsushi/common/error.h"

namespace utsushi::cli {

// Exit codes, documented in every man page (EXIT STATUS).
enum ExitCode : int {
  k_exit_ok = 0,
  k_exit_failure = 1,        // the operation failed (I/O error, corrupt input, peer failure...)
  k_exit_usage = 2,          // bad command line or invalid argument
  k_exit_unsupported = 3,    // input uses a format or feature utsushi refuses to handle
  k_exit_precondition = 4,   // the system is not in a state that allows it (device mounted, busy)
  k_exit_cancelled = 130,    // interrupted by SIGINT/SIGTERM; outputs were removed
};

int exit_code_for(Errc code) noexcept;

// An Error thrown at the CLI edge.
class Failure : public std::runtime_error {
 public:
  explicit Failure(Error error) : std::runtime_error(error.message()), m_error(std::move(error)) {}
  const Error& error() const noexcept { return m_error; }

 private:
  Error m_error;
};

// Unwraps a Result at the CLI edge, throwing Failure on error.
template <class T>
T value_or_throw(Result<T>&& r) {
  if (!r) {
    throw Failure(std::move(r).error());
  }
  if constexpr (!std::is_void_v<T>) {
    return std::move(r).value();
  }
}

struct CommonOptions {
  int verbose = 0;
  bool quiet = false;
  bool json = false;
};

// What a program's setup function gets: the app to add subcommands to, the
// parsed common options (valid inside callbacks), and the exit code a
// subcommand may set (e.g. `check` returns 3 for leaks).
struct Context {
  CLI::App& app;
  CommonOptions options;
  int exit_code = k_exit_ok;
};

// Runs a program: builds the app, calls `setup` to add subcommands, parses,
// runs the selected callback, and maps any Failure to its exit code. With
// --json an error is also printed on stdout as
// {"type":"result","status":"error","error":{"code":...,"message":...}}.
int run_program(std::string_view name, std::string_view description, int argc, char** argv,
                const std::function<void(Context&)>& setup);

// A CLI11 check for a duration in seconds: a finite number from `min` to
// `max` (so "nan", "inf", "-1" and "1e10" are usage errors, exit 2).
CLI::Validator seconds_between(double min, double max);
// `seconds` (checked by seconds_between) as milliseconds, rounded up.
std::chrono::milliseconds to_milliseconds(double seconds);

// Prints one JSON value as a line on stdout (a program's final result).
void print_json_line(const std::string& json_text);

// A server's event reporter: each line as {"type":"event","message":LINE}
// on stdout with --json, as "PROGRAM: LINE" on stderr otherwise, nothing
// with --quiet.
std::function<void(const std::string& line)> event_reporter(const Context& ctx, std::string_view program);

// Writes a server's listening port to `path` ("PORT\n", through AtomicFile:
// a reader never sees a partial file); nothing when `path` is empty. Throws
// Failure when the file cannot be written.
void write_port_file(const std::string& path, std::uint16_t port);

}  // namespace utsushi::cli
