#!/usr/bin/env bash
# cmake --install puts the library, headers, reel.pc and the CMake package
# where a consumer finds them: a program builds and runs against the
# installed reel through pkg-config and through find_package(reel).
set -eu
build=${1:?build dir}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
# A sanitized build's library needs its runtime in the consumer too.
san=""
if grep -q '^REEL_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  san="-fsanitize=address,undefined"
fi
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null)
cc=${cc:-cc}
mkdir -p "$tmp/app"
cat > "$tmp/app/main.c" <<'C'
#include <reel.h>
static int main_task(void *arg, void **result) { (void)arg; (void)result; return reel_sleep(0.001); }
int main(void) { return reel_run(main_task, NULL, NULL) == 0 ? 0 : 1; }
C
# pkg-config (static link, so the test needs no LD_LIBRARY_PATH)
if command -v pkg-config >/dev/null; then
  export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
  "$cc" $san "$tmp/app/main.c" -o "$tmp/app/pc" $(pkg-config --cflags reel) \
     "$tmp/prefix/lib/libreel.a" $(pkg-config --libs-only-l --static reel | sed 's/-lreel//')
  "$tmp/app/pc" || { echo "FAIL: pkg-config build did not run"; exit 1; }
  echo "install: pkg-config consumer builds and runs"
fi
# CMake package
cat > "$tmp/app/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(app C)
find_package(reel REQUIRED)
add_executable(app main.c)
target_link_libraries(app reel::reel_static)
CM
cmake -S "$tmp/app" -B "$tmp/app/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" >/dev/null
cmake --build "$tmp/app/build" >/dev/null
"$tmp/app/build/app" || { echo "FAIL: find_package build did not run"; exit 1; }
echo "install: find_package(reel) consumer builds and runs"
