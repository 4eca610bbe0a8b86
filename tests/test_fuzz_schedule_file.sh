#!/usr/bin/env bash
# A failing schedule-fuzzing input becomes a schedule file that replays
# the failure without the fuzzer, and that reel-shrink shrinks (issue 13):
# fuzz/bugs/crashes/bug_lease is an input on which build/bug_lease_sched
# (tests/bugs/bug_lease.c on the input's schedule) fails.
#  1. the harness fails on the input (the crash reproduces by its file);
#  2. tools/fuzz-to-schedule writes the run's decisions to a schedule
#     file, checks the harness fails the same way from it, and that the
#     seeded program (build/bug_lease) fails from it too and passes
#     without its decisions;
#  3. tools/reel-shrink shrinks that schedule to fewer decisions, and the
#     shrunk file still makes the harness fail the same way.
#  4. The same for an input of decisions addressed by identity:
#     fuzz/bugs/crashes/bug_cache.ids (a seed and one override record, a
#     latency spike that lf-ids found) fails under build/bug_cache_sched_ids,
#     its seed alone passes, and it converts to a schedule file that the
#     seeded program build/bug_cache fails from.
set -u
build=$1
root=$(cd "$(dirname "$0")/.." && pwd)
input=$root/fuzz/bugs/crashes/bug_lease
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
( "$build/bug_lease_sched" "$input" > "$tmp/h.out" 2>&1; exit $? ) 2> /dev/null
rc=$?
if [ $rc = 0 ] || ! grep -q "bug_lease: FAIL" "$tmp/h.out"; then
  echo "FAIL: bug_lease_sched does not fail on $input (exit $rc)"; cat "$tmp/h.out"; exit 1
fi
echo "1. the input fails: $(head -1 "$tmp/h.out")"
if ! "$root/tools/fuzz-to-schedule" "$input" "$tmp/lease.sched" -- "$build/bug_lease_sched" \
     --seeded "$build/bug_lease" > "$tmp/conv.out" 2>&1; then
  echo "FAIL: fuzz-to-schedule"; cat "$tmp/conv.out"; exit 1
fi
grep -q "passes with no decision from the file" "$tmp/conv.out" ||
  { echo "FAIL: the seeded program fails without the file's decisions"; cat "$tmp/conv.out"; exit 1; }
sed 's/^/2. /' "$tmp/conv.out"
seed=$(sed -n '1s/^# reel sim schedule: seed \([0-9]*\).*/\1/p' "$tmp/lease.sched")
before=$(grep -vc '^#' "$tmp/lease.sched")
if ! "$root/tools/reel-shrink" --runs 200 --seconds 120 --out "$tmp/lease.shrunk" "$seed" -- \
     "$build/bug_lease_sched" "$input" > "$tmp/shrink.out" 2>&1; then
  echo "FAIL: reel-shrink"; cat "$tmp/shrink.out"; exit 1
fi
grep -q "(stopped by --seconds" "$tmp/shrink.out" && { echo "FAIL: the time cap (--seconds 120), not the shrinker, was the limit"; cat "$tmp/shrink.out"; exit 1; }
after=$(grep -vc '^#' "$tmp/lease.shrunk")
[ "$after" -lt "$before" ] || { echo "FAIL: not shrunk ($before -> $after)"; exit 1; }
( REEL_SIM_SCHEDULE=$tmp/lease.shrunk "$build/bug_lease_sched" "$input" > "$tmp/s.out" 2>&1; exit $? ) 2> /dev/null
rc=$?
if [ $rc = 0 ] || [ "$(head -1 "$tmp/s.out")" != "$(head -1 "$tmp/h.out")" ]; then
  echo "FAIL: the shrunk schedule does not replay the failure (exit $rc)"; cat "$tmp/s.out"; exit 1
fi
echo "3. shrunk from $before to $after decisions; the harness still fails from it:"
grep -v '^#' "$tmp/lease.shrunk" | sed 's/^/   /'
ids=$root/fuzz/bugs/crashes/bug_cache.ids
( "$build/bug_cache_sched_ids" "$ids" > "$tmp/i.out" 2>&1; exit $? ) 2> /dev/null
rc=$?
if [ $rc = 0 ] || ! grep -q "bug_cache: FAIL" "$tmp/i.out"; then
  echo "FAIL: bug_cache_sched_ids does not fail on $ids (exit $rc)"; cat "$tmp/i.out"; exit 1
fi
head -c 8 "$ids" > "$tmp/seed-only"
if ! "$build/bug_cache_sched_ids" "$tmp/seed-only" > "$tmp/so.out" 2>&1; then
  echo "FAIL: the input's seed alone fails: the override record is not what the failure needs"
  cat "$tmp/so.out"; exit 1
fi
if ! "$root/tools/fuzz-to-schedule" "$ids" "$tmp/cache.sched" -- "$build/bug_cache_sched_ids" \
     --seeded "$build/bug_cache" > "$tmp/iconv.out" 2>&1 ||
   ! grep -q "passes with no decision from the file" "$tmp/iconv.out"; then
  echo "FAIL: fuzz-to-schedule on the identity input"; cat "$tmp/iconv.out"; exit 1
fi
echo "4. $(stat -c %s "$ids")-byte identity input fails ($(head -1 "$tmp/i.out")), its seed alone passes;"
sed 's/^/   /' "$tmp/iconv.out" | head -4
