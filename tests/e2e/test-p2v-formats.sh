#!/usr/bin/env bash
# p2v capture output formats and several disks at once: qcow2, raw and OVA
# captures of the same disk hold the same guest data (qemu-img compare), the
# OVA states the CPUs and memory asked for, and two sources captured into a
# directory give one image each plus hardware.json. A deleted file's data,
# left in the filesystem's free space, never reaches an image.
source "$(dirname "$0")/lib.sh"

make_disk() {  # PATH MARKER: MBR + ext4 with a file written and deleted (its data stays in free space)
  local disk="$1" marker="$2"
  truncate -s 128M "$disk"
  printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q "$disk"
  mkdir -p "$tmp/content" "$tmp/mnt"; cp -r "$src/common" "$tmp/content/"
  truncate -s 127M "$tmp/part.ext4"
  mke2fs -q -t ext4 -d "$tmp/content" "$tmp/part.ext4"
  mount -o loop "$tmp/part.ext4" "$tmp/mnt"
  { for _ in $(seq 200000); do printf '%s-deleted-data-%048d\n' "$marker" 0; done; } > "$tmp/mnt/old.txt"
  sync; rm "$tmp/mnt/old.txt"; umount "$tmp/mnt"
  dd if="$tmp/part.ext4" of="$disk" bs=1M seek=1 conv=notrunc status=none
  rm -rf "$tmp/content" "$tmp/part.ext4"
}
make_disk "$tmp/a.raw" MARKERA
make_disk "$tmp/b.raw" MARKERB
grep -q MARKERA "$tmp/a.raw" && pass "deleted data is on the source disk" || fail "deleted data missing from the source"

for fmt in qcow2 raw ova; do
  expect_status 0 "capture --format $fmt" -- "$bin/p2v" -q capture --verify --no-profile --format "$fmt" \
    --cpus 3 --memory 1536 -o "$tmp/cap-a.$fmt" "$tmp/a.raw"
done
qemu-img compare -q -f qcow2 -F raw "$tmp/cap-a.qcow2" "$tmp/cap-a.raw" && pass "qcow2 and raw captures agree" || fail "qcow2 and raw captures differ"
"$bin/utsushi-img" -q convert -O raw "$tmp/cap-a.ova" "$tmp/from-ova.raw"
qemu-img compare -q -f qcow2 -F raw "$tmp/cap-a.qcow2" "$tmp/from-ova.raw" && pass "OVA disk agrees" || fail "OVA disk differs"
ovf="$(tar -xOf "$tmp/cap-a.ova" cap-a.ovf)"
expect_contains "$ovf" "<rasd:VirtualQuantity>3</rasd:VirtualQuantity>" "OVF states 3 CPUs"
expect_contains "$ovf" "<rasd:VirtualQuantity>1536</rasd:VirtualQuantity>" "OVF states 1536 MiB"
[[ "$(tar -tf "$tmp/cap-a.ova" | head -1)" == cap-a.ovf ]] && pass "the OVF is the first member" || fail "OVF not first"
if grep -q MARKERA "$tmp/from-ova.raw"; then fail "deleted data reached the image"; else pass "deleted data is absent from the image"; fi

expect_status 0 "two sources into a directory" -- "$bin/p2v" -q --json capture -o "$tmp/out" "$tmp/a.raw" "$tmp/b.raw"
[[ -f "$tmp/out/a.qcow2" && -f "$tmp/out/b.qcow2" ]] && pass "one image per source" || fail "images missing: $(ls "$tmp/out")"
[[ -f "$tmp/out/hardware.json" ]] && python3 -m json.tool "$tmp/out/hardware.json" >/dev/null && pass "hardware.json written" || fail "no hardware.json"
"$bin/p2v" -q capture --no-profile -o "$tmp/cap-b.qcow2" "$tmp/b.raw"
qemu-img compare -q "$tmp/out/a.qcow2" "$tmp/cap-a.qcow2" && qemu-img compare -q "$tmp/out/b.qcow2" "$tmp/cap-b.qcow2" \
  && pass "each directory image matches a single capture of its source" || fail "directory images differ"
if grep -q MARKERB "$tmp/a.raw"; then fail "disks mixed up"; fi
[[ "$(grep -c '"type":"disk"' <<<"$out")" == 2 ]] && pass "--json reports both disks" || fail "--json output: $out"

cp "$tmp/a.raw" "$tmp/keep.raw"
expect_status 2 "capturing a disk image onto itself is refused" -- "$bin/p2v" capture --format raw -o "$tmp/keep.raw" "$tmp/keep.raw"
expect_contains "$err" "refusing to overwrite" "the refusal says why"
cmp -s "$tmp/a.raw" "$tmp/keep.raw" && pass "the source is untouched" || fail "the source was modified"
expect_status 2 "utsushi-img convert onto its input is refused" -- "$bin/utsushi-img" convert -O raw "$tmp/keep.raw" "$tmp/keep.raw"
expect_status 2 "-c with raw output is refused" -- "$bin/p2v" capture -c --format raw -o "$tmp/x.raw" "$tmp/a.raw"
[[ ! -e "$tmp/x.raw" ]] && pass "no output after a refused command" || fail "output left behind"
finish
