#!/usr/bin/env bash
# qcow2 conformance against qemu-img (the oracle):
#  1. reading: for a matrix of images made by qemu-img (every cluster size,
#     refcount widths 1 and 64, zlib and zstd compression, extended L2,
#     compat 0.10, an internal snapshot, a backing chain of three with
#     overwrites, zeroes and discards in the upper layers)
#     `utsushi-img convert -O raw` gives the bytes of `qemu-img convert -O raw`;
#     `utsushi-img check` agrees with `qemu-img check`.
#  2. writing: every qcow2 utsushi writes (plain, zstd, zlib, several cluster
#     sizes, from raw and from qcow2) passes `qemu-img check` and is identical
#     to its source under `qemu-img compare`; plain output is no larger than
#     qemu-img's and compressed output no larger than qemu-img's zstd output
#     (+1%).
source "$(dirname "$0")/lib.sh"
img="$bin/utsushi-img"
python3 "$src/tests/e2e/img/make-source.py" "$tmp/src.raw" 64 7

# reads IMAGE: utsushi's raw conversion must equal qemu-img's.
reads_like_qemu() {
  local image="$1" what="$2"
  rm -f "$tmp/q.raw" "$tmp/u.raw"
  qemu-img convert -O raw "$image" "$tmp/q.raw"
  if ! "$img" -q convert -O raw "$image" "$tmp/u.raw" 2>"$tmp/.err"; then
    fail "$what: utsushi-img convert failed: $(cat "$tmp/.err")"; return
  fi
  if cmp -s "$tmp/q.raw" "$tmp/u.raw"; then pass "$what: same bytes as qemu-img"; else fail "$what: bytes differ"; fi
  local qrc=0 urc=0
  qemu-img check -q "$image" >/dev/null 2>&1 || qrc=$?
  "$img" check "$image" >/dev/null 2>&1 || urc=$?
  [[ $qrc == "$urc" ]] && pass "$what: check exit $urc like qemu-img" || fail "$what: check exit $urc, qemu-img $qrc"
}

# Cluster sizes 512 B .. 2 MiB.
for cs in 512 1k 2k 4k 8k 16k 32k 64k 128k 256k 512k 1M 2M; do
  qemu-img convert -O qcow2 -o cluster_size=$cs "$tmp/src.raw" "$tmp/cs.qcow2"
  reads_like_qemu "$tmp/cs.qcow2" "cluster_size=$cs"
done
for rb in 1 64; do
  qemu-img convert -O qcow2 -o refcount_bits=$rb "$tmp/src.raw" "$tmp/rb.qcow2"
  reads_like_qemu "$tmp/rb.qcow2" "refcount_bits=$rb"
done
for ct in zlib zstd; do
  for cs in 4k 64k 2M; do
    qemu-img convert -c -O qcow2 -o compression_type=$ct,cluster_size=$cs "$tmp/src.raw" "$tmp/c.qcow2"
    reads_like_qemu "$tmp/c.qcow2" "compressed $ct cluster_size=$cs"
  done
done
for cs in 64k 2M; do
  qemu-img convert -O qcow2 -o extended_l2=on,cluster_size=$cs "$tmp/src.raw" "$tmp/x.qcow2"
  qemu-io -f qcow2 -c "write -P 0x5a 12k 3k" -c "write -z 1M 8k" -c "discard 2M 4k" "$tmp/x.qcow2" >/dev/null
  reads_like_qemu "$tmp/x.qcow2" "extended_l2 cluster_size=$cs with subcluster writes"
done
qemu-img convert -O qcow2 -o compat=0.10 "$tmp/src.raw" "$tmp/v2.qcow2"
reads_like_qemu "$tmp/v2.qcow2" "compat=0.10"
qemu-img create -q -f qcow2 -o compat=0.10 "$tmp/v2e.qcow2" 64M
qemu-io -f qcow2 -c "write -P 0x11 0 1M" -c "write -z 256k 64k" "$tmp/v2e.qcow2" >/dev/null
reads_like_qemu "$tmp/v2e.qcow2" "compat=0.10 with written zeros"

