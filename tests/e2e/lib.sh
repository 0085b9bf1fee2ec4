# Shared helpers for end-to-end shell tests. Source it; it sets `bin`, `src`,
# a temporary directory `$tmp` removed on exit, and assertion helpers that
# print what was expected and what happened.
set -euo pipefail
bin="${UTSUSHI_BIN:?UTSUSHI_BIN must point at the bin directory of the build}"
src="${UTSUSHI_SOURCE:?UTSUSHI_SOURCE must point at the source tree}"
tmp="$(mktemp -d /var/tmp/utsushi-e2e.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# expect_status WANT DESCRIPTION -- COMMAND...: runs COMMAND, capturing
# stdout in $out and stderr in $err, and checks its exit status.
expect_status() {
  local want="$1" what="$2"; shift 3
  set +e
  "$@" >"$tmp/.out" 2>"$tmp/.err"
  local got=$?
  set -e
  out="$(cat "$tmp/.out")" err="$(cat "$tmp/.err")"
  if [[ "$got" == "$want" ]]; then pass "$what (exit $got)"; else
    fail "$what: exit $got, wanted $want; stderr: $err"; fi
}

# expect_contains HAYSTACK NEEDLE DESCRIPTION
expect_contains() {
  if [[ "$1" == *"$2"* ]]; then pass "$3"; else fail "$3: '$2' not in: $1"; fi
}

finish() {
  if ((failures)); then echo "$failures check(s) failed" >&2; exit 1; fi
  echo "all checks passed"
}
