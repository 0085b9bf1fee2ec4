#!/usr/bin/env bash
# Man pages render without warnings and document every long option that
# --help (of the program and of each of its commands) lists.
source "$(dirname "$0")/lib.sh"

check_options() {  # PROG MANPAGE HELP-TEXT
  local prog="$1" page="$2" help="$3" opt
  for opt in $(grep -oE -- '--[a-z][a-z0-9-]*' <<<"$help" | sort -u); do
    local escaped="${opt//-/\\\\-}"
    if grep -qE -- "(^|[^a-z-])(${escaped}|${opt})([^a-z0-9-]|$)" "$page"; then :; else
      fail "$prog: option $opt from --help is missing in $(basename "$page")"; continue; fi
  done
}

for prog in p2v v2p clone livemig utsushi-img; do
  page="$src/man/$prog.1"
  [[ -f "$page" ]] || { fail "no man page for $prog"; continue; }
  warnings="$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null || true)"
  [[ -z "$warnings" ]] && pass "$prog.1 renders cleanly" || fail "$prog.1: $warnings"
  rendered="$(MANWIDTH=80 man -l "$page" 2>/dev/null)"
  expect_contains "$rendered" "EXIT STATUS" "$prog.1 documents exit codes"
  help="$("$bin/$prog" --help)"
  check_options "$prog" "$page" "$help"
  # Commands: the lines under "Subcommands:" in --help.
  for cmd in $(awk '/^Subcommands:/{s=1;next} s&&/^  [a-z]/{print $1}' <<<"$help"); do
    check_options "$prog $cmd" "$page" "$("$bin/$prog" "$cmd" --help)"
    grep -q -- "$cmd" "$page" || fail "$prog.1 does not mention command $cmd"
  done
  pass "$prog.1 checked against --help"
done
finish
