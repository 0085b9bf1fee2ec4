#!/usr/bin/env python3
"""clone sysprep: the identity operations alone, in place, several images in one launch.

- --list-operations lists every identity operation with its default mark;
- an unknown operation is refused (exit 2) before anything is launched;
- --dry-run plans (the report lists the changes) and writes nothing: the images'
  checksums are unchanged;
- two overlays of the golden, with --operations defaults,-tmp-files: each gets a new
  machine id (distinct, as reported) and the reported host keys; the golden's histories,
  logs, journal and lease are gone while its /var/tmp file stays (tmp-files was dropped).
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clonetest as ct  # noqa: E402


def main():
    facts = ct.golden_fixture()
    work = ct.tmpdir("clone-sysprep-")
    try:
        run(facts, work)
    finally:
        if os.environ.get("UTSUSHI_KEEP_TMP") != "1":
            shutil.rmtree(work, ignore_errors=True)
    return 0


def run(facts, work):
    listing = subprocess.run([ct.BIN, "sysprep", "--list-operations"], capture_output=True, text=True, check=True).stdout
    names = [line.split()[0] for line in listing.splitlines()]
    ct.check(names[:3] == ["machine-id", "hostname", "ssh-hostkeys"] and "tmp-files" in names and "logfiles" in names,
             "--list-operations lists the identity operations in order")
    ct.check(all(" * " in line for line in listing.splitlines() if line.split()[0] in ("machine-id", "logfiles")),
             "defaults are marked *")
    images = []
    for n in (1, 2):
        path = os.path.join(work, f"guest{n}.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", facts["path"], path], check=True)
        images.append(path)
    rc, result, _, _ = ct.run_clone("sysprep", *images, "--operations", "defaults,-nonesuch")
    ct.check(rc == 2 and "nonesuch" in result["error"]["message"], "an unknown operation is refused")

    sums = [ct.sha256_file(p) for p in images]
    rc, plan, _, err = ct.run_clone("sysprep", "--dry-run", images[0])
    ct.check(rc == 0, f"--dry-run succeeds{'' if rc == 0 else err[-2000:]}")
    ops = {o["name"]: o for o in plan["images"][0]["customisation"]["operations"]}
    ct.check(plan["images"][0]["customisation"]["dry-run"] and ops["machine-id"]["status"] == "planned" and
             ops["logfiles"]["changes"], "--dry-run plans the changes and reports them")
    ct.check([ct.sha256_file(p) for p in images] == sums, "--dry-run writes nothing")

    rc, result, _, err = ct.run_clone("sysprep", *images, "--operations", "defaults,-tmp-files")
    ct.check(rc == 0, f"clone sysprep of two images succeeds{'' if rc == 0 else err[-2000:]}")
    done = result["images"]
    ct.check(len({d["machine-id"] for d in done}) == 2, "each image got its own machine id")
    ct.check(all(o["name"] != "tmp-files" for d in done for o in d["customisation"]["operations"]),
             "tmp-files was not run")
    inside = ct.inspect_clones(images, facts)
    for d, g in zip(done, inside):
        ct.check(g["machine-id"].strip() == d["machine-id"], f"{d['image']}: the reported machine id")
        ct.check(ct.ssh_fingerprint(g["ed25519"]) == d["ssh-host-keys"]["ed25519"], f"{d['image']}: the reported host key")
        kept = [p for p in g["leftovers"] if not p.startswith("/var/tmp/")]
        ct.check(kept == [] and g["journal"].strip() == "", f"{d['image']}: histories, logs, journal and lease gone")
        if any(p.startswith("/var/tmp/") for p in facts.get("secret", {}).get("files", [])):
            ct.check(any(p.startswith("/var/tmp/") for p in g["leftovers"]), f"{d['image']}: /var/tmp kept (-tmp-files)")


if __name__ == "__main__":
    sys.exit(main())
