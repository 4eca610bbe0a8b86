#!/usr/bin/env bash
# The fuzz kit reports a leak planted in a protocol's connection_lost path
# as a finding: fuzz/planted/planted_leak.c, run (plain build) on a
# committed input that ends in a reset, must abort with "reel-fuzz: LEAK";
# on an input that ends in EOF it must pass. (tools/fuzz-planted shows
# libFuzzer finding this and the chunk-boundary off-by-one from scratch.)
set -u
build=$1
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$build/planted_leak
out=$("$bin" "$root/fuzz/planted/corpus/leak/reset_after_hello" 2>&1)
rc=$?
if [ $rc -lt 128 ] || ! grep -q "reel-fuzz: LEAK: 1 allocation" <<<"$out"; then
  echo "FAIL: planted leak not reported (exit $rc):"; echo "$out"; exit 1
fi
echo "planted leak reported: $(grep LEAK <<<"$out")"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
printf 'hello\000\000\000' > "$tmp"   # ending byte 0: EOF, a clean close
if ! "$bin" "$tmp" > /dev/null 2>&1; then
  echo "FAIL: planted_leak reported a leak on a clean close"; exit 1
fi
echo "clean close: no leak reported"
