#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "utsushi/common/disk_space.h"
#include "utsushi/common/fd.h"

using Catch::Matchers::Contains;

TEST_CASE("free_space: the free bytes of a path's or an open file's filesystem", "[common][disk_space]") {
  struct statvfs v {};
  REQUIRE(::statvfs("/tmp", &v) == 0);
  auto by_path = utsushi::free_space("/tmp");
  REQUIRE(by_path);
  CHECK(*by_path % v.f_frsize == 0);
  utsushi::Fd dir(::open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(dir);
  auto by_fd = utsushi::free_space(dir.get());
  REQUIRE(by_fd);
  // Other writers may change it between the calls, but not by a terabyte.
  const std::uint64_t diff = *by_path > *by_fd ? *by_path - *by_fd : *by_fd - *by_path;
  CHECK(diff < (1ull << 40));

  auto missing = utsushi::free_space("/nonexistent/utsushi-free-space");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message(), Contains("/nonexistent/utsushi-free-space"));
  CHECK_FALSE(utsushi::free_space(-1));
}
