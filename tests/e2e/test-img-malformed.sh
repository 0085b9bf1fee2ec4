#!/usr/bin/env bash
# Malformed qcow2 input (iotest 080 style): corrupted headers, L1/L2/refcount
# offsets past the end of the file, overlapping metadata, absurd sizes, a
# backing chain that loops. Every case must give a clear error naming qcow2
# and a documented exit status (1 corrupt, 3 refused), never a crash; and
# `utsushi-img check` must report metadata corruption like qemu-img (exit 2).
source "$(dirname "$0")/lib.sh"
img="$bin/utsushi-img"
poke="python3 $src/tests/e2e/img/poke.py"

qemu-img create -q -f qcow2 "$tmp/good.qcow2" 64M
qemu-io -f qcow2 -c "write -P 0x33 0 256k" -c "write -P 0x44 32M 64k" "$tmp/good.qcow2" >/dev/null
qemu-img convert -c -O qcow2 -o compression_type=zstd "$tmp/good.qcow2" "$tmp/goodz.qcow2"

# refused CASE WANT_STATUS POKE-ARGS...: poke a copy, convert must fail cleanly.
refused() {
  local what="$1" want="$2" base="$3"; shift 3
  cp "$tmp/$base" "$tmp/bad.qcow2"
  rm -f "$tmp/out.raw"
  $poke "$tmp/bad.qcow2" "$@"
  set +e
  "$img" convert -f qcow2 -O raw "$tmp/bad.qcow2" "$tmp/out.raw" >/dev/null 2>"$tmp/.err"
  local rc=$?
  set -e
  if [[ $rc == "$want" ]] && grep -q "qcow2" "$tmp/.err"; then
    pass "$what: exit $rc, $(head -c 160 "$tmp/.err")"
  else
    fail "$what: exit $rc (want $want), stderr: $(cat "$tmp/.err")"
  fi
  [[ ! -e "$tmp/out.raw" ]] || fail "$what: output left behind"
}
refused "bad magic" 1 good.qcow2 0 4 0x12345678
refused "version 1" 3 good.qcow2 4 4 1
refused "cluster_bits 31" 1 good.qcow2 20 4 31
refused "encrypted (crypt_method 1)" 3 good.qcow2 32 4 1
refused "unknown incompatible feature" 3 good.qcow2 72 8 "1<<40"
refused "absurd virtual size" 1 good.qcow2 24 8 "2**63"
refused "huge l1_size" 1 good.qcow2 36 4 0x7fffffff
refused "L1 offset past end of file" 1 good.qcow2 40 8 "1<<40"
refused "L1 offset misaligned" 1 good.qcow2 40 8 "0x30200"
refused "refcount table past end of file" 1 good.qcow2 48 8 "1<<40"
refused "refcount table absurd size" 1 good.qcow2 56 4 0x10000000
refused "header_length absurd" 1 good.qcow2 100 4 0xfffffff8
refused "extension length absurd" 1 good.qcow2 116 4 0xfffffff0
refused "backing name past cluster 0" 1 good.qcow2 8 8 65500 16 4 1000
refused "L2 offset past end of file" 1 good.qcow2 "l1[0]" 8 "(1<<63)|(1<<40)"
refused "L2 offset misaligned" 1 good.qcow2 "l1[0]" 8 "(1<<63)|0x30200"
refused "data cluster misaligned" 1 good.qcow2 "l2[0]" 8 "(1<<63)|0x200"
refused "reserved bits in L2 entry" 1 good.qcow2 "l2[0]" 8 "(1<<63)|0x50000|(1<<57)"
refused "compressed cluster past end of file" 1 goodz.qcow2 "l2[0]" 8 "(1<<62)|(1<<50)"
refused "compressed cluster garbage" 1 goodz.qcow2 "l2[0]" 8 "(1<<62)|(3<<54)|0x10000"
refused "zstd bit without zstd type" 1 good.qcow2 72 8 8

