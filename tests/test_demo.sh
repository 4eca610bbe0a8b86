#!/usr/bin/env bash
# The demo (make demo) is itself a check: it exits non-zero if any step
# sees the wrong thing. Run it once as a user would, then over a sweep of
# simulator seeds with tools/reel-seeds, so a seed that breaks the service
# under faults fails the suite and is named.
set -u
build=${1:?build dir}
"$build/demo" >/dev/null || { echo "FAIL: demo"; "$build/demo"; exit 1; }
"$build/reel-seeds" --seeds 1..64 --jobs 2 --quiet -- "$build/demo" || exit 1
echo "demo: passes, and over 64 simulator seeds"
