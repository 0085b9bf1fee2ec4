#!/usr/bin/env bash
# VMDK and OVA against qemu-img:
#  - streamOptimized VMDKs we write are identical to their source under
#    `qemu-img compare` and clean under `qemu-img check`; header version 3,
#    flags 0x30001, an end-of-stream marker at the end;
#  - we read qemu-img's streamOptimized and monolithicSparse VMDKs byte for byte;
#  - OVA: .ovf first, then .mf with SHA256 lines that match, then the disk;
#    ovf:size is the exact member size; CPUs/memory/capacity stated; the OVA
#    converts back to the same bytes; unsafe archives are refused.
source "$(dirname "$0")/lib.sh"
img="$bin/utsushi-img"
python3 "$src/tests/e2e/img/make-source.py" "$tmp/src.raw" 48 3

expect_status 0 "convert -O vmdk" -- "$img" -q convert -O vmdk "$tmp/src.raw" "$tmp/u.vmdk"
qemu-img compare -q "$tmp/src.raw" "$tmp/u.vmdk" && pass "qemu-img compare: identical" || fail "vmdk differs"
qemu-img check -q "$tmp/u.vmdk" && pass "qemu-img check clean" || fail "qemu-img check failed"
python3 - "$tmp/u.vmdk" <<'PY' && pass "header v3, flags 0x30001, EOS marker last" || fail "vmdk layout wrong"
import struct, sys
d = open(sys.argv[1], "rb").read()
magic, ver, flags = struct.unpack("<III", d[:12])
assert magic == 0x564D444B and ver == 3 and flags == 0x30001, (hex(magic), ver, hex(flags))
assert d[-512:] == bytes(512)
assert b'createType="streamOptimized"' in d[512:512 * 21]
PY
qemu-img info "$tmp/u.vmdk" | grep -q "create type: streamOptimized" && pass "qemu-img sees streamOptimized" || fail "create type"

qemu-img convert -O vmdk -o subformat=streamOptimized "$tmp/src.raw" "$tmp/qs.vmdk"
qemu-img convert -O vmdk "$tmp/src.raw" "$tmp/qm.vmdk"
for v in qs qm; do
  rm -f "$tmp/back.raw"
  expect_status 0 "read qemu-img's $v.vmdk" -- "$img" -q convert -O raw "$tmp/$v.vmdk" "$tmp/back.raw"
  cmp -s "$tmp/back.raw" "$tmp/src.raw" && pass "$v.vmdk: same bytes" || fail "$v.vmdk: bytes differ"
done
qemu-img convert -O vmdk -o subformat=monolithicFlat "$tmp/src.raw" "$tmp/flat.vmdk"
expect_status 3 "descriptor-only vmdk refused" -- "$img" convert -O raw "$tmp/flat.vmdk" "$tmp/x.raw"
expect_contains "$err" '"monolithicFlat"' "the subformat is named"
# Descriptor files of any size (qemu-img's are under 512 bytes), probed or
# named, get the unsupported-format refusal naming their subformat.
n=0
for sf in monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat; do
  n=$((n + 1))
  qemu-img create -q -f vmdk -o subformat=$sf "$tmp/d$n.vmdk" 1M
  size=$(stat -c %s "$tmp/d$n.vmdk")
  expect_status 3 "$sf descriptor ($size bytes): info refused as unsupported" -- "$img" info "$tmp/d$n.vmdk"
  expect_contains "$err" "\"$sf\"" "the subformat $sf is named"
  expect_status 3 "$sf descriptor: convert -f vmdk refused" -- "$img" convert -f vmdk -O raw "$tmp/d$n.vmdk" "$tmp/x.raw"
done
[[ ! -e "$tmp/x.raw" ]] && pass "nothing written" || fail "x.raw written"
printf '# Disk DescriptorFile\nversion=1\n' > "$tmp/notype.vmdk"
expect_status 3 "a descriptor without createType refused as unsupported" -- "$img" info "$tmp/notype.vmdk"

# OVA.
expect_status 0 "convert -O ova" -- "$img" -q convert -O ova -o cpus=4 -o memory=4096 "$tmp/src.raw" "$tmp/app.ova"
mapfile -t members < <(tar tf "$tmp/app.ova")
[[ "${members[*]}" == "app.ovf app.mf app-disk1.vmdk" ]] && pass "member order: ${members[*]}" || fail "order: ${members[*]}"
mkdir -p "$tmp/x" && tar xf "$tmp/app.ova" -C "$tmp/x"
(cd "$tmp/x" && python3 - <<'PY') && pass "manifest SHA256 lines match; OVF sizes, CPUs, memory, capacity" || fail "OVF/manifest wrong"
import hashlib, os, re
for line in open("app.mf"):
    m = re.match(r"^(SHA256)\((.*)\)= ([0-9a-f]+)\r?$", line.rstrip("\n"))
    assert m, line
    assert hashlib.sha256(open(m.group(2), "rb").read()).hexdigest() == m.group(3), line
