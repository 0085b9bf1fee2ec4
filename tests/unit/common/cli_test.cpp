#include <catch2/catch.hpp>

#include "utsushi/common/cli.h"

using namespace utsushi;

TEST_CASE("cli: error codes map to the documented exit statuses", "[cli]") {
  CHECK(cli::exit_code_for(Errc::invalid_argument) == 2);
  CHECK(cli::exit_code_for(Errc::not_supported) == 3);
  CHECK(cli::exit_code_for(Errc::failed_precondition) == 4);
  CHECK(cli::exit_code_for(Errc::cancelled) == 130);
  CHECK(cli::exit_code_for(Errc::io_error) == 1);
  CHECK(cli::exit_code_for(Errc::corruption) == 1);
}

TEST_CASE("cli: value_or_throw passes values and throws the error", "[cli]") {
  CHECK(cli::value_or_throw(Result<int>(5)) == 5);
  try {
    cli::value_or_throw(Result<int>(std::unexpected(Error(Errc::not_found, "gone"))));
    FAIL("no exception");
  } catch (const cli::Failure& f) {
    CHECK(f.error().code() == Errc::not_found);
    CHECK(std::string(f.what()) == "gone");
  }
}

TEST_CASE("cli: -v, -q and --json are accepted before and after the subcommand", "[cli]") {
  for (std::vector<std::string> args : {std::vector<std::string>{"prog", "--json", "-q", "sub", "--x", "1"},
                                        std::vector<std::string>{"prog", "sub", "--json", "-q", "--x", "1"},
                                        std::vector<std::string>{"prog", "sub", "--x", "1", "-q", "--json"}}) {
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    cli::CommonOptions seen;
    int x = 0;
    int rc = cli::run_program("prog", "test", static_cast<int>(argv.size()), argv.data(), [&](cli::Context& ctx) {
      auto* sub = ctx.app.add_subcommand("sub", "a subcommand");
      sub->add_option("--x", x);
      sub->callback([&] { seen = ctx.options; });
    });
    INFO(args[1] << " " << args[2]);
    CHECK(rc == 0);
    CHECK(seen.json);
    CHECK(seen.quiet);
    CHECK(x == 1);
  }
}

TEST_CASE("cli: durations in seconds must be finite and within bounds", "[cli]") {
  for (const char* bad : {"inf", "nan", "-1", "1e10", "", "5s"}) {
    CLI::App app;
    double s = 0;
    app.add_option("--t", s)->check(cli::seconds_between(0.001, 86400));
    CHECK_THROWS_AS(app.parse(std::vector<std::string>{bad, "--t"}), CLI::ValidationError);
  }
  CLI::App app;
  double s = 0;
  app.add_option("--t", s)->check(cli::seconds_between(0.001, 86400));
  app.parse(std::vector<std::string>{"1.5", "--t"});
  CHECK(cli::to_milliseconds(s).count() == 1500);
}
