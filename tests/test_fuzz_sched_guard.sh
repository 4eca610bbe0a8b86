#!/usr/bin/env bash
# The schedule fuzzers tell a run stopped by the simulator's livelock guard
# (exit 3, tests/bugs/common.h: no verdict) from a failing run (exit 1: a
# finding), issue 13. A regression either way would turn every livelock
# into a false "bug found", or hide real failures.
#
# The program is fuzz/bugs/guard_prog.c: a fixture with the planted bugs'
# shape whose world's seed picks its verdict (odd: the livelock guard,
# 7919: FAIL, 2: ok), built as every harness of fuzz/bugs/:
#   guard_prog_sched_lf     schedule_lf.c     (libFuzzer, lf-state)
#   guard_prog_sched_ids_lf schedule_ids_lf.c (libFuzzer, lf-ids)
#     both with fuzz/driver.c as main: the inputs run in order in one
#     process, as libFuzzer runs them;
#   guard_prog_sched_rand   schedule_rand.c   (the rand-bytes baseline)
#   guard_prog_sched(_ids)  schedule_main.c   (AFL++, one process a run)
# and tools/sched-vs-seeds counts the same runs (--status, --count: the
# functions its sweep uses).
set -u
build=$1
root=$(cd "$(dirname "$0")/.." && pwd)
svs=$root/tools/sched-vs-seeds
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/err" ] && sed 's/^/  | /' "$tmp/err"; exit 1; }
seed() { # seed N FILE: the 8-byte input that is world seed N (reel/fuzz.h)
  printf "$(printf '%016x' "$1" | sed 's/\(..\)/\1 /g' | awk '{for (i = NF; i >= 1; i--) printf "\\x%s", $i}')" > "$2"
}
seed 3 "$tmp/stop1"; seed 2 "$tmp/ok"; seed 5 "$tmp/stop2"; seed 7919 "$tmp/fail"
# run OUT CMD...: its exit status in $rc, stdout in OUT.out, stderr in $tmp/err
run() { local o=$1; shift; ( "$@" > "$o.out" 2> "$tmp/err"; exit $? ) 2> /dev/null; rc=$?; }

# 0. The fixture's own verdicts, seeded, and how sched-vs-seeds counts them.
for s in 2:0 3:3 7919:1; do
  run "$tmp/seeded" "$build/guard_prog" "${s%%:*}"
  [ "$rc" = "${s#*:}" ] || fail "guard_prog seed ${s%%:*} exits $rc, not ${s#*:}"
  verdict=$("$svs" --status "$rc")
  want="no finding"; [ "$rc" = 1 ] && want=finding
  [ "$verdict" = "$want" ] || fail "sched-vs-seeds --status $rc says '$verdict', not '$want'"
done
run "$tmp/seeded" "$build/guard_prog" 3
grep -q "guard_prog: STOPPED by the simulator's livelock guard" "$tmp/seeded.out" ||
  fail "the seeded guard stop prints no STOPPED line"
echo "0. seeded: seed 2 exits 0, 3 exits 3 (STOPPED), 7919 exits 1; sched-vs-seeds --status: only 1 is a finding"

