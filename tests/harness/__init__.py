"""Test harness for utsushi's end-to-end tests and benchmarks (Python 3 stdlib only).

Modules: fixtures (fixtures.json lookup), qemu (boot machines, serial console, QMP),
qmp (QMP client), guestfs (libguestfs through guestfish), libvirtd (a private libvirtd
and test:///default helpers). Import as `from harness import qemu` with tests/ on sys.path.
"""
