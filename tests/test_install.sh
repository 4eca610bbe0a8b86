#!/usr/bin/env bash
# cmake --install puts the library, headers, reel.pc, reel-static.pc and the
# CMake package where a consumer finds them. A program is built against the
# installed reel in a prefix that is NOT in the loader's path, and RUN:
#   shared, pkg-config + the rpath variable (README "Installing");
#   static, pkg-config --static with reel-static;
#   find_package(reel) with reel::reel and with reel::reel_static;
#   the fuzz kit with reel::reel_fuzz.
set -eu
build=${1:?build dir}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
unset LD_LIBRARY_PATH
# A sanitized build's library needs its runtime in the consumer too.
san=""
if grep -q '^REEL_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  san="-fsanitize=address,undefined"
fi
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null)
cc=${cc:-cc}
mkdir -p "$tmp/app"
cat > "$tmp/app/main.c" <<'C'
#include <stdio.h>
#include <reel.h>
static int main_task(void *arg, void **result) { (void)arg; (void)result; return reel_sleep(0.001); }
int main(void)
{
    int rc = reel_run(main_task, NULL, NULL);
    printf("app ran: %s\n", reel_strerror(rc));
    return rc == 0 ? 0 : 1;
}
C
# run NAME BINARY: the program starts and prints what it should.
run() {
  out=$("$2" 2>&1) || fail "$1: did not run: $out"
  [ "${out#app ran: }" != "$out" ] || fail "$1: printed '$out'"
  echo "install: $1 builds and runs"
}
pc=$(find "$tmp/prefix" -name reel.pc | head -1)
[ -n "$pc" ] || fail "reel.pc not installed"
[ -f "$(dirname "$pc")/reel-static.pc" ] || fail "reel-static.pc not installed"
if command -v pkg-config >/dev/null; then
  export PKG_CONFIG_PATH=$(dirname "$pc")
  # Shared, exactly as the README's install section says.
  "$cc" $san "$tmp/app/main.c" -o "$tmp/app/shared" $(pkg-config --cflags --libs reel) \
     $(pkg-config --variable=rpath reel)
  readelf -d "$tmp/app/shared" | grep -q 'NEEDED.*libreel\.so' || fail "shared: not linked to libreel.so"
  run "pkg-config shared (rpath from pkg-config --variable=rpath reel)" "$tmp/app/shared"
  # Without the rpath the loader cannot find it: the case the README explains.
  "$cc" $san "$tmp/app/main.c" -o "$tmp/app/norpath" $(pkg-config --cflags --libs reel)
  if "$tmp/app/norpath" >/dev/null 2>&1; then
    echo "install: note: $tmp/prefix is in the loader's path here; rpath case not distinguishable"
  fi
  # Static.
  "$cc" $san "$tmp/app/main.c" -o "$tmp/app/static" $(pkg-config --static --cflags --libs reel-static)
  if readelf -d "$tmp/app/static" | grep -q 'NEEDED.*libreel'; then fail "static: still needs libreel.so"; fi
  run "pkg-config --static reel-static" "$tmp/app/static"
else
  echo "install: pkg-config not installed; pkg-config consumers not checked"
fi
# CMake package, shared and static.
for target in reel::reel reel::reel_static; do
  dir="$tmp/app/cmake-${target#reel::}"
  mkdir -p "$dir"
  cp "$tmp/app/main.c" "$dir/"
  cat > "$dir/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(app C)
find_package(reel REQUIRED)
add_executable(app main.c)
target_link_libraries(app $target)
CM
  cmake -S "$dir" -B "$dir/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" >/dev/null
  cmake --build "$dir/build" >/dev/null
  run "find_package(reel) with $target" "$dir/build/app"
done
# The fuzz kit: reel/fuzz.h and libreel_fuzz.a installed, and reel::reel_fuzz
# brings the link-time wrappers its leak check needs.
dir="$tmp/app/cmake-fuzz"
mkdir -p "$dir"
cat > "$dir/main.c" <<'C'
#include <stdio.h>
#include <reel/fuzz.h>
static void echo(void *u, const void *d, size_t n) { (void)u, (void)d, (void)n; }
int main(void)
{
    reel_protocol p = {.data_received = echo};
    reel_fuzz_conn_opts o = {.protocol = &p};
    reel_fuzz_conn_result res;
    int rc = reel_fuzz_conn_run_bytes(&o, (const uint8_t *)"hello\0\0\0", 8, &res);
    printf("app ran: %s, %zu bytes delivered, leak check %s\n", reel_strerror(rc),
           res.input_bytes, reel_fuzz_leak_check_available() ? "on" : "OFF");
    return rc == 0 && reel_fuzz_leak_check_available() ? 0 : 1;
}
C
cat > "$dir/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(app C)
find_package(reel REQUIRED)
add_executable(app main.c)
target_link_libraries(app reel::reel_fuzz)
CM
cmake -S "$dir" -B "$dir/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" >/dev/null
cmake --build "$dir/build" >/dev/null
run "find_package(reel) with reel::reel_fuzz (leak check on)" "$dir/build/app"
