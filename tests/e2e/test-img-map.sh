#!/usr/bin/env bash
# utsushi-img map agrees with qemu-img map: for every guest range, the same
# data/zero state and, where the data is stored uncompressed in the image
# itself, the same host offset. Images: a qcow2 with scattered writes and
# zeroed clusters, an overlay over it, and a sparse raw file.
source "$(dirname "$0")/lib.sh"

qemu-img create -q -f qcow2 "$tmp/base.qcow2" 64M
qemu-io -f qcow2 -c "write -P 0x11 1M 192k" -c "write -P 0x22 8M 64k" -c "write -P 0x33 40M 1M" \
  -c "write -z 40M 128k" -c "write -P 0x44 3M 64k" "$tmp/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$tmp/top.qcow2"
qemu-io -f qcow2 -c "write -P 0x55 8M 128k" -c "write -z 1M 64k" "$tmp/top.qcow2" >/dev/null
truncate -s 32M "$tmp/sparse.raw"
head -c 1M /dev/urandom | dd of="$tmp/sparse.raw" bs=1M seek=5 conv=notrunc status=none

compare_maps() {  # IMAGE FORMAT
  local img="$1" fmt="$2"
  qemu-img map -f "$fmt" --output=json "$img" > "$tmp/qemu.json"
  if ! "$bin/utsushi-img" --json map -f "$fmt" "$img" > "$tmp/ours.json"; then fail "map $img"; return; fi
  if python3 - "$tmp/qemu.json" "$tmp/ours.json" <<'PY'; then pass "map of $(basename "$img") matches qemu-img"; else fail "map of $(basename "$img") differs"; fi
import json, sys
qemu = json.load(open(sys.argv[1]))
ours = json.loads(open(sys.argv[2]).read())["extents"]
def at(entries, pos, key_start="start"):
    for e in entries:
        if e[key_start] <= pos < e[key_start] + e["length"]:
            return e
    raise SystemExit(f"no entry covers {pos}")
# Walk every boundary of either map.
points = sorted({e["start"] for e in qemu} | {e["start"] for e in ours})
for p in points:
    q, o = at(qemu, p), at(ours, p)
    q_data = q["data"]
    if q_data != o["data"]:
        raise SystemExit(f"at {p}: qemu data={q_data} ours={o}")
    # qemu reports host offsets of backing files with depth > 0; ours only for the top file.
    if q_data and q.get("depth", 0) == 0 and "offset" in q and not q.get("compressed", False):
        want = q["offset"] + (p - q["start"])
        got = o.get("offset", None)
        got = None if got is None else got + (p - o["start"])
        if got != want:
            raise SystemExit(f"at {p}: host offset qemu={want} ours={got}")
print(f"{len(points)} boundaries agree")
PY
}

compare_maps "$tmp/base.qcow2" qcow2
compare_maps "$tmp/top.qcow2" qcow2
compare_maps "$tmp/sparse.raw" raw
finish