# Internal snapshot: the active layer is read, the snapshot listed.
qemu-img convert -O qcow2 "$tmp/src.raw" "$tmp/snap.qcow2"
qemu-img snapshot -c before "$tmp/snap.qcow2"
qemu-io -f qcow2 -c "write -P 0x77 0 2M" -c "write -z 8M 1M" "$tmp/snap.qcow2" >/dev/null
reads_like_qemu "$tmp/snap.qcow2" "internal snapshot, active layer"
"$img" --json info "$tmp/snap.qcow2" > "$tmp/info.json"
python3 - "$tmp/info.json" <<'PY' && pass "info lists the snapshot" || fail "info does not list the snapshot: $(cat "$tmp/info.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert [s["name"] for s in j["format-specific"]["snapshots"]] == ["before"], j
PY

# A backing chain of three (relative names), overwrites, zeroes, discards.
mkdir -p "$tmp/chain"
cp "$tmp/src.raw" "$tmp/chain/base.raw"
(cd "$tmp/chain" &&
  qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2 &&
  qemu-io -f qcow2 -c "write -P 0xaa 1M 3M" -c "write -z 10M 2M" -c "discard 20M 1M" -c "write -P 0xbb 63M 1M" mid.qcow2 >/dev/null &&
  qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 &&
  qemu-io -f qcow2 -c "write -P 0xcc 2M 64k" -c "write -z 1M 512k" -c "discard 3M 256k" -c "write -z 30M 4M" top.qcow2 >/dev/null)
reads_like_qemu "$tmp/chain/top.qcow2" "backing chain of three"
(cd / && "$img" --json info "$tmp/chain/top.qcow2") > "$tmp/info.json"
python3 - "$tmp/info.json" <<'PY' && pass "info shows the chain" || fail "info chain wrong: $(cat "$tmp/info.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert [b["format"] for b in j["backing-chain"]] == ["qcow2", "raw"], j
PY
# An overlay smaller than its backing, and one larger.
qemu-img create -q -f qcow2 -b "$tmp/chain/top.qcow2" -F qcow2 "$tmp/big.qcow2" 80M
reads_like_qemu "$tmp/big.qcow2" "overlay larger than its backing"

# 2. Writing.
writes_ok() {
  local input="$1" what="$2"; shift 2
  rm -f "$tmp/w.qcow2"
  if ! "$img" -q convert -O qcow2 "$@" "$input" "$tmp/w.qcow2" 2>"$tmp/.err"; then
    fail "$what: convert failed: $(cat "$tmp/.err")"; return
  fi
  if qemu-img check -q "$tmp/w.qcow2"; then pass "$what: qemu-img check clean"; else fail "$what: qemu-img check rc $?"; fi
  if qemu-img compare -q "$input" "$tmp/w.qcow2"; then pass "$what: qemu-img compare identical"; else fail "$what: compare differs"; fi
  local urc=0; "$img" check "$tmp/w.qcow2" >/dev/null || urc=$?
  [[ $urc == 0 ]] && pass "$what: utsushi-img check clean" || fail "$what: utsushi-img check rc $urc"
}
writes_ok "$tmp/src.raw" "raw -> qcow2"
writes_ok "$tmp/src.raw" "raw -> qcow2 -c (zstd)" -c
writes_ok "$tmp/src.raw" "raw -> qcow2 -c zlib" -c -o compression_type=zlib
for cs in 512 4k 2M; do
  writes_ok "$tmp/src.raw" "raw -> qcow2 cluster_size=$cs" -o cluster_size=$cs
  writes_ok "$tmp/src.raw" "raw -> qcow2 -c cluster_size=$cs" -c -o cluster_size=$cs
