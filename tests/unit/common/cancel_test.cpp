#include <signal.h>

#include <catch2/catch.hpp>

#include "utsushi/common/cancel.h"

using namespace utsushi;

TEST_CASE("cancel: SIGTERM sets the flag and check_cancelled reports it", "[cancel]") {
  install_cancel_handlers();
  reset_cancel();
  REQUIRE(check_cancelled());
  ::raise(SIGTERM);
  CHECK(cancel_requested());
  CHECK(cancel_signal() == SIGTERM);
  auto r = check_cancelled();
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::cancelled);
  CHECK(r.error().message().find("TERM") != std::string::npos);
  reset_cancel();
  CHECK_FALSE(cancel_requested());
}
