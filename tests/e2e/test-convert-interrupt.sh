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
  # Stop it as soon as its temporary holds data: mid-copy, whatever the machine's speed.
  local waited=0
  until compgen -G "$tmp/.out-$sig.raw.utsushi-*" >/dev/null &&
        [[ -n "$(find "$tmp" -maxdepth 1 -name ".out-$sig.raw.utsushi-*" -size +0 -print -quit)" ]]; do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01; waited=$((waited + 1))
    ((waited < 3000)) || { fail "$sig: no temporary with data after 30 s"; break; }
  done
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