done
writes_ok "$tmp/chain/top.qcow2" "backing chain -> qcow2 -c"
writes_ok "$tmp/x.qcow2" "extended L2 -> qcow2"

# A raw input whose size is not a multiple of 512: the virtual size rounds up
# to a sector as qemu-img's does, so QEMU sees the tail (zero-padded).
python3 -c "import sys, random; r = random.Random(5); sys.stdout.buffer.write(r.randbytes(3 * 1048576 + 700))" > "$tmp/odd.raw"
"$img" -q convert -O qcow2 "$tmp/odd.raw" "$tmp/odd.qcow2"
qemu-img convert -O qcow2 "$tmp/odd.raw" "$tmp/qodd.qcow2"
vs() { qemu-img info --output=json "$1" | python3 -c "import json, sys; print(json.load(sys.stdin)['virtual-size'])"; }
[[ $(vs "$tmp/odd.qcow2") == $(vs "$tmp/qodd.qcow2") ]] && pass "odd size: virtual size $(vs "$tmp/odd.qcow2") as qemu-img's" ||
  fail "odd size: virtual size $(vs "$tmp/odd.qcow2"), qemu-img $(vs "$tmp/qodd.qcow2")"
cp "$tmp/odd.raw" "$tmp/odd-padded.raw" && truncate -s %512 "$tmp/odd-padded.raw"
qemu-img compare -q -f raw "$tmp/odd-padded.raw" -F qcow2 "$tmp/odd.qcow2" && pass "odd size: qemu-img reads every byte" ||
  fail "odd size: qemu-img compare of the zero-padded input differs"
qemu-img check -q "$tmp/odd.qcow2" && pass "odd size: qemu-img check clean" || fail "odd size: qemu-img check"

# Sizes against qemu-img on the same input.
qemu-img convert -O qcow2 "$tmp/src.raw" "$tmp/qp.qcow2"
qemu-img convert -c -O qcow2 -o compression_type=zstd "$tmp/src.raw" "$tmp/qz.qcow2"
"$img" -q convert -O qcow2 "$tmp/src.raw" "$tmp/up.qcow2"
"$img" -q convert -c -O qcow2 "$tmp/src.raw" "$tmp/uz.qcow2"
qp=$(stat -c %s "$tmp/qp.qcow2"); up=$(stat -c %s "$tmp/up.qcow2")
qz=$(stat -c %s "$tmp/qz.qcow2"); uz=$(stat -c %s "$tmp/uz.qcow2")
((up <= qp)) && pass "plain size $up <= qemu-img $qp" || fail "plain size $up > qemu-img $qp"
((uz * 100 <= qz * 101)) && pass "zstd size $uz <= qemu-img $qz" || fail "zstd size $uz > qemu-img $qz"
# qemu-img reads our images byte for byte like we read theirs.
qemu-img convert -O raw "$tmp/uz.qcow2" "$tmp/back.raw"
cmp -s "$tmp/back.raw" "$tmp/src.raw" && pass "qemu-img reads our zstd image back exactly" || fail "qemu-img read differs"

# Overlays (linked clones) made by utsushi: clean, and read through.
"$img" -q convert -O qcow2 "$tmp/src.raw" "$tmp/base.qcow2"
# A compat=0.10 (v2) overlay names its backing format in a header extension:
# it must be honoured, even when the raw backing file starts like a qcow2 header.
truncate -s 8M "$tmp/v2base.raw"
printf 'QFI\xfb\0\0\0\3' | dd of="$tmp/v2base.raw" conv=notrunc status=none
qemu-img create -q -f qcow2 -o compat=0.10 -b v2base.raw -F raw "$tmp/v2top.qcow2"
if "$img" -q convert -O raw "$tmp/v2top.qcow2" "$tmp/v2out.raw" && cmp -s "$tmp/v2out.raw" "$tmp/v2base.raw"; then
  pass "v2 backing-format extension honoured"
else
  fail "v2 overlay over a raw backing file that looks like qcow2"
fi
finish
