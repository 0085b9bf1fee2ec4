#!/usr/bin/env bash
# A convert killed with SIGKILL leaves its hidden temporary (issue 16, item 7);
# the next convert writing into that directory removes it, while a temporary
# a live writer still holds (locked, its process alive) is kept.
source "$(dirname "$0")/lib.sh"

mkdir "$tmp/out"
head -c 192M /dev/urandom > "$tmp/in.raw"   # incompressible: -c keeps the writer busy for a while

temporaries() { find "$tmp/out" -maxdepth 1 -name '.*.utsushi-*.tmp' -printf '%f\n' | sort; }

# Start a compressed convert and kill it with SIGKILL once its temporary holds data.
"$bin/utsushi-img" -q convert -c -O qcow2 "$tmp/in.raw" "$tmp/out/killed.qcow2" &
victim=$!
for _ in $(seq 600); do
  t="$(temporaries | head -1)"
  [[ -n "$t" && "$(stat -c %s "$tmp/out/$t")" -gt 1048576 ]] && break
  sleep 0.1
done
kill -9 "$victim"; wait "$victim" 2>/dev/null || true
stale="$(temporaries)"
[[ "$stale" == .killed.qcow2.utsushi-"$victim"-*.tmp ]] && pass "SIGKILL left the temporary $stale" || fail "no temporary of the killed convert: '$stale'"
[[ ! -e "$tmp/out/killed.qcow2" ]] && pass "nothing under the final name" || fail "the final name appeared"

# A live writer's temporary: locked by this shell, named after a live process.
sleep 300 & holder=$!
live=".held.raw.utsushi-$holder-0.tmp"
exec 9>"$tmp/out/$live"
flock 9
# A temporary whose name has a live PID but no lock (a writer between create and lock).
sleep 300 & starting=$!
unlocked=".starting.raw.utsushi-$starting-0.tmp"
: > "$tmp/out/$unlocked"

expect_status 0 "the next convert into the directory" -- "$bin/utsushi-img" -q convert -O raw "$tmp/in.raw" "$tmp/out/next.raw"
left="$(temporaries)"
[[ "$left" != *"$stale"* ]] && pass "the stale temporary was removed" || fail "the stale temporary is still there: $left"
[[ "$left" == *"$live"* ]] && pass "a locked temporary of a live writer is kept" || fail "the live writer's temporary was removed"
[[ "$left" == *"$unlocked"* ]] && pass "an unlocked temporary of a live process is kept" || fail "the starting writer's temporary was removed"
cmp -s "$tmp/in.raw" "$tmp/out/next.raw" && pass "the next convert's output is complete" || fail "the next output differs"

# Once the lock is released and its process gone, the next writer removes it too.
exec 9>&-
kill "$holder" "$starting"; wait "$holder" "$starting" 2>/dev/null || true
expect_status 0 "a later convert" -- "$bin/utsushi-img" -q convert -O qcow2 "$tmp/in.raw" "$tmp/out/later.qcow2"
[[ -z "$(temporaries)" ]] && pass "no temporary is left" || fail "temporaries left: $(temporaries)"
finish
