#!/usr/bin/env bash
# tools/reel-shrink end to end: a planted bug's first failing seed (found
# here, so the test follows the simulator's draws) shrinks to at most 3
# decisions; the shrunk schedule fails the same way on every rerun. That
# for bug_failover (timed faults) and bug_framing (fails only through
# per-operation decisions: short reads/writes). A seed that passes and
# usage errors are reported, not shrunk.
set -u
build=$(cd "${1:?build dir}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
shrink="$root/tools/reel-shrink"
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

bug="$build/bug_failover"
out=$("$build/reel-seeds" --seeds 1..50 --jobs 2 --quiet -- "$bug" 2>/dev/null)
seed=$(sed -n 's/^failing seeds: \([0-9]*\).*/\1/p' <<<"$out")
[ -n "$seed" ] || fail "bug_failover did not fail in seeds 1..50"
want=$(REEL_SEED=$seed "$bug" | head -1)

out=$("$shrink" --seconds 60 --out shrunk.sched "$seed" -- "$bug") || fail "reel-shrink failed: $out"
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
out=$("$shrink" --seconds 60 --out framing.sched "$fseed" -- "$build/bug_framing" 2>&1) || fail "bug_framing: $out"
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
# Usage errors.
"$shrink" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no arguments accepted"
"$shrink" 08x -- true >/dev/null 2>&1; [ $? -eq 2 ] || fail "a bad seed accepted"
echo "reel-shrink: bug_failover seed $seed shrank to $faults decision(s), 10 identical failing reruns;"
echo "  bug_framing seed $fseed shrank to $fn decision(s), 10 identical failing reruns"