ovf = open("app.ovf").read()
assert f'ovf:size="{os.path.getsize("app-disk1.vmdk")}"' in ovf
assert f'ovf:capacity="{48 << 20}"' in ovf
assert "<rasd:ResourceType>3</rasd:ResourceType>" in ovf and "<rasd:VirtualQuantity>4</rasd:VirtualQuantity>" in ovf
assert "<rasd:VirtualQuantity>4096</rasd:VirtualQuantity>" in ovf
PY
qemu-img compare -q "$tmp/src.raw" "$tmp/x/app-disk1.vmdk" && pass "OVA disk identical to source" || fail "OVA disk differs"
expect_status 0 "info --json on the OVA" -- "$img" --json info "$tmp/app.ova"
expect_contains "$out" '"format":"ova"' "info names the format ova"
expect_status 0 "import: OVA -> qcow2" -- "$img" -q convert -O qcow2 "$tmp/app.ova" "$tmp/imported.qcow2"
qemu-img compare -q "$tmp/src.raw" "$tmp/imported.qcow2" && pass "imported disk identical" || fail "imported differs"

# Unsafe archives.
mkdir -p "$tmp/evil" && cp "$tmp/x/app.ovf" "$tmp/x/app-disk1.vmdk" "$tmp/evil/"
ln -s /etc/passwd "$tmp/evil/link"
(cd "$tmp/evil" && tar cf "$tmp/link.ova" app.ovf link app-disk1.vmdk)
expect_status 1 "symlink member refused" -- "$img" info -f ova "$tmp/link.ova"
expect_contains "$err" "not a regular file" "the link is named"
(cd "$tmp/evil" && tar cf "$tmp/dotdot.ova" app.ovf --transform 's,^app-disk1,../app-disk1,' app-disk1.vmdk)
expect_status 1 "'..' member refused" -- "$img" info -f ova "$tmp/dotdot.ova"
expect_contains "$err" "unsafe name" "the '..' member is named"
(cd "$tmp/evil" && tar cPf "$tmp/abs.ova" app.ovf "$tmp/evil/app-disk1.vmdk")
expect_status 1 "absolute member refused" -- "$img" info -f ova "$tmp/abs.ova"
(cd "$tmp/evil" && mknod dev c 1 3 && tar cf "$tmp/dev.ova" app.ovf dev app-disk1.vmdk)
expect_status 1 "device member refused" -- "$img" info -f ova "$tmp/dev.ova"
(cd "$tmp/evil" && tar cf "$tmp/notfirst.ova" app-disk1.vmdk app.ovf)
expect_status 1 "OVF not first refused" -- "$img" info -f ova "$tmp/notfirst.ova"

# Names that need XML escaping (and a quote, which a VMDK descriptor cannot
# hold): the OVF is valid XML with the names intact, the disk still opens in
# qemu-img, and the OVA reads back.
odd='a&b<c"d'"'"'e'
expect_status 0 "convert -O ova with an odd name" -- "$img" -q convert -O ova "$tmp/src.raw" "$tmp/$odd.ova"
rm -rf "$tmp/odd" && mkdir -p "$tmp/odd" && tar xf "$tmp/$odd.ova" -C "$tmp/odd"
xmllint --noout "$tmp/odd/$odd.ovf" && pass "xmllint accepts the OVF" || fail "OVF is not well-formed XML"
name="$(xmllint --xpath 'string(//*[local-name()="VirtualSystem"]/*[local-name()="Name"])' "$tmp/odd/$odd.ovf")"
[[ "$name" == "$odd" ]] && pass "VM name survives escaping" || fail "VM name read back as '$name'"
href="$(xmllint --xpath 'string(//*[local-name()="File"]/@*[local-name()="href"])' "$tmp/odd/$odd.ovf")"
[[ "$href" == "$odd-disk1.vmdk" && -f "$tmp/odd/$href" ]] && pass "href names the member" || fail "href '$href'"
qemu-img info "$tmp/odd/$odd-disk1.vmdk" >/dev/null && pass "qemu-img opens the VMDK" || fail "qemu-img info failed"
qemu-img compare -q "$tmp/src.raw" "$tmp/odd/$odd-disk1.vmdk" && pass "odd-name VMDK identical" || fail "differs"
expect_status 0 "convert -O vmdk to an odd name" -- "$img" -q convert -O vmdk "$tmp/src.raw" "$tmp/$odd.vmdk"
qemu-img info "$tmp/$odd.vmdk" >/dev/null && pass "qemu-img opens $odd.vmdk" || fail "qemu-img info $odd.vmdk"
rm -f "$tmp/back.raw"
expect_status 0 "the odd-name OVA reads back" -- "$img" -q convert -O raw "$tmp/$odd.ova" "$tmp/back.raw"
cmp -s "$tmp/back.raw" "$tmp/src.raw" && pass "odd-name OVA: same bytes" || fail "odd-name OVA: bytes differ"

# The reader opens the archive once (it indexes the members in one pass;
# -f ova: probing a format is a separate read).
if command -v strace >/dev/null; then
  strace -f -qq -e trace=open,openat -o "$tmp/trace" "$img" info -f ova "$tmp/app.ova" >/dev/null
  opens="$(grep -c "app\.ova\"" "$tmp/trace" || true)"
  [[ "$opens" == 1 ]] && pass "the OVA is opened once" || fail "the OVA is opened $opens times"
fi

# VM settings of 0 are refused by name.
for o in cpus=0 memory=0 memory=512k cpus=4k; do
  expect_status 2 "-o $o refused" -- "$img" convert -O ova -o "$o" "$tmp/src.raw" "$tmp/zero.ova"
  expect_contains "$err" "-o $o" "the message names -o $o"
done
[[ ! -e "$tmp/zero.ova" ]] && pass "nothing written" || fail "zero.ova written"
finish
