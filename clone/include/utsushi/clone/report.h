#pragma once
// The JSON clone prints with --json: one object per clone (create), per
// destroyed clone and per image (sysprep). Change reports are summarised:
// each operation's status and, per change, its kind, target and detail
// (the contents before and after stay out of the report).

#include <nlohmann/json.hpp>

#include "utsushi/clone/create.h"
#include "utsushi/clone/destroy.h"
#include "utsushi/clone/sysprep.h"
#include "utsushi/guest/change.h"

namespace utsushi::clone {

nlohmann::json summary_json(const guest::Report& report);
nlohmann::json to_json(const CloneRecord& clone);
nlohmann::json to_json(const CreateReport& report);
nlohmann::json to_json(const DestroyReport& report);
nlohmann::json to_json(const SysprepResult& result);

}  // namespace utsushi::clone
