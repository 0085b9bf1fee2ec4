#!/usr/bin/env bash
# Interrupted conversions leave nothing under the output name: SIGINT and
# SIGTERM exit 130 and remove the temporary; SIGKILL leaves at most a
# ".NAME.utsushi-PID.tmp" that is never mistaken for the output.
source "$(dirname "$0")/lib.sh"

img="$tmp/big.raw"
head -c 1536M /dev/urandom > "$img" 2>/dev/null

interrupt() {  # SIGNAL WANT-STATUS
  local sig="$1" want="$2" out="$tmp/out-$1.raw"
  "$bin/utsushi-img" -q convert -m 1 -O raw "$img" "$out" &
  local pid=$!
  sleep 0.3
  kill -STOP "$pid" 2>/dev/null || { fail "$sig: convert finished before it could be interrupted"; return; }
  kill -"$sig" "$pid"; kill -CONT "$pid" 2>/dev/null || true
  set +e; wait "$pid"; local got=$?; set -e
  [[ "$got" == "$want" ]] && pass "SIGCONT after $sig: exit $got" || fail "$sig: exit $got, wanted $want"
  [[ ! -e "$out" ]] && pass "$sig: nothing under the output name" || fail "$sig: $out exists"
}

interrupt INT 130
interrupt TERM 130
ls -a "$tmp" | grep -q 'out-\(INT\|TERM\).raw.utsushi' && fail "temporary left after a clean cancel" || pass "temporaries removed"
interrupt KILL 137
finish
