#!/usr/bin/env python3
"""Builds a tar (an OVA) from files in the order given:
mkova.py OUT.ova [NAME=PATH | PATH]...  (NAME is the member name, PATH its content)."""
import os
import sys
import tarfile

with tarfile.open(sys.argv[1], "w", format=tarfile.USTAR_FORMAT) as tar:
    for arg in sys.argv[2:]:
        name, _, path = arg.partition("=") if "=" in arg else (os.path.basename(arg), "", arg)
        info = tar.gettarinfo(path, arcname=name)
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o644
        with open(path, "rb") as f:
            tar.addfile(info, f)
