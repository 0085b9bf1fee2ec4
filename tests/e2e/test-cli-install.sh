#!/usr/bin/env bash
# `cmake --install` puts every program in bin/ and its man page in
# share/man/man1/, and the installed pages render.
source "$(dirname "$0")/lib.sh"
build="$(dirname "$bin")"
expect_status 0 "cmake --install into a temporary prefix" -- cmake --install "$build" --prefix "$tmp/prefix"
for prog in p2v v2p clone livemig utsushi-img; do
  [[ -x "$tmp/prefix/bin/$prog" ]] && pass "$prog installed" || fail "$prog not installed"
  page="$tmp/prefix/share/man/man1/$prog.1"
  [[ -f "$page" ]] && pass "$prog.1 installed" || { fail "$prog.1 not installed"; continue; }
  MANWIDTH=80 man -l "$page" 2>/dev/null | grep -q "^NAME" && pass "installed $prog.1 renders" || fail "$prog.1 does not render"
done
finish