# Overlapping metadata that still reads: check must call it corruption.
cp "$tmp/good.qcow2" "$tmp/overlap.qcow2"
l1=$(python3 -c "import struct;f=open('$tmp/overlap.qcow2','rb');f.seek(40);print(struct.unpack('>Q',f.read(8))[0])")
$poke "$tmp/overlap.qcow2" "l1[0]" 8 "(1<<63)|$l1"
expect_status 2 "check: L2 table overlapping the L1 table is corruption" -- "$img" check "$tmp/overlap.qcow2"
q=0; qemu-img check -q "$tmp/overlap.qcow2" >/dev/null 2>&1 || q=$?
[[ $q == 2 ]] && pass "qemu-img agrees (exit 2)" || fail "qemu-img check exit $q"

# A leak: bump a refcount; both tools report exit 3.
cp "$tmp/good.qcow2" "$tmp/leak.qcow2"
qemu-io -f qcow2 -c "write -P 1 1M 64k" "$tmp/leak.qcow2" >/dev/null
python3 - "$tmp/leak.qcow2" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b"); h = f.read(112)
rt = struct.unpack(">Q", h[48:56])[0]; f.seek(rt); rb = struct.unpack(">Q", f.read(8))[0]
size = f.seek(0, 2); n = (size + 65535) // 65536
f.truncate((n + 1) * 65536)                                   # one more cluster, referenced by nothing
f.seek(rb + 2 * n); f.write((1).to_bytes(2, "big"))          # ... but counted
PY
expect_status 3 "check: leaked cluster" -- "$img" check "$tmp/leak.qcow2"
q=0; qemu-img check -q "$tmp/leak.qcow2" >/dev/null 2>&1 || q=$?
[[ $q == 3 ]] && pass "qemu-img agrees (exit 3)" || fail "qemu-img check exit $q"

# Under-counted cluster and a wrong COPIED flag.
cp "$tmp/good.qcow2" "$tmp/under.qcow2"
$poke "$tmp/under.qcow2" "l2[0]" 8 "$(python3 -c "import struct;f=open('$tmp/good.qcow2','rb');f.seek(40);l1=struct.unpack('>Q',f.read(8))[0];f.seek(l1);l2=struct.unpack('>Q',f.read(8))[0]&0xfffffffffe00;f.seek(l2);print(struct.unpack('>Q',f.read(8))[0] & ~(1<<63))")"
expect_status 2 "check: COPIED flag missing is corruption" -- "$img" check "$tmp/under.qcow2"

# Backing chain that loops, and a missing backing file.
qemu-img create -q -f qcow2 "$tmp/a.qcow2" 1M
qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 "$tmp/b.qcow2"
qemu-img rebase -u -f qcow2 -b b.qcow2 -F qcow2 "$tmp/a.qcow2"
expect_status 1 "backing loop" -- "$img" info "$tmp/b.qcow2"
expect_contains "$err" "loop" "the loop is named"
qemu-img create -q -u -f qcow2 -b gone.raw -F raw "$tmp/orphan.qcow2" 1M
expect_status 1 "missing backing file" -- "$img" info "$tmp/orphan.qcow2"
expect_contains "$err" "gone.raw" "the missing backing file is named"
# A chain deeper than the limit.
qemu-img create -q -f qcow2 "$tmp/d0.qcow2" 1M
for i in $(seq 1 40); do qemu-img create -q -f qcow2 -b "d$((i-1)).qcow2" -F qcow2 "$tmp/d$i.qcow2"; done
expect_status 1 "backing chain of 40" -- "$img" info "$tmp/d40.qcow2"
expect_contains "$err" "deeper" "the depth limit is named"

# Truncated images: every prefix length class fails cleanly.
for n in 0 10 100 1000 65536 200000; do
  head -c $n "$tmp/good.qcow2" > "$tmp/trunc.qcow2"
  set +e; "$img" convert -f qcow2 -O raw "$tmp/trunc.qcow2" "$tmp/t.raw" >/dev/null 2>&1; rc=$?; set -e
  ((rc == 1 || rc == 3)) && pass "truncated to $n bytes: exit $rc" || fail "truncated to $n bytes: exit $rc"
done
finish
