"""The memload guest (tests/fixtures/memload) under QEMU, and reading what it prints.

Contract:
  - machine(name, params, mib=...) is an unstarted qemu.Machine booting the memload
    fixture's kernel and initramfs with the command line `append_base` (default: the
    fixture's `append`), then `memload.mib=MIB` when mib is given, then `params`; memory
    `memory_mib` (default: the buffer plus 128 MiB). Other keywords go to Machine.
  - HEARTBEAT matches one whole heartbeat line (its newline written): groups gen, t,
    dirtied_mib, passes. A line still being written never matches, so its last number
    is never read cut short.
    generations(text) lists the gen of every heartbeat in `text`.
  - wait_heartbeats(read, count, ...) polls read() (any callable returning the console
    text so far) until `count` heartbeats follow offset `since`; it fails at once on a
    CORRUPT line, raises Silent when nothing at all follows `since` within
    `silent_after` seconds, and TimeoutError when the count is not reached by `timeout`.
    A TCG guest on a loaded host prints its once-a-second heartbeat late, never early:
    tests wait for heartbeats instead of sleeping a fixed time.
"""
import re
import time

from .fixtures import fixture
from .qemu import Machine

HEARTBEAT = re.compile(r"memload ok gen=(\d+) t=(\d+) dirtied_mib=(\d+) passes=(\d+)(?=\r?\n)")
# the whole verdict line ("ok" or "CORRUPT"), not a prefix the console is still writing
DONE = re.compile(r"memload done verdict=(\w+)\r?\n")
CORRUPT = "memload CORRUPT"


class Silent(AssertionError):
    """The guest printed nothing at all in the time given."""


class Corrupt(AssertionError):
    """The guest reported corrupted memory."""


def machine(name, params="", mib=None, memory_mib=None, append_base=None, **machine_kw):
    fx = fixture("memload")
    append = append_base if append_base is not None else fx["append"]
    if mib is not None:
        append += f" memload.mib={mib}"
    if params:
        append += " " + params
    m = Machine(name, memory_mib=memory_mib or (mib or 64) + 128, machine=fx["machine"], **machine_kw)
    m.set_kernel(fx["kernel"], fx["initrd"], append)
    return m


def generations(text):
    return [int(m.group(1)) for m in HEARTBEAT.finditer(text)]


def wait_heartbeats(read, count, since=0, timeout=90.0, silent_after=30.0, alive=None):
    """Returns the heartbeat matches after `since` once there are `count` of them."""
    start = time.monotonic()
    while True:
        text = read()[since:]
        if CORRUPT in text:
            raise Corrupt("the guest reports CORRUPT:\n" + text[-2000:])
        beats = list(HEARTBEAT.finditer(text))
        if len(beats) >= count:
            return beats
        waited = time.monotonic() - start
        if not text.strip() and waited > silent_after:
            raise Silent(f"the guest printed nothing in {silent_after:.0f} s")
        if alive is not None and not alive():
            raise AssertionError(f"the guest's QEMU exited after {len(beats)} of {count} heartbeats:\n"
                                 + text[-2000:])
        if waited > timeout:
            raise TimeoutError(f"{len(beats)} of {count} heartbeats in {timeout:.0f} s:\n" + text[-2000:])
        time.sleep(0.2)
