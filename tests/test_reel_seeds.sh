#!/usr/bin/env bash
# tools/reel-seeds: runs a command per seed with REEL_SEED set, lists the
# failing seeds sorted with the rerun line, and splits sweeps into shards.
set -u
bin=${1:?build dir}/reel-seeds
fail() { echo "FAIL: $*"; exit 1; }

out=$("$bin" --seeds 1..20 --jobs 2 --quiet -- sh -c 'test "$REEL_SEED" -ne 13 && test "$REEL_SEED" -ne 7' 2>/dev/null)
rc=$?
[ $rc -eq 1 ] || fail "exit status $rc, expected 1"
grep -q "^failing seeds: 7 13$" <<<"$out" || fail "failing seeds not listed: $out"
grep -q "^rerun one with: REEL_SEED=7 sh -c" <<<"$out" || fail "no rerun line: $out"
grep -q "^and see what its world did: REEL_SEED=7 REEL_SIM_LOG=seed-7.log sh -c" <<<"$out" || fail "no log line: $out"
grep -q "20 seeds.*18 passed, 2 failed" <<<"$out" || fail "bad summary: $out"

# Shard 2/3 of 1..9 is seeds 2, 5, 8.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$bin" --seeds 1..9 --shard 2/3 --jobs 3 --quiet -- sh -c 'echo $REEL_SEED >> '"$tmp"'/seen' >/dev/null 2>&1 \
  || fail "shard run failed"
[ "$(sort -n "$tmp/seen" | tr '\n' ' ')" = "2 5 8 " ] || fail "shard 2/3 ran: $(cat "$tmp/seen")"

# A hung run is killed at the timeout and reported.
out=$("$bin" --seeds 1..2 --jobs 2 --timeout 1 --quiet -- sh -c 'test "$REEL_SEED" -ne 2 || sleep 30' 2>&1)
grep -q "seed 2: killed by signal 9" <<<"$out" || fail "timeout not reported: $out"

# Usage errors exit 2.
"$bin" --shard 4/3 -- true >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad shard accepted"
"$bin" >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing command accepted"
echo "reel-seeds: all checks passed"
