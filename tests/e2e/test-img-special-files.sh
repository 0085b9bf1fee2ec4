#!/usr/bin/env bash
# Outputs and inputs that are not regular files (issue 16, items 1 and 2).
# Outputs: a character device node, a FIFO or a directory is refused before
# any work, naming what it is, and left as it was; a block device (a real
# loop device) is written in place, as qemu-img does (qemu-img compare is the
# oracle), after the checks of raw.h (a mounted device is refused), and only
# in raw. Inputs: a FIFO as an image, a capture source or a qcow2 backing
# file is refused at once instead of hanging in open().
source "$(dirname "$0")/lib.sh"

# A small partitioned disk with data: MBR + ext4 (p2v maps it) plus random bytes.
truncate -s 64M "$tmp/in.raw"
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q "$tmp/in.raw"
truncate -s 63M "$tmp/p1.ext4"
mke2fs -q -t ext4 -d "$src/common" "$tmp/p1.ext4"
dd if="$tmp/p1.ext4" of="$tmp/in.raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm "$tmp/p1.ext4"

# --- outputs that are neither regular files nor block devices ---------------
mknod "$tmp/null" c 1 3
mkfifo "$tmp/fifo"
mkdir "$tmp/dir"
for target in null fifo dir; do
  case "$target" in null) kind="a character device" ;; fifo) kind="a FIFO" ;; dir) kind="a directory" ;; esac
  expect_status 2 "convert -O raw onto $kind is refused" -- timeout 20 "$bin/utsushi-img" convert -O raw "$tmp/in.raw" "$tmp/$target"
  expect_contains "$err" "is $kind" "the error names $kind"
  [[ "$target" == dir ]] && continue  # p2v -o DIR writes its images into DIR (p2v(1))
  expect_status 2 "p2v capture onto $kind is refused" -- timeout 20 "$bin/p2v" capture --no-profile -o "$tmp/$target" "$tmp/in.raw"
  expect_contains "$err" "is $kind" "p2v names $kind"
done
[[ -c "$tmp/null" && "$(stat -c %t:%T "$tmp/null")" == 1:3 ]] && pass "the character node is untouched" || fail "the node changed: $(ls -l "$tmp/null")"
[[ -p "$tmp/fifo" ]] && pass "the FIFO is untouched" || fail "the FIFO changed: $(ls -l "$tmp/fifo")"
if ls -A "$tmp" | grep -q '\.utsushi-'; then fail "a temporary was left: $(ls -A "$tmp")"; else pass "no temporary left"; fi

# --- FIFO inputs: refused at once (timeout would exit 124) --------------------
for cmd in info check map; do
  want=2; [[ "$cmd" == check ]] && want=1  # check reports every failure to check as 1 (utsushi-img(1))
  expect_status "$want" "utsushi-img $cmd FIFO is refused at once" -- timeout 10 "$bin/utsushi-img" "$cmd" "$tmp/fifo"
  expect_contains "$err" "is a FIFO" "$cmd names the FIFO"
done
expect_status 2 "convert from a FIFO is refused at once" -- timeout 10 "$bin/utsushi-img" convert -O raw "$tmp/fifo" "$tmp/x.raw"
expect_status 2 "p2v capture of a FIFO is refused at once" -- timeout 10 "$bin/p2v" capture --no-profile -o "$tmp/x.qcow2" "$tmp/fifo"
expect_contains "$err" "is a FIFO" "p2v names the FIFO"
for bf in raw qcow2; do
  qemu-img create -q -f qcow2 -u -b "$tmp/fifo" -F "$bf" "$tmp/over-$bf.qcow2" 64M
  expect_status 2 "a qcow2 whose backing file ($bf) is a FIFO is refused at once" -- timeout 10 "$bin/utsushi-img" info "$tmp/over-$bf.qcow2"
  expect_contains "$err" "is a FIFO" "the backing FIFO is named ($bf)"
done
[[ ! -e "$tmp/x.raw" && ! -e "$tmp/x.qcow2" ]] && pass "no output from a refused input" || fail "an output appeared"

# --- block devices: written in place --------------------------------------------
if ! losetup -f >/dev/null 2>&1; then echo "SKIP: no loop devices"; finish; exit 0; fi
head -c 64M /dev/urandom > "$tmp/same.img"   # old data everywhere: zeros must be written
same="$(losetup -f --show "$tmp/same.img")"
head -c 80M /dev/urandom > "$tmp/big.img"
big="$(losetup -f --show "$tmp/big.img")"
trap 'umount "$tmp/mnt" 2>/dev/null || true; losetup -d "$same" "$big" 2>/dev/null || true; rm -rf "$tmp"' EXIT
expect_status 0 "convert -O raw onto a block device" -- "$bin/utsushi-img" convert -O raw "$tmp/in.raw" "$same"
qemu-img compare -q -f raw -F raw "$tmp/in.raw" "$same" && pass "qemu-img: the device equals the image" || fail "the device differs from the image"
[[ -b "$same" ]] && pass "the device node is still a block device" || fail "the device node was replaced"
tail_before="$(tail -c 16M "$tmp/big.img" | sha256sum)"
expect_status 0 "convert onto a larger block device" -- "$bin/utsushi-img" convert -O raw "$tmp/in.raw" "$big"
cmp -s -n $((64 << 20)) "$tmp/in.raw" "$big" && pass "the device starts with the image" || fail "the larger device differs"
[[ "$(tail -c 16M "$tmp/big.img" | sha256sum)" == "$tail_before" ]] && pass "bytes past the image are left alone" || fail "the tail changed"
expect_status 3 "qcow2 onto a block device is refused" -- "$bin/utsushi-img" convert -O qcow2 "$tmp/in.raw" "$same"
expect_contains "$err" "only raw output" "the refusal says raw only"
truncate -s 32M "$tmp/small.img"
small="$(losetup -f --show "$tmp/small.img")"
trap 'umount "$tmp/mnt" 2>/dev/null || true; losetup -d "$same" "$big" "$small" 2>/dev/null || true; rm -rf "$tmp"' EXIT
expect_status 1 "a device smaller than the image is refused" -- "$bin/utsushi-img" convert -O raw "$tmp/in.raw" "$small"
expect_contains "$err" "the image needs" "the refusal names the size needed"

# p2v capture onto a device: the used blocks, in place; same guest data as a file capture.
head -c 64M /dev/urandom > "$tmp/same.img"
expect_status 0 "p2v capture --format raw onto a block device, verified" -- "$bin/p2v" capture --verify --format raw -o "$same" "$tmp/in.raw"
expect_status 0 "p2v capture --format raw to a file" -- "$bin/p2v" capture --no-profile --format raw -o "$tmp/cap.raw" "$tmp/in.raw"
qemu-img compare -q -f raw -F raw "$tmp/cap.raw" "$same" && pass "device capture equals file capture" || fail "device capture differs"
[[ ! -e "$same.hardware.json" ]] && pass "no profile written next to a device node" || { rm -f "$same.hardware.json"; fail "a profile appeared in /dev"; }

# A mounted device is never written.
mkfs.ext4 -q -F "$small"
mkdir -p "$tmp/mnt"
if mount "$small" "$tmp/mnt" 2>/dev/null; then
  expect_status 4 "a mounted device is refused" -- "$bin/utsushi-img" convert -O raw "$tmp/in.raw" "$small"
  expect_contains "$err" "mounted" "the refusal says mounted"
  umount "$tmp/mnt"
  e2fsck -fn "$tmp/small.img" >/dev/null 2>&1 && pass "the mounted device still holds its clean ext4" || fail "the mounted device was written"
fi
finish
