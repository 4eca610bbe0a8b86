#!/usr/bin/env bash
# fuzz/build.sh — build every fuzz harness the way OSS-Fuzz and
# ClusterFuzzLite do: with $CC and $CFLAGS, linked with $LIB_FUZZING_ENGINE,
# into $OUT, each with its seed corpus (NAME_seed_corpus.zip), dictionary
# (NAME.dict) and options (NAME.options) when the repo has them.
#
#   harness            corpus                     dict / options
#   fuzz/fuzz_NAME.c   fuzz/corpus/NAME/          fuzz/fuzz_NAME.dict / .options
#   examples/fuzz_*.c  examples/corpus/NAME/      examples/fuzz_NAME.dict / .options
#
# On OSS-Fuzz, projects/reel/build.sh is just: `bash $SRC/reel/fuzz/build.sh`.
# Locally it defaults to libFuzzer + ASan into fuzz/out/oss-fuzz:
#   fuzz/build.sh && fuzz/out/oss-fuzz/fuzz_lines -runs=1000
# A project of your own on reel can copy this file and change `harnesses`.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-clang}
CFLAGS=${CFLAGS:--O1 -g -fsanitize=address,fuzzer-no-link}
LIB_FUZZING_ENGINE=${LIB_FUZZING_ENGINE:--fsanitize=fuzzer}
OUT=${OUT:-$root/fuzz/out/oss-fuzz}
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The library and the fuzz kit, compiled once with the engine's flags.
objs=()
for src in "$root"/loop/*.c "$root"/loop/*.S "$root"/sim/*.c "$root"/replay/*.c \
           "$root"/fuzz/kit/*.c "$root"/examples/lib/*.c; do
  o=$work/$(basename "$(dirname "$src")")_$(basename "$src").o
  # shellcheck disable=SC2086  # CFLAGS is a list of flags
  $CC $CFLAGS -std=gnu11 -DREEL_BUILDING_LIBRARY=1 -I"$root/include" -I"$root/loop" -I"$root/examples/lib" \
    -c "$src" -o "$o"
  objs+=("$o")
done
# The kit's leak check counts allocations through these link-time wrappers.
wrap=(-Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=free
      -Wl,--wrap=strdup -Wl,--wrap=strndup -Wl,--wrap=aligned_alloc -Wl,--wrap=posix_memalign)

harnesses=("$root"/fuzz/fuzz_*.c "$root"/examples/fuzz_*.c)
for h in "${harnesses[@]}"; do
  name=$(basename "$h" .c)
  dir=$(dirname "$h")
  # shellcheck disable=SC2086
  $CC $CFLAGS -std=gnu11 -I"$root/include" -I"$root/loop" -I"$root/examples/lib" "$h" "${objs[@]}" \
    $LIB_FUZZING_ENGINE "${wrap[@]}" -lpthread -lm -o "$OUT/$name"
  corpus=$dir/corpus/${name#fuzz_}
  if [ -d "$corpus" ] && [ -n "$(ls -A "$corpus")" ]; then
    rm -f "$OUT/${name}_seed_corpus.zip"
    (cd "$corpus" && zip -q -j "$OUT/${name}_seed_corpus.zip" ./*)
  fi
  for ext in dict options; do
    [ -f "$dir/$name.$ext" ] && cp "$dir/$name.$ext" "$OUT/$name.$ext"
  done
  echo "built $OUT/$name"
done
