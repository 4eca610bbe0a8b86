#!/usr/bin/env bash
# Every fenced ```c block in README.md and docs/*.md builds against the
# library, so the docs cannot drift from the headers:
# - a complete program (it has "int main(") is compiled and linked;
# - a fragment with #include lines, or marked <!-- c-file --> just before
#   the block, is a whole file: compiled (-c) as is, with examples/lib on
#   the include path;
# - any other fragment is compiled (-c) inside a function body. Lines from a
#   column-0 "static ..." definition to its closing "}" stay at file
#   scope. What the fragment uses but does not show comes from HTML
#   comments on the lines just before the block, invisible when rendered:
#     <!-- c-globals: void fn(void *arg); -->       file scope (one line each)
#     <!-- c-locals: reel_loop *loop = NULL; -->    top of the function body
#   Unused-variable warnings are off for fragments; every other -Wall
#   warning fails the test. An excerpt that cannot stand alone (a piece of
#   an if/else chain from a file the build compiles) is marked
#     <!-- c-skip: why -->
#   and counted, not compiled.
set -u
build=${1:?build dir}
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null); cc=${cc:-cc}
san=""
grep -q '^REEL_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null && san="-fsanitize=address,undefined"
# Each block becomes NAME-K.c (the code as written) with NAME-K.globals
# and NAME-K.locals (from the comments), and NAME-K.where (file:line).
for md in "$src/README.md" "$src"/docs/*.md; do
  awk -v out="$tmp/$(basename "$md" .md)" -v md="$(basename "$md")" '
    function comment(line, key,   s) {
      s = line; sub(/^[ \t]*<!-- *c-/, "", s); sub(/ *--> *$/, "", s)
      sub("^" key ": *", "", s); return s
    }
    /^[ \t]*<!-- *c-globals:.*-->[ \t]*$/ { globals = globals comment($0, "globals") "\n"; next }
    /^[ \t]*<!-- *c-locals:.*-->[ \t]*$/ { locals = locals comment($0, "locals") "\n"; next }
    /^[ \t]*<!-- *c-file *-->[ \t]*$/ { file = 1; next }
    /^[ \t]*<!-- *c-skip:.*-->[ \t]*$/ { skip = 1; next }
    /^[ \t]*```c[ \t]*$/ {
      inblock = 1; k++; base = out "-" k
      match($0, /^[ \t]*/); indent = RLENGTH
      printf "%s", globals > (base ".globals"); close(base ".globals")
      printf "%s", locals > (base ".locals"); close(base ".locals")
      print md ":" NR > (base ".where"); close(base ".where")
      if (file) { printf "" > (base ".file"); close(base ".file") }
      if (skip) { printf "" > (base ".skip"); close(base ".skip") }
      printf "" > (base ".c")
      globals = ""; locals = ""; file = 0; skip = 0; next
    }
    /^[ \t]*```/ && inblock { inblock = 0; close(base ".c"); next }
    inblock { print substr($0, indent + 1) > (base ".c"); next }
    { globals = ""; locals = ""; file = 0; skip = 0 }' "$md"
done
programs=0 fragments=0 skipped=0
for f in "$tmp"/*.c; do
  [ -e "$f" ] || continue
  b=${f%.c}
  where=$(cat "$b.where")
  if [ -e "$b.skip" ]; then skipped=$((skipped + 1)); continue; fi
  if grep -q "int main(" "$f"; then
    programs=$((programs + 1))
    "$cc" $san -std=gnu11 -Wall -Werror -I"$src/include" "$f" -o "$b" "$build/libreel.a" \
      -lpthread -lm > "$tmp/err" 2>&1 \
      || { echo "FAIL: the program at $where does not build:"; cat "$f" "$tmp/err"; exit 1; }
    continue
  fi
  fragments=$((fragments + 1))
  if [ -e "$b.file" ] || grep -q '^#include' "$f"; then
    # a whole file shown without main (a fuzz harness, a module): as is
    { printf '#include <stdbool.h>\n#include <stdio.h>\n'; cat "$b.globals" "$f"; } > "$b.frag.c"
  else
  {
    printf '#include <errno.h>\n#include <signal.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n'
    printf '#include <reel.h>\n'
    cat "$b.globals"
    # file-scope definitions first, then the rest inside a function
    awk '/^static .*\{.*\}[ \t]*(\/\*.*\*\/)?[ \t]*$/ { print; next }
         /^static .*\)[ \t]*$/ { top = 1 }
         top { print; if ($0 ~ /^\}/) top = 0 }' "$f"
    printf 'void doc_fragment(void);\nvoid doc_fragment(void)\n{\n'
    cat "$b.locals"
    awk '/^static .*\{.*\}[ \t]*(\/\*.*\*\/)?[ \t]*$/ { next }
         /^static .*\)[ \t]*$/ { top = 1 }
         top { if ($0 ~ /^\}/) top = 0; next }
         { print }' "$f"
    printf '}\n'
  } > "$b.frag.c"
  fi
  "$cc" $san -std=gnu11 -Wall -Werror -Wno-unused-variable -Wno-unused-but-set-variable \
    -Wno-unused-function -I"$src/include" -I"$src/examples/lib" -c "$b.frag.c" -o "$b.o" > "$tmp/err" 2>&1 \
    || { echo "FAIL: the fragment at $where does not compile (as wrapped):"; cat -n "$b.frag.c"
         cat "$tmp/err"; exit 1; }
done
[ $programs -gt 0 ] || { echo "FAIL: no complete C program found in the docs"; exit 1; }
[ $fragments -gt 0 ] || { echo "FAIL: no C fragment found in the docs"; exit 1; }
echo "doc examples: $programs complete C programs build, $fragments fragments compile," \
  "$skipped excerpts marked c-skip"
