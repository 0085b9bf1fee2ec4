#!/usr/bin/env bash
# Builds the fuzz seed corpus in DIR with qemu-img (small images of every
# flavour the parsers handle) and utsushi-img (our own writers).
set -euo pipefail
dir="$1"; img="${2:-}"
mkdir -p "$dir"; cd "$dir"
qemu-img create -q -f qcow2 base.qcow2 4M
qemu-io -f qcow2 -c "write -P 0x11 0 128k" -c "write -z 1M 64k" base.qcow2 >/dev/null
qemu-img convert -c -O qcow2 -o compression_type=zstd,cluster_size=4k base.qcow2 zstd.qcow2
qemu-img convert -c -O qcow2 -o cluster_size=4k base.qcow2 zlib.qcow2
qemu-img convert -O qcow2 -o compat=0.10,cluster_size=512 base.qcow2 v2.qcow2
qemu-img convert -O qcow2 -o extended_l2=on,cluster_size=16k base.qcow2 extl2.qcow2
qemu-img convert -O qcow2 -o refcount_bits=1,cluster_size=1k base.qcow2 rb1.qcow2
qemu-img snapshot -c s1 v2.qcow2
qemu-img convert -O vmdk -o subformat=streamOptimized base.qcow2 stream.vmdk
qemu-img convert -O vmdk base.qcow2 sparse.vmdk
if [[ -n "$img" ]]; then
  "$img" -q convert -O vmdk base.qcow2 ours.vmdk
  "$img" -q convert -c -O qcow2 -o cluster_size=4k base.qcow2 ours.qcow2
fi
