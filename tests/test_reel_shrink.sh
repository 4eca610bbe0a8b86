#!/usr/bin/env bash
# tools/reel-shrink end to end: a planted bug's first failing seed (found
# here, so the test follows the simulator's draws) shrinks to at most 3
# decisions; the shrunk schedule fails the same way on every rerun. That
# for bug_failover (timed faults) and bug_framing (fails only through
# per-operation decisions: short reads/writes). Both shrinks are bounded
# by runs (--runs), not time, so they end the same on any machine; the
# time cap is only against hangs, and a test that hits it says so. The
# budgets themselves: a tiny --runs stops early, says so in the summary,
# and gives the same schedule twice; --seconds 0 says it stopped. A seed
# that passes and usage errors are reported, not shrunk.
set -u
build=$(cd "${1:?build dir}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
shrink="$root/tools/reel-shrink"
fail() { echo "FAIL: $*"; exit 1; }
# Run budgets: bug_failover's seed needs 27 runs, bug_framing's 15 (tenth
# session); 100 leaves room for the simulator's draws to change. The time
# cap is for a hang or a very slow build only.
runs=100 cap=120
# budget_hit NAME OUTPUT: fail if a budget, not the shrinker, ended it.
budget_hit() {
  if grep -q "(stopped by --seconds" <<<"$2"; then
    fail "$1: the time cap (--seconds $cap), not the shrinker, was the limit; the machine is too slow or a run hangs: $2"
  elif grep -q "(stopped by --runs" <<<"$2"; then
    fail "$1: the shrink needed more than --runs $runs (it needed 27/15 runs in the tenth session): $2"
  fi
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

bug="$build/bug_failover"
out=$("$build/reel-seeds" --seeds 1..50 --jobs 2 --quiet -- "$bug" 2>/dev/null)
seed=$(sed -n 's/^failing seeds: \([0-9]*\).*/\1/p' <<<"$out")
[ -n "$seed" ] || fail "bug_failover did not fail in seeds 1..50"
want=$(REEL_SEED=$seed "$bug" | head -1)

out=$("$shrink" --runs $runs --seconds $cap --out shrunk.sched "$seed" -- "$bug") || fail "reel-shrink failed: $out"
budget_hit bug_failover "$out"
faults=$(grep -vc '^#' shrunk.sched)
[ "$faults" -ge 1 ] && [ "$faults" -le 3 ] || fail "seed $seed shrank to $faults faults (want 1..3): $out"
grep -q "^seed $seed: [0-9]* decisions -> $faults" <<<"$out" || fail "no summary line: $out"
grep -q "decisions left, [0-9]* runs" <<<"$out" || fail "no progress lines: $out"
grep -q "^rerun it: REEL_SEED=$seed REEL_SIM_SCHEDULE=shrunk.sched " <<<"$out" || fail "no rerun line: $out"
first=""
for i in 1 2 3 4 5 6 7 8 9 10; do
  got=$(REEL_SEED=$seed REEL_SIM_SCHEDULE=shrunk.sched "$bug")
  [ $? -ne 0 ] || fail "the shrunk schedule passed on rerun $i"
  [ "$(head -1 <<<"$got")" = "$want" ] || fail "rerun $i failed otherwise: $(head -1 <<<"$got")"
  [ -z "$first" ] && first=$got
  [ "$got" = "$first" ] || fail "rerun $i differs from rerun 1"
done

# A passing seed has nothing to shrink.
pass=$("$build/reel-seeds" --seeds 1..50 --jobs 2 --quiet -- "$build/bug_failover_fixed" 2>/dev/null) ||
  fail "bug_failover_fixed failed: $pass"
"$shrink" 1 -- "$build/bug_failover_fixed" >/dev/null 2>&1; [ $? -eq 1 ] || fail "a passing seed was not exit 1"
# bug_framing fails only through short reads/writes: per-operation
# decisions, which the schedule holds too.
fseed=$(sed -n 's/^failing seeds: \([0-9]*\).*/\1/p' <<<"$("$build/reel-seeds" --seeds 1..50 --jobs 2 --quiet \
          -- "$build/bug_framing" 2>/dev/null)")
[ -n "$fseed" ] || fail "bug_framing did not fail in seeds 1..50"
fwant=$(REEL_SEED=$fseed "$build/bug_framing" | head -1)
out=$("$shrink" --runs $runs --seconds $cap --out framing.sched "$fseed" -- "$build/bug_framing" 2>&1) || fail "bug_framing: $out"
budget_hit bug_framing "$out"
fn=$(grep -vc '^#' framing.sched)
[ "$fn" -ge 1 ] && [ "$fn" -le 3 ] || fail "bug_framing seed $fseed shrank to $fn decisions (want 1..3): $out"
grep -Eq '^[0-9.]+ short-(read|write) ' framing.sched || fail "bug_framing: no short read/write left: $(cat framing.sched)"
ffirst=""
for i in 1 2 3 4 5 6 7 8 9 10; do
  got=$(REEL_SEED=$fseed REEL_SIM_SCHEDULE=framing.sched REEL_SIM_LOG=framing.log "$build/bug_framing")
  [ $? -ne 0 ] || fail "bug_framing: the shrunk schedule passed on rerun $i"
  [ "$(head -1 <<<"$got")" = "$fwant" ] || fail "bug_framing rerun $i failed otherwise: $(head -1 <<<"$got")"
  got="$got
$(cat framing.log)" # the whole world, not only the verdict
  [ -z "$ffirst" ] && ffirst=$got
  [ "$got" = "$ffirst" ] || fail "bug_framing rerun $i differs from rerun 1"
done
grep -Eq ' decision short-(read|write) op=' framing.log || fail "the shrunk decision is not in the log"
# A tiny run budget stops early, says so, and gives the same schedule on
# every try: 5 runs are the recording, the reproduction, two ddmin steps
# and the final check.
for i in 1 2; do
  tiny=$("$shrink" --runs 5 --seconds $cap --out tiny$i.sched "$seed" -- "$bug") || fail "--runs 5 failed: $tiny"
  grep -q "^seed $seed: [0-9]* decisions -> [0-9]*.*; 5 runs, [0-9]* s (stopped by --runs 5: best so far)$" <<<"$tiny" ||
    fail "--runs 5 did not stop at 5 runs and say so: $tiny"
  sed -n 's/^\(seed .*runs\), [0-9]* s (stopped.*/\1/p' <<<"$tiny" > tiny$i.summary
done
cmp -s tiny1.sched tiny2.sched || fail "two shrinks with --runs 5 gave different schedules"
cmp -s tiny1.summary tiny2.summary || fail "two shrinks with --runs 5 gave different summaries"
[ "$(grep -vc '^#' tiny1.sched)" -gt "$faults" ] || fail "--runs 5 shrank as far as the whole shrink: budget not applied?"
grep -q "stopped by" <<<"$out" && fail "a whole shrink says it was stopped: $out"
secs=$("$shrink" --seconds 0 --out secs.sched "$seed" -- "$bug") || fail "--seconds 0 failed: $secs"
grep -q "; 3 runs, [0-9]* s (stopped by --seconds 0: best so far)$" <<<"$secs" || fail "--seconds 0 did not say so: $secs"
# Usage errors.
"$shrink" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no arguments accepted"
"$shrink" 08x -- true >/dev/null 2>&1; [ $? -eq 2 ] || fail "a bad seed accepted"
"$shrink" --runs 2 1 -- true >/dev/null 2>&1; [ $? -eq 2 ] || fail "--runs 2 accepted (the shrink needs 3)"
"$shrink" --runs x 1 -- true >/dev/null 2>&1; [ $? -eq 2 ] || fail "--runs x accepted"
echo "reel-shrink: bug_failover seed $seed shrank to $faults decision(s), 10 identical failing reruns;"
echo "  bug_framing seed $fseed shrank to $fn decision(s), 10 identical failing reruns"
