"""Find the fixtures built by tests/fixtures/build.

Contract: fixtures_dir() is $UTSUSHI_FIXTURES_DIR or /var/tmp/utsushi-fixtures;
fixture(name) returns that fixture's object from fixtures.json (see
tests/fixtures/README.md for the facts each one has) and raises FixtureMissing, naming
the command that builds it, when it is not there or its files are gone.
"""
import json
import os

DEFAULT_DIR = "/var/tmp/utsushi-fixtures"


class FixtureMissing(RuntimeError):
    pass


def fixtures_dir():
    return os.environ.get("UTSUSHI_FIXTURES_DIR") or DEFAULT_DIR


def load_all():
    path = os.path.join(fixtures_dir(), "fixtures.json")
    try:
        with open(path) as f:
            return {entry["name"]: entry for entry in json.load(f)}
    except FileNotFoundError:
        raise FixtureMissing(f"{path} not found: run tests/fixtures/build {fixtures_dir()}") from None


def fixture(name):
    entries = load_all()
    if name not in entries:
        raise FixtureMissing(f"fixture {name!r} not in {fixtures_dir()}/fixtures.json: "
                             f"run tests/fixtures/build {fixtures_dir()} {name}")
    entry = entries[name]
    if not os.path.exists(entry["path"]):
        raise FixtureMissing(f"fixture {name!r}: {entry['path']} is gone: rebuild it")
    return entry


def count_marker(image, start, size, marker):
    """Occurrences of `marker` (bytes or str) in bytes [start, start+size) of a raw image:
    how tests find the deleted data a fixture left in free space (one marker per 4 KiB)."""
    if isinstance(marker, str):
        marker = marker.encode()
    hits, tail = 0, b""
    with open(image, "rb") as disk:
        disk.seek(start)
        left = size
        while left > 0:
            chunk = disk.read(min(left, 16 << 20))
            if not chunk:
                break
            left -= len(chunk)
            hits += (tail + chunk).count(marker)
            tail = chunk[-(len(marker) - 1):]
    return hits
