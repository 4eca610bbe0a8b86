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

# Usage errors exit 2, and the message names the argument and what is wrong.
usage_err() { # usage_err EXPECTED-MESSAGE ARGS...
  local want=$1; shift
  local err; err=$(timeout 10 "$bin" "$@" 2>&1 >/dev/null); local rc=$?
  [ $rc -eq 2 ] || fail "reel-seeds $*: exit status $rc, expected 2"
  grep -qF -- "reel-seeds: $want" <<<"$err" || fail "reel-seeds $*: message '$err', expected '$want'"
}
usage_err "--shard 4/3: expected K/N with 1 <= K <= N" --shard 4/3 -- true
usage_err "--shard 3: expected K/N" --shard 3 -- true
usage_err "no command: give it after --"
usage_err "--count -1: expected a number 1..18446744073709551615" --count -1 -- true
usage_err "--count 0: expected a number 1..18446744073709551615" --count 0 -- true
usage_err "--seeds 5..2: B is smaller than A" --seeds 5..2 -- true
usage_err "--seeds 1..-3: A and B must be numbers" --seeds 1..-3 -- true
usage_err "--seeds 7: expected A..B" --seeds 7 -- true
usage_err "--jobs 0: expected a number 1..256" --jobs 0 -- true
usage_err "--timeout x: expected seconds > 0" --timeout x -- true
usage_err "--show -2: expected a number" --show -2 -- true
usage_err "--jobs: needs a value" --jobs
usage_err "--bogus: unknown option" --bogus -- true
usage_err "0..18446744073709551615 is 2^64 seeds" --seeds 0..18446744073709551615 -- true

# A range ending at 2^64-1 runs its seeds and stops (it used to wrap and spin).
out=$(timeout 20 "$bin" --seeds 18446744073709551613..18446744073709551615 --jobs 2 --quiet -- true 2>&1)
grep -q "3 seeds.*3 passed, 0 failed" <<<"$out" || fail "range to 2^64-1: $out"
out=$(timeout 20 "$bin" --seeds 18446744073709551612..18446744073709551615 --shard 2/2 --quiet -- \
      sh -c 'echo $REEL_SEED' 2>&1)
grep -q "2 seeds.*2 passed" <<<"$out" || fail "shard of a range to 2^64-1: $out"

# --log to a directory that cannot be created is an error, not ignored.
touch "$tmp/file"
err=$("$bin" --seeds 1..2 --log "$tmp/file/sub" -- true 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] || fail "--log to an uncreatable directory: exit $rc"
grep -q -- "--log $tmp/file/sub: cannot create the directory" <<<"$err" || fail "--log message: $err"
err=$("$bin" --seeds 1..2 --log "$tmp/file" -- true 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] || fail "--log to a file: exit $rc"
"$bin" --seeds 1..3 --quiet --log "$tmp/logs" -- sh -c 'echo out-$REEL_SEED; test $REEL_SEED -ne 2' >/dev/null 2>&1
grep -q "out-2" "$tmp/logs/seed-2.log" || fail "--log did not keep the failing run's output"

# --show N prints the output of the first N failing runs (default 3).
err=$("$bin" --seeds 1..6 --jobs 1 --quiet -- sh -c 'echo "output of $REEL_SEED"; false' 2>&1 >/dev/null)
[ "$(grep -c '^output of' <<<"$err")" -eq 3 ] || fail "default shows 3 failing runs: $err"
err=$("$bin" --seeds 1..6 --jobs 1 --quiet --show 5 -- sh -c 'echo "output of $REEL_SEED"; false' 2>&1 >/dev/null)
[ "$(grep -c '^output of' <<<"$err")" -eq 5 ] || fail "--show 5 showed: $err"
err=$("$bin" --seeds 1..6 --jobs 1 --quiet --show 0 -- sh -c 'echo "output of $REEL_SEED"; false' 2>&1 >/dev/null)
[ "$(grep -c '^output of' <<<"$err")" -eq 0 ] || fail "--show 0 showed: $err"
echo "reel-seeds: all checks passed"
