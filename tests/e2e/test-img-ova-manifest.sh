#!/usr/bin/env bash
# An OVA's manifest (.mf) is verified while the archive is read:
#  - the descriptor's digest when the archive is opened (info too), a
#    malformed line or a listed file that is not in the archive at once, each
#    named;
#  - the disk's digest as convert and check read it (streaming, one pass):
#    a disk whose bytes differ from the manifest fails convert (exit 1, no
#    output) and check (exit 2), naming the member;
#  - OVF 1.0 SHA1 manifests, "ALG (NAME) = HEX" spacing, and a manifest placed
#    at the end of the archive (OVF 2.0) are verified the same way;
#  - OVAs with no manifest still read.
source "$(dirname "$0")/lib.sh"
img="$bin/utsushi-img"
mkova="python3 $src/tests/e2e/img/mkova.py"
python3 "$src/tests/e2e/img/make-source.py" "$tmp/src.raw" 48 3

"$img" -q convert -O ova "$tmp/src.raw" "$tmp/app.ova"
mkdir -p "$tmp/x" && tar xf "$tmp/app.ova" -C "$tmp/x"
x="$tmp/x"
sha() { sha256sum "$1" | cut -d' ' -f1; }
sha1() { sha1sum "$1" | cut -d' ' -f1; }

# converts OVA: convert to raw must succeed and give the source's bytes.
converts() {
  local ova="$1" what="$2"
  rm -f "$tmp/out.raw"
  expect_status 0 "$what: convert" -- "$img" -q convert -O raw "$ova" "$tmp/out.raw"
  cmp -s "$tmp/out.raw" "$tmp/src.raw" && pass "$what: same bytes" || fail "$what: bytes differ"
}
# refused OVA WANT-IN-STDERR WHAT: convert fails (exit 1), names it, writes nothing.
refused() {
  local ova="$1" needle="$2" what="$3"
  rm -f "$tmp/out.raw"
  expect_status 1 "$what: convert refused" -- "$img" -q convert -O raw "$ova" "$tmp/out.raw"
  expect_contains "$err" "$needle" "$what: the message names $needle"
  [[ ! -e "$tmp/out.raw" ]] && pass "$what: no output" || fail "$what: output written"
}

converts "$tmp/app.ova" "our own OVA"
expect_status 0 "check: our own OVA is clean" -- "$img" check "$tmp/app.ova"

# A disk whose bytes differ from its digest. The byte changed lies in the
# VMDK's embedded descriptor padding, which no reader looks at: only the
# digest can tell.
cp "$x/app-disk1.vmdk" "$tmp/bad-disk1.vmdk"
printf 'X' | dd of="$tmp/bad-disk1.vmdk" bs=1 seek=$((512 * 20)) conv=notrunc status=none
$mkova "$tmp/baddisk.ova" "$x/app.ovf" "$x/app.mf" "app-disk1.vmdk=$tmp/bad-disk1.vmdk"
refused "$tmp/baddisk.ova" "app-disk1.vmdk" "disk differs from the manifest"
expect_contains "$err" "SHA256" "the algorithm is named"
expect_status 2 "check: a disk that differs from the manifest is corruption" -- "$img" check "$tmp/baddisk.ova"
expect_contains "$out$err" "app-disk1.vmdk" "check names the member"
expect_status 1 "qcow2 output refused too" -- "$img" -q convert -O qcow2 "$tmp/baddisk.ova" "$tmp/out.qcow2"
[[ ! -e "$tmp/out.qcow2" ]] && pass "no qcow2 written" || fail "qcow2 written"

# A wrong digest for the descriptor: even info refuses (the .ovf is read whole).
printf 'SHA256(app.ovf)= %s\nSHA256(app-disk1.vmdk)= %s\n' "$(sha "$x/app.mf")" "$(sha "$x/app-disk1.vmdk")" > "$tmp/badovf.mf"
$mkova "$tmp/badovf.ova" "$x/app.ovf" "app.mf=$tmp/badovf.mf" "$x/app-disk1.vmdk"
expect_status 1 "info: descriptor differs from the manifest" -- "$img" info "$tmp/badovf.ova"
expect_contains "$err" "app.ovf" "the descriptor is named"
refused "$tmp/badovf.ova" "app.ovf" "descriptor differs from the manifest"

