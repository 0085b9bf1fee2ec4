#include <signal.h>

#include <catch2/catch.hpp>

#include "test_support.h"
#include "utsushi/common/cancel.h"

using namespace utsushi;

TEST_CASE("cancel: SIGTERM sets the flag and check_cancelled reports it", "[cancel]") {
  // In a child: a cancellation request lasts for the rest of the process.
  CHECK(test::in_child_process([] {
    install_cancel_handlers();
    if (!check_cancelled() || cancel_requested()) {
      return false;
    }
    ::raise(SIGTERM);
    auto r = check_cancelled();
    return cancel_requested() && cancel_signal() == SIGTERM && !r && r.error().code() == Errc::cancelled &&
           r.error().message().find("TERM") != std::string::npos;
  }));
}
