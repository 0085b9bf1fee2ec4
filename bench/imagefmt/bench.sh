#!/usr/bin/env bash
# imagefmt benchmark: utsushi-img convert vs qemu-img convert, side by side in
# one run on the same input, cold page cache before every run (root only).
# Input: a 2 GiB ext4 image holding ~1.2 GB of real files
# (mke2fs -d /usr/share plus part of /usr/lib to reach ~1.2 GB).
# Usage: bench.sh UTSUSHI_BIN_DIR [WORKDIR]   -> prints a Markdown table.
set -euo pipefail
bin="${1:?usage: bench.sh UTSUSHI_BIN_DIR [WORKDIR]}"
work="${2:-/var/tmp/utsushi-bench-imagefmt}"
mkdir -p "$work"
src="$work/input.raw"
if [[ ! -f "$src" ]]; then
  stage="$work/stage"
  rm -rf "$stage"; mkdir -p "$stage"
  cp -a /usr/share "$stage/share"
  mkdir -p "$stage/lib"
  # Top up with shared libraries to ~1.2 GB of files.
  du -sb "$stage" | awk '{exit !($1 < 1200000000)}' &&
    (cd /usr/lib/x86_64-linux-gnu && find . -maxdepth 1 -name '*.so*' -type f -size +1M | head -n 400 |
      xargs -I{} cp {} "$stage/lib/" 2>/dev/null || true)
  truncate -s 2G "$src"
  mke2fs -q -t ext4 -d "$stage" "$src"
  rm -rf "$stage"
fi
benchlib() { python3 "$(dirname "$0")/../lib/benchlib.py" "$@"; }
# run NAME OUTPUT CMD...: cold cache (warm=1: the input read once before), wall/user/sys
# from bench/lib/benchlib.py. Every command ends with the output durable on disk:
# utsushi-img fsyncs before its atomic rename; qemu-img (cache=unsafe by default for
# the target) gets an fsync of the output inside the timed region so both pay for the
# same writeback.
run() {
  local name="$1" out="$2" timing mode=()
  shift 2
  rm -f "$out"
  if [[ "${warm:-0}" == 1 ]]; then cat "$src" > /dev/null; mode=(--warm); fi
  timing=$(benchlib time "${mode[@]}" --output "$out" -- "$@")
  read -r wall user sys <<<"$timing"
  local size; size=$(stat -c %s "$out")
  local alloc; alloc=$(( $(stat -c %b "$out") * 512 ))
  printf '%s|%s|%s|%s|%s|%s\n' "$name" "$wall" "$user" "$sys" "$size" "$alloc" >> "$work/results"
}
rm -f "$work/results"
files=$(du -sb "$src" | cut -f1)
for round in 1 2; do
  warm=0
  run "raw->qcow2 (cold) qemu-img" "$work/q.qcow2" qemu-img convert -O qcow2 "$src" "$work/q.qcow2"
  run "raw->qcow2 (cold) utsushi-img" "$work/u.qcow2" "$bin/utsushi-img" -q convert -O qcow2 "$src" "$work/u.qcow2"
  run "raw->qcow2 zstd (cold) qemu-img" "$work/qz.qcow2" qemu-img convert -c -O qcow2 -o compression_type=zstd "$src" "$work/qz.qcow2"
  run "raw->qcow2 zstd (cold) utsushi-img" "$work/uz.qcow2" "$bin/utsushi-img" -q convert -c -O qcow2 "$src" "$work/uz.qcow2"
  run "qcow2->raw (cold) qemu-img" "$work/q.raw" qemu-img convert -O raw "$work/q.qcow2" "$work/q.raw"
  run "qcow2->raw (cold) utsushi-img" "$work/u.raw" "$bin/utsushi-img" -q convert -O raw "$work/q.qcow2" "$work/u.raw"
  run "zstd qcow2->raw (cold) qemu-img" "$work/qzr.raw" qemu-img convert -O raw "$work/qz.qcow2" "$work/qzr.raw"
  run "zstd qcow2->raw (cold) utsushi-img" "$work/uzr.raw" "$bin/utsushi-img" -q convert -O raw "$work/qz.qcow2" "$work/uzr.raw"
  warm=1
  run "raw->qcow2 zstd (warm) qemu-img" "$work/qz.qcow2" qemu-img convert -c -O qcow2 -o compression_type=zstd "$src" "$work/qz.qcow2"
  run "raw->qcow2 zstd (warm) utsushi-img" "$work/uz.qcow2" "$bin/utsushi-img" -q convert -c -O qcow2 "$src" "$work/uz.qcow2"
  run "raw->qcow2 zlib (warm) qemu-img" "$work/ql.qcow2" qemu-img convert -c -O qcow2 "$src" "$work/ql.qcow2"
  run "raw->qcow2 zlib (warm) utsushi-img" "$work/ul.qcow2" "$bin/utsushi-img" -q convert -c -O qcow2 -o compression_type=zlib "$src" "$work/ul.qcow2"
done
# Correctness of what was measured.
qemu-img check -q "$work/u.qcow2" && qemu-img check -q "$work/uz.qcow2" && qemu-img check -q "$work/ul.qcow2"
qemu-img compare -q "$src" "$work/u.qcow2" && qemu-img compare -q "$src" "$work/uz.qcow2"
cmp "$work/q.raw" "$work/u.raw" && cmp "$work/qzr.raw" "$work/uzr.raw"
echo "input: $src, $(stat -c %s "$src") bytes, $files bytes allocated; $(nproc) cores"
echo
echo "| case | tool | wall s | user s | sys s | CPU s | output bytes | allocated bytes |"
echo "|---|---|---|---|---|---|---|---|"
awk -F'|' '{split($1,a," "); tool=a[length(a)]; c=$1; sub(" " tool "$","",c);
  printf "| %s | %s | %.2f | %.2f | %.2f | %.2f | %d | %d |\n", c, tool, $2, $3, $4, $3+$4, $5, $6}' "$work/results"
