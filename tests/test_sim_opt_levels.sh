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
prog=("$root"/tests/progs/sim_swarm_world.c "$root"/tests/helpers/sim_echo.c)
rc=0
build_one() { # name compiler flags...  (the library as CMake builds it, then the program)
  local name=$1 cc=$2 d; shift 2
  for d in loop sim replay; do  # one object folder each: loop/net.c and sim/net.c both exist
    mkdir -p "$tmp/$name.o/$d" &&
    (cd "$tmp/$name.o/$d" && "$cc" -std=gnu11 "$@" -DREEL_BUILDING_LIBRARY=1 -I"$root/include" \
       -I"$root/loop" -c "$root/$d"/*.c $([ $d = loop ] && echo "$root"/loop/*.S)) \
       2>>"$tmp/$name.log" || { echo "FAIL: $name build"; cat "$tmp/$name.log"; return 1; }
  done
  "$cc" -std=gnu11 "$@" -I"$root/include" -I"$root/tests" "${prog[@]}" "$tmp/$name.o"/*/*.o \
    -lpthread -lm -o "$tmp/$name" 2>>"$tmp/$name.log" ||
    { echo "FAIL: $name build"; cat "$tmp/$name.log"; return 1; }
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
