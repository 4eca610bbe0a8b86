#!/usr/bin/env bash
# Every fenced ```c block in README.md and docs/*.md that is a complete
# program (it has "int main(") is compiled and linked against the library,
# so the docs cannot drift from the headers. Fragments are not compiled.
set -u
build=${1:?build dir}
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null); cc=${cc:-cc}
san=""
grep -q '^REEL_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null && san="-fsanitize=address,undefined"
n=0
for md in "$src/README.md" "$src"/docs/*.md; do
  awk -v out="$tmp/$(basename "$md" .md)" '
    /^```c *$/ { inblock = 1; k++; file = out "-" k ".c"; next }
    /^```/ && inblock { inblock = 0; close(file); next }
    inblock { print > file }' "$md"
done
for f in "$tmp"/*.c; do
  [ -e "$f" ] || continue
  grep -q "int main(" "$f" || continue
  n=$((n + 1))
  "$cc" $san -std=gnu11 -Wall -Werror -I"$src/include" "$f" -o "${f%.c}" "$build/libreel.a" -lpthread -lm \
    > "$tmp/err" 2>&1 || { echo "FAIL: a doc example does not build: $(basename "$f")"; cat "$f" "$tmp/err"; exit 1; }
done
[ $n -gt 0 ] || { echo "FAIL: no complete C program found in the docs"; exit 1; }
echo "doc examples: $n complete C programs build"
