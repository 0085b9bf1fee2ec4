#!/usr/bin/env bash
# Every program: --help and --version succeed, bad command lines exit 2 with
# "PROGRAM: error: ...", and --json errors are one parseable JSON line.
source "$(dirname "$0")/lib.sh"

for prog in p2v v2p clone livemig utsushi-img; do
  expect_status 0 "$prog --help" -- "$bin/$prog" --help
  expect_contains "$out" "Usage: $prog" "$prog --help shows usage"
  expect_status 0 "$prog --version" -- "$bin/$prog" --version
  expect_contains "$out" "$prog (utsushi) " "$prog --version names program and project"
  expect_status 2 "$prog with an unknown option" -- "$bin/$prog" --no-such-option
  expect_contains "$err" "$prog: error: " "$prog prints PROGRAM: error:"
  expect_status 2 "$prog without a command" -- "$bin/$prog"
  expect_status 2 "$prog --json with an unknown option" -- "$bin/$prog" --json --no-such-option
  if python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); assert j["status"]=="error" and j["error"]["code"]=="usage"' <<<"$out"; then
    pass "$prog --json error is a JSON result"
  else
    fail "$prog --json error output is not the documented JSON: $out"
  fi
done
finish
