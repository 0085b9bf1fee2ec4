#!/usr/bin/env bash
# convert's -o options (issue 16 item 12):
#  - -o takes exactly one argument (KEY=VALUE[,KEY=VALUE...]) per use, so the
#    positional arguments and flags after it are not swallowed;
#  - an option that does not apply to the output format is refused (exit 2)
#    naming the option and the format, as qemu-img refuses it, and nothing is
#    written; unknown keys likewise.
source "$(dirname "$0")/lib.sh"
img="$bin/utsushi-img"
python3 "$src/tests/e2e/img/make-source.py" "$tmp/src.raw" 16 3
info() { qemu-img info --output=json "$1" | python3 -c "import json, sys; j = json.load(sys.stdin); print($2)" 2>/dev/null; }

expect_status 0 "-o before INPUT OUTPUT, -c after them" -- \
  "$img" -q convert -O qcow2 -o cluster_size=4K "$tmp/src.raw" "$tmp/a.qcow2" -c
[[ -f "$tmp/a.qcow2" && $(info "$tmp/a.qcow2" "j['cluster-size']") == 4096 ]] && pass "cluster_size=4K applied" ||
  fail "a.qcow2 missing or cluster size wrong"
qemu-img check -q "$tmp/a.qcow2" && pass "qemu-img check clean" || fail "qemu-img check a.qcow2"
python3 -c "import json,subprocess,sys; m=json.loads(subprocess.run(['qemu-img','check','--output=json',sys.argv[1]],capture_output=True).stdout); sys.exit(0 if m.get('compressed-clusters',0) > 0 else 1)" "$tmp/a.qcow2" 2>/dev/null &&
  pass "-c after the positionals applied" || fail "no compressed clusters"
expect_status 0 "-o with two options in one argument, then -o again" -- \
  "$img" -q convert -O qcow2 -o cluster_size=64K,compression_type=zlib -c "$tmp/src.raw" -o cluster_size=8K "$tmp/b.qcow2"
[[ $(info "$tmp/b.qcow2" "j['cluster-size']") == 8192 ]] && pass "the later -o wins" || fail "cluster size of b.qcow2"
[[ $(info "$tmp/b.qcow2" "j['format-specific']['data']['compression-type']") == zlib ]] && pass "compression_type=zlib applied" ||
  fail "compression type of b.qcow2"
qemu-img compare -q "$tmp/src.raw" "$tmp/b.qcow2" && pass "b.qcow2 identical to its source" || fail "b.qcow2 differs"

# refused FORMAT OPTION: -O FORMAT -o OPTION is a usage error naming both.
refused() {
  local format="$1" option="$2"
  rm -f "$tmp/out"
  expect_status 2 "-O $format -o $option refused" -- "$img" convert -O "$format" -o "$option" "$tmp/src.raw" "$tmp/out"
  expect_contains "$err" "${option%%=*}" "the message names ${option%%=*}"
  expect_contains "$err" "$format" "the message names $format"
  [[ ! -e "$tmp/out" ]] && pass "nothing written" || fail "-O $format -o $option wrote $tmp/out"
}
refused raw cluster_size=64K
refused raw compression_type=zstd
refused raw cpus=2
refused vmdk cluster_size=64K
refused vmdk memory=1024
refused qcow2 cpus=2
refused qcow2 memory=4G
refused ova cluster_size=64K
refused ova compression_type=zlib
refused qcow2 preallocation=full
expect_status 0 "-O ova -o cpus=2,memory=1024 still accepted" -- \
  "$img" -q convert -O ova -o cpus=2,memory=1024 "$tmp/src.raw" "$tmp/c.ova"
finish
