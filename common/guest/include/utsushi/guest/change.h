#pragma once
// The record of what an operation changed (or, in a dry run, would change),
// and the report every tool prints: the same JSON for p2v convert, v2p and
// clone.
//
// A Change is one of:
//   file     a guest file written, created or removed: `before` and `after`
//            hold the contents (absent = the file does not exist; binary or
//            large contents are summarised as "<N bytes: ...>")
//   command  a command run in the guest: `target` is the command line,
//            `exit_code` and `output` its result (not run in a dry run)
//   service  a service disabled or enabled: `target` is the unit
//   check    a verification of the result: `target` what was checked,
//            `detail` what was found (the modules of a new initramfs)
//   note     something the user must know that changed nothing (a NIC name
//            that no VM NIC will have, a kernel left without virtio)
// `detail` says in words what and why ("root=/dev/sda2 -> root=UUID=...").

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "utsushi/common/error.h"

namespace utsushi::guest {

enum class ChangeKind { file, command, service, check, note };

struct Change {
  ChangeKind kind = ChangeKind::note;
  std::string target;                 // guest path, command line or unit name
  std::optional<std::string> before;  // file: content before (nullopt: did not exist)
  std::optional<std::string> after;   // file: content after (nullopt: removed)
  std::optional<int> exit_code;       // command: its exit status (nullopt: planned, not run)
  std::string output;                 // command: its output (tail)
  std::string detail;
};

// Whether the operation made, planned, or had nothing to make.
enum class OperationStatus { applied, planned, unchanged, skipped, failed };

struct OperationReport {
  std::string name;
  OperationStatus status = OperationStatus::unchanged;
  std::string reason;  // skipped: why it does not apply; failed: the error
  std::vector<Change> changes;
};

struct Report {
  bool dry_run = false;
  std::vector<OperationReport> operations;
  std::optional<Error> error;  // the failure that stopped the run (the failed operation is last)

  bool ok() const noexcept { return !error.has_value(); }
  // All changes of all operations, in order.
  std::size_t change_count() const noexcept;
};

std::string_view change_kind_name(ChangeKind k) noexcept;
std::string_view operation_status_name(OperationStatus s) noexcept;

// File contents as recorded in a report: text up to 64 KiB as is, anything
// else as "<N bytes>".
std::string summarise_content(std::string_view content);

nlohmann::json to_json(const Change& change);
nlohmann::json to_json(const Report& report);

}  // namespace utsushi::guest
