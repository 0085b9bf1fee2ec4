#pragma once
// Catch prints a failed Result<T> as its error message instead of {?}.

#include <catch2/catch.hpp>

#include <string>

#include "utsushi/common/error.h"

namespace Catch {

template <class T>
struct StringMaker<utsushi::Result<T>> {
  static std::string convert(const utsushi::Result<T>& r) {
    return r ? std::string("ok") : "error (" + std::string(utsushi::errc_name(r.error().code())) + "): " + r.error().message();
  }
};

}  // namespace Catch
