#!/usr/bin/env bash
# `utsushi-img check` against `qemu-img check` on the same damaged images:
# same exit status and the same counts of corruptions, leaks and check errors
# (and the same image end offset).
#  - truncated images (issue 16 item 3: `head -c 1048576 a.qcow2` said "No
#    errors"): every reference a cluster or more past the end of the file is
#    a corruption; tables past the end read as zeros; snapshot entries cut
#    off are incomplete. Images made by qemu-img and by utsushi-img (whose L1
#    and refcounts sit at the end), several cluster sizes, refcount widths,
#    compression, extended L2, v2, snapshots and an overlay, each cut at
#    seven points and at the edges of its first and last clusters;
#  - damaged entries that qemu-img reports and then still counts (reserved
#    bits, misaligned L2 tables, data clusters and refcount blocks).
source "$(dirname "$0")/lib.sh"
img="$bin/utsushi-img"
compare="python3 $src/tests/e2e/img/check-like-qemu.py $img"
poke="python3 $src/tests/e2e/img/poke.py"
python3 "$src/tests/e2e/img/make-source.py" "$tmp/src.raw" 64 7
cd "$tmp"

qemu-img convert -O qcow2 src.raw qp.qcow2
qemu-img convert -c -O qcow2 src.raw qc.qcow2
qemu-img convert -O qcow2 -o cluster_size=4k src.raw q4k.qcow2
qemu-img convert -O qcow2 -o cluster_size=2M src.raw q2m.qcow2
qemu-img convert -O qcow2 -o refcount_bits=1 src.raw qr1.qcow2
qemu-img convert -O qcow2 -o refcount_bits=64 src.raw qr64.qcow2
qemu-img convert -O qcow2 -o compat=0.10 src.raw qv2.qcow2
qemu-img convert -c -O qcow2 -o compression_type=zstd,cluster_size=4k src.raw qz4.qcow2
qemu-img convert -O qcow2 -o extended_l2=on src.raw qx.qcow2
qemu-io -f qcow2 -c "write -P 0x5a 12k 3k" -c "write -z 1M 8k" qx.qcow2 >/dev/null
qemu-img convert -O qcow2 src.raw qs.qcow2
for s in a b c; do qemu-img snapshot -c $s qs.qcow2; done
qemu-io -f qcow2 -c "write -P 0x77 0 2M" qs.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b qp.qcow2 -F qcow2 qov.qcow2
qemu-io -f qcow2 -c "write -P 0x11 1M 3M" qov.qcow2 >/dev/null
"$img" -q convert -O qcow2 src.raw up.qcow2
"$img" -q convert -c -O qcow2 src.raw uc.qcow2
"$img" -q convert -O qcow2 -o cluster_size=2M src.raw u2m.qcow2
"$img" -q convert -c -O qcow2 -o cluster_size=512 src.raw uc512.qcow2

# The case of the issue, then seven cuts and the cluster edges of each image.
head -c 1048576 qp.qcow2 > issue.qcow2
truncated=(issue.qcow2)
for f in qp qc q4k q2m qr1 qr64 qv2 qz4 qx qs qov up uc u2m uc512; do
  size=$(stat -c %s $f.qcow2)
  for n in 512 4096 65536 $((size * 1 / 7)) $((size * 2 / 7)) $((size * 3 / 7)) $((size * 4 / 7)) \
           $((size * 5 / 7)) $((size * 6 / 7)) $((size - 65536)) $((size - 4096)) $((size - 512)) $((size - 1)); do
    head -c $n $f.qcow2 > cut-$f-$n.qcow2
    truncated+=(cut-$f-$n.qcow2)
  done
done
# Cuts through the snapshot table: before it, inside an entry's fixed part, after it.
table=$(python3 -c "import struct; h = open('qs.qcow2', 'rb').read(72); print(struct.unpack('>Q', h[64:72])[0])")
for d in -70000 0 20 40 60 100 130; do
  head -c $((table + d)) qs.qcow2 > snap$d.qcow2
  truncated+=(snap$d.qcow2)
done
"$img" check issue.qcow2 > issue.txt 2>&1 || true
grep -q "No errors" issue.txt && fail "the truncated image of the issue reports no errors" ||
  pass "the truncated image of the issue reports errors"
if $compare "${truncated[@]}" > truncated.log; then pass "${#truncated[@]} truncated images: check as qemu-img"; else
  grep FAIL truncated.log >&2; fail "truncated images checked unlike qemu-img"; fi

# Damaged entries on a small image (qemu-img reports them, then counts them).
qemu-img create -q -f qcow2 good.qcow2 64M
qemu-io -f qcow2 -c "write -P 0x33 0 256k" -c "write -P 0x44 32M 64k" good.qcow2 >/dev/null
damaged=()
poked() { cp good.qcow2 "$1"; shift_name="$1"; shift; $poke "$shift_name" "$@"; damaged+=("$shift_name"); }
poked l2-past-eof.qcow2 "l1[0]" 8 "(1<<63)|(1<<40)"
poked l2-misaligned.qcow2 "l1[0]" 8 "(1<<63)|0x30200"
poked l1-reserved.qcow2 "l1[0]" 8 "(1<<63)|(1<<57)|0x40000"
poked data-misaligned.qcow2 "l2[0]" 8 "(1<<63)|0x200"
poked l2-reserved.qcow2 "l2[0]" 8 "(1<<63)|0x50000|(1<<57)"
poked refblock-misaligned.qcow2 "rt[0]" 8 0x20200
poked refblock-past-eof.qcow2 "rt[0]" 8 "1<<40"
poked reftable-reserved.qcow2 "rt[0]" 8 0x20001
if $compare "${damaged[@]}" > damaged.log; then pass "${#damaged[@]} damaged images: check as qemu-img"; else
  grep FAIL damaged.log >&2; fail "damaged images checked unlike qemu-img"; fi
finish
