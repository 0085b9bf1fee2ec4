#!/usr/bin/env bash
# utsushi-img on raw images: a sparse copy identical under qemu-img compare
# that allocates no more than the source, info/map/--json agree with the
# data written, and bad input gives clear errors with documented exit codes.
source "$(dirname "$0")/lib.sh"

img="$tmp/src.raw"
truncate -s 1G "$img"
head -c 3M /dev/urandom | dd of="$img" bs=1M seek=100 conv=notrunc status=none
printf 'tail-marker' | dd of="$img" bs=1 seek=$(((1 << 30) - 11)) conv=notrunc status=none

expect_status 0 "convert raw to raw" -- "$bin/utsushi-img" convert -O raw "$img" "$tmp/out.raw"
qemu-img compare -q -f raw -F raw "$img" "$tmp/out.raw" && pass "qemu-img compare: identical" || fail "images differ"
src_alloc=$(du -k "$img" | cut -f1); out_alloc=$(du -k "$tmp/out.raw" | cut -f1)
((out_alloc <= src_alloc + 64)) && pass "output stays sparse (${out_alloc} KiB)" || fail "output allocates ${out_alloc} KiB, source ${src_alloc} KiB"

expect_status 0 "info --json" -- "$bin/utsushi-img" --json info "$tmp/out.raw"
python3 - "$out" <<'PY' && pass "info --json reports size and data" || fail "info --json wrong: $out"
import json, sys
j = json.loads(sys.argv[1])
assert j["format"] == "raw" and j["virtual-size"] == 1 << 30, j
assert 3 << 20 <= j["data-bytes"] <= 5 << 20, j
PY
expect_status 0 "map --json" -- "$bin/utsushi-img" --json map "$tmp/out.raw"
python3 - "$out" <<'PY' && pass "map covers the image with data where written" || fail "map wrong: $out"
import json, sys
ext = json.loads(sys.argv[1])["extents"]
pos = 0
for e in ext:
    assert e["start"] == pos; pos += e["length"]
assert pos == 1 << 30
data = [e for e in ext if e["data"]]
assert any(e["start"] <= 100 << 20 < e["start"] + e["length"] for e in data)
PY

expect_status 0 "convert --json" -- "$bin/utsushi-img" --json convert -O raw "$img" "$tmp/out2.raw"
expect_contains "$(tail -1 <<<"$out")" '"status":"ok"' "convert --json ends with a result line"

expect_status 1 "missing input" -- "$bin/utsushi-img" convert -O raw "$tmp/nope.raw" "$tmp/x.raw"
expect_contains "$err" "nope.raw" "the missing input is named"
[[ ! -e "$tmp/x.raw" ]] && pass "no output after a failed open" || fail "output left behind"
expect_status 1 "output directory missing" -- "$bin/utsushi-img" convert -O raw "$img" "$tmp/no/dir/out.raw"
expect_contains "$err" "no/dir/out.raw" "the bad output is named"
expect_status 2 "unknown output format" -- "$bin/utsushi-img" convert -O qed "$img" "$tmp/x"
printf 'vhdxfile' > "$tmp/fake.vhdx"; truncate -s 1M "$tmp/fake.vhdx"
expect_status 3 "recognised but unsupported format" -- "$bin/utsushi-img" info "$tmp/fake.vhdx"
expect_contains "$err" "vhdx" "the format is named"
finish
