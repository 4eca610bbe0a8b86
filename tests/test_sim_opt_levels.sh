#!/usr/bin/env bash
# Determinism across builds: the same seed gives the same simulator hash
# whatever the optimisation level and compiler. tests/progs/sim_swarm_world
# (a service under the default swarm, every fault family on) as CMake built
# it (-O2) is compared with the same sources compiled here at gcc -O0 and,
# when clang is installed, clang -O2.
set -u
build=${1:?build dir}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
seeds="1 6"
want=$("$build/sim_swarm_world" $seeds) || { echo "FAIL: sim_swarm_world"; exit 1; }
libsrcs=("$root"/loop/*.c "$root"/loop/*.S "$root"/sim/*.c "$root"/replay/*.c)
progsrcs=("$root"/tests/progs/sim_swarm_world.c "$root"/tests/helpers/sim_echo.c)
rc=0
# The library's sources are compiled as CMake compiles them (with
# REEL_BUILDING_LIBRARY, which turns off the call-site macros inside the
# library); object names carry the folder, since loop/ and sim/ share some.
build_one() { # name compiler flags...
  local name=$1 cc=$2; shift 2
  local objs=() src obj
  mkdir -p "$tmp/$name.d"
  for src in "${libsrcs[@]}"; do
    obj="$tmp/$name.d/$(basename "$(dirname "$src")")_$(basename "$src").o"
    "$cc" -std=gnu11 "$@" -DREEL_BUILDING_LIBRARY -I"$root/include" -I"$root/loop" -c "$src" -o "$obj" \
      2>>"$tmp/$name.log" || { echo "FAIL: $name build"; cat "$tmp/$name.log"; return 1; }
    objs+=("$obj")
  done
  "$cc" -std=gnu11 "$@" -I"$root/include" -I"$root/tests" -I"$root/loop" "${progsrcs[@]}" "${objs[@]}" \
    -lpthread -lm -o "$tmp/$name" 2>>"$tmp/$name.log" || { echo "FAIL: $name build"; cat "$tmp/$name.log"; return 1; }
}
pids=()
build_one gcc-O0 gcc -O0 & pids+=($!)
have_clang=0
if command -v clang >/dev/null; then have_clang=1; build_one clang-O2 clang -O2 & pids+=($!); fi
for p in "${pids[@]}"; do wait "$p" || rc=1; done
[ $rc = 0 ] || exit 1
for name in gcc-O0 $([ $have_clang = 1 ] && echo clang-O2); do
  got=$("$tmp/$name" $seeds)
  if [ "$got" != "$want" ]; then
    echo "FAIL: $name gives other hashes than the -O2 build"
    diff <(echo "$want") <(echo "$got")
    rc=1
  fi
done
[ $rc = 0 ] && echo "same hashes for seeds $seeds: -O2 (cmake), gcc -O0$([ $have_clang = 1 ] && echo ', clang -O2')"
exit $rc