# 1-2. The libFuzzer harnesses: a stop is a line and the next input runs.
step=0
for h in lf:sched-lf ids_lf:sched-ids; do
  bin=$build/guard_prog_sched_${h%%:*}; tag=${h#*:}
  run "$tmp/h" env SCHED_LEN_LOG="$tmp/len" "$bin" "$tmp/stop1" "$tmp/ok" "$tmp/stop2"
  [ "$rc" = 0 ] || fail "$bin: guard stops and an ok run exit $rc, not 0 (reported as a finding?)"
  grep -q "failed at execution" "$tmp/err" && fail "$bin: a guard stop counted as a failure"
  for e in 1 3; do
    grep -q "^$tag: livelock guard stopped execution $e (not a finding)$" "$tmp/err" ||
      fail "$bin: no line for the guard stop of execution $e"
  done
  [ "$(grep -c 'livelock guard stopped' "$tmp/err")" = 2 ] || fail "$bin: the ok run (execution 2) was called a stop"
  cp "$tmp/err" "$tmp/stops.log"
  c=$("$svs" --count "$tmp/stops.log")
  [ "$c" = "capped 0 stops 2" ] || fail "sched-vs-seeds --count on $tag's stops says '$c', not 'capped 0 stops 2'"
  run "$tmp/h" "$bin" "$tmp/stop1" "$tmp/fail" "$tmp/ok"
  [ "$rc" = 134 ] || fail "$bin: a failing run (exit 1) did not abort the harness (exit $rc)"
  grep -q "^$tag: livelock guard stopped execution 1 (not a finding)$" "$tmp/err" ||
    fail "$bin: no stop line before the failure"
  grep -q "^$tag: failed at execution 2 " "$tmp/err" || fail "$bin: the failure is not reported as execution 2"
  cp "$tmp/err" "$tmp/found.log"
  c=$("$svs" --count "$tmp/found.log" 1)
  [ "$c" = "found 2 stops 1" ] || fail "sched-vs-seeds --count on $tag's finding says '$c', not 'found 2 stops 1'"
  step=$((step + 1))
  echo "$step. $tag: stop, ok, stop -> exit 0 with 2 stop lines (count '$(
    "$svs" --count "$tmp/stops.log")'); stop, FAIL -> abort at execution 2 (count '$c')"
done
# SCHED_LEN_LOG saw all three inputs of the first run of each harness
# that logs lengths (schedule_lf.c): the ok one between the stops ran.
[ "$(wc -l < "$tmp/len")" = 3 ] || fail "schedule_lf.c logged $(wc -l < "$tmp/len") inputs, not 3"

# 3. The random-bytes baseline: from a stopping start it goes on to CAP.
bin=$build/guard_prog_sched_rand
printf '8\n16\n' > "$tmp/lengths"
run "$tmp/r" "$bin" "$tmp/lengths" "$tmp/stop1" 6 1
[ "$rc" = 0 ] || fail "$bin: a stopping start exits $rc, not 0"
grep -q "^sched-lf: livelock guard stopped execution 1 (not a finding)$" "$tmp/err" ||
  fail "$bin: no line for the stop of execution 1"
grep -q "failed at execution" "$tmp/err" && fail "$bin: a stop (or a random input) counted as a failure"
cat "$tmp/r.out" >> "$tmp/err"; cp "$tmp/err" "$tmp/rand.log"
c=$("$svs" --count "$tmp/rand.log")
case $c in "capped 6 stops "[1-6]) ;; *) fail "sched-vs-seeds --count on rand-bytes says '$c', not 'capped 6 stops 1..6'" ;; esac
run "$tmp/r" "$bin" "$tmp/lengths" "$tmp/fail" 6 1
[ "$rc" = 134 ] || fail "$bin: a failing start does not abort (exit $rc)"
grep -q "^sched-lf: failed at execution 1 " "$tmp/err" || fail "$bin: the failure is not execution 1"
echo "3. rand-bytes: a stopping start runs all 6 inputs (count '$c'); a failing start aborts at execution 1"

# 4. AFL++'s harness: a stop is a normal exit 3, a failure an abort (a crash).
for v in sched sched_ids; do
  bin=$build/guard_prog_$v
  run "$tmp/m" "$bin" "$tmp/stop1"
  [ "$rc" = 3 ] || fail "$bin: a guard stop exits $rc, not 3"
  grep -q "guard_prog: STOPPED by the simulator's livelock guard" "$tmp/m.out" || fail "$bin: no STOPPED line"
  run "$tmp/m" "$bin" "$tmp/ok"
  [ "$rc" = 0 ] || fail "$bin: an ok run exits $rc"
  run "$tmp/m" "$bin" "$tmp/fail"
  [ "$rc" = 134 ] || fail "$bin: a failing run does not abort (exit $rc)"
  grep -q "guard_prog: FAIL guard" "$tmp/m.out" || fail "$bin: no FAIL line"
done
echo "4. schedule_main.c (bytes and identities): stop -> exit 3 with STOPPED, ok -> 0, FAIL -> abort"
echo "PASS"
