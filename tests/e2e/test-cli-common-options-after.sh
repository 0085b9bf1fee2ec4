#!/usr/bin/env bash
# Issue 16 item 12: every program takes --json, -v and -q after its subcommand
# too (they were usage errors there): the command runs and fails for its own
# reason (a missing input), not with exit 2, and --json prints its error as JSON.
source "$(dirname "$0")/lib.sh"

missing=/nonexistent/utsushi-test-input
check() {  # PROG ARGS... (a command that fails with exit 1 on the missing input)
  local prog=$1
  shift
  for opt in --json -v -q; do
    expect_status 1 "$prog $1 $opt after the subcommand" -- "$bin/$prog" "$@" "$opt"
  done
  expect_status 1 "$prog $1 --json after the subcommand" -- "$bin/$prog" "$@" --json
  if python3 -c 'import json,sys; j=json.loads(sys.stdin.read().splitlines()[-1]); assert j["status"]=="error"' <<<"$out"; then
    pass "$prog $1 --json (after) prints a JSON error"
  else
    fail "$prog $1 --json (after): not a JSON error: $out"
  fi
}
check utsushi-img info "$missing"
check p2v capture "$missing" -o "$missing.qcow2"
# v2p and clone have no subcommand yet; they share run_program (common/cli.cpp),
# whose unit test (tests/unit/common/cli_test.cpp) covers every placement.
check livemig send --qmp "$missing.sock" --to 127.0.0.1:9 --token-file "$missing.token"
finish