# Malformed lines are named by number.
for line in 'SHA256(app.ovf) 0123' 'MD5(app.ovf)= d41d8cd98f00b204e9800998ecf8427e' "SHA256(app.ovf)= $(sha1 "$x/app.ovf")" \
            'SHA256 app.ovf'; do
  printf 'SHA256(app-disk1.vmdk)= %s\n%s\n' "$(sha "$x/app-disk1.vmdk")" "$line" > "$tmp/malformed.mf"
  $mkova "$tmp/malformed.ova" "$x/app.ovf" "app.mf=$tmp/malformed.mf" "$x/app-disk1.vmdk"
  expect_status 1 "malformed manifest line '$line'" -- "$img" info "$tmp/malformed.ova"
  expect_contains "$err" "line 2" "the line is named"
done

# A manifest listing a file the archive does not hold.
{ cat "$x/app.mf"; printf 'SHA256(app-disk2.vmdk)= %s\n' "$(sha "$x/app.ovf")"; } > "$tmp/extra.mf"
$mkova "$tmp/extra.ova" "$x/app.ovf" "app.mf=$tmp/extra.mf" "$x/app-disk1.vmdk"
expect_status 1 "manifest lists a missing file" -- "$img" info "$tmp/extra.ova"
expect_contains "$err" "app-disk2.vmdk" "the missing file is named"

# OVF 1.0: SHA1 lines, with and without spaces around the name.
printf 'SHA1(app.ovf)= %s\nSHA1 (app-disk1.vmdk) = %s\n' "$(sha1 "$x/app.ovf")" "$(sha1 "$x/app-disk1.vmdk")" > "$tmp/sha1.mf"
$mkova "$tmp/sha1.ova" "$x/app.ovf" "app.mf=$tmp/sha1.mf" "$x/app-disk1.vmdk"
converts "$tmp/sha1.ova" "SHA1 manifest"
printf 'SHA1(app.ovf)= %s\nSHA1(app-disk1.vmdk)= %s\n' "$(sha1 "$x/app.ovf")" "$(sha1 "$tmp/bad-disk1.vmdk" | tr 0-9a-f 1-9a-f0)" > "$tmp/sha1bad.mf"
$mkova "$tmp/sha1bad.ova" "$x/app.ovf" "app.mf=$tmp/sha1bad.mf" "$x/app-disk1.vmdk"
refused "$tmp/sha1bad.ova" "app-disk1.vmdk" "SHA1 mismatch"

# OVF 2.0 allows the manifest at the end of the archive.
$mkova "$tmp/mflast.ova" "$x/app.ovf" "$x/app-disk1.vmdk" "$x/app.mf"
converts "$tmp/mflast.ova" "manifest at the end"
$mkova "$tmp/mflastbad.ova" "$x/app.ovf" "app-disk1.vmdk=$tmp/bad-disk1.vmdk" "$x/app.mf"
refused "$tmp/mflastbad.ova" "app-disk1.vmdk" "manifest at the end, disk differs"

# qemu-img's own streamOptimized layout inside an OVA is verified the same way.
qemu-img convert -O vmdk -o subformat=streamOptimized "$tmp/src.raw" "$tmp/q-disk1.vmdk"
sed "s/ovf:size=\"[0-9]*\"/ovf:size=\"$(stat -c %s "$tmp/q-disk1.vmdk")\"/" "$x/app.ovf" > "$tmp/q.ovf"
printf 'SHA256(app.ovf)= %s\nSHA256(app-disk1.vmdk)= %s\n' "$(sha "$tmp/q.ovf")" "$(sha "$tmp/q-disk1.vmdk")" > "$tmp/q.mf"
$mkova "$tmp/q.ova" "app.ovf=$tmp/q.ovf" "app.mf=$tmp/q.mf" "app-disk1.vmdk=$tmp/q-disk1.vmdk"
converts "$tmp/q.ova" "qemu-img's VMDK in an OVA"
printf 'X' | dd of="$tmp/q-disk1.vmdk" bs=1 seek=$((512 * 20 - 1)) conv=notrunc status=none
$mkova "$tmp/qbad.ova" "app.ovf=$tmp/q.ovf" "app.mf=$tmp/q.mf" "app-disk1.vmdk=$tmp/q-disk1.vmdk"
refused "$tmp/qbad.ova" "app-disk1.vmdk" "qemu-img's VMDK, changed byte"

# No manifest at all: nothing to verify, the OVA reads.
$mkova "$tmp/nomf.ova" "$x/app.ovf" "$x/app-disk1.vmdk"
converts "$tmp/nomf.ova" "no manifest"
finish
