#!/usr/bin/env bash
# The planted-bug suite, fast version (`make bugbench` is the full one):
# the default swarm, with no scripted fault, finds each planted bug
# (tests/bugs/bug_NAME.c) within a known seed range and reports it with
# its own failure line and a rerun line that reproduces it exactly; each
# fixed variant (bug_NAME_fixed) passes 200 seeds.
set -u
build=${1:?build dir}
seeder="$build/reel-seeds"
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# bug            failure kind (start of its "FAIL" line)          found within seeds
expect=(
  "bug_lease      lost update: two acknowledged writes            1..100"
  "bug_retry      double apply: balance differs                   1..100"
  "bug_wrongreply wrong reply: a page shows another user          1..100"
  "bug_failover   acknowledged write lost on failover             1..100"
  "bug_cache      stale read: a cached value served               1..100"
  "bug_framing    framing: a well-formed request was rejected     1..100"
  "bug_compact    lost write: an acknowledged PUT is gone          1..100"
)

for row in "${expect[@]}"; do
  bug=$(awk '{print $1}' <<<"$row")
  range=$(awk '{print $NF}' <<<"$row")
  kind=$(sed -E 's/^[^ ]+ +//; s/ +[0-9]+\.\.[0-9]+$//' <<<"$row")
  [ -x "$build/$bug" ] && [ -x "$build/${bug}_fixed" ] || fail "$bug or ${bug}_fixed not built"

  # Found: the sweep fails, and the first failing seed fails with this kind.
  # (The first 20 seeds usually do; the rest of the range only if not.)
  lo=${range%..*} hi=${range#*..} first=""
  for part in "$lo..$((lo + 19 < hi ? lo + 19 : hi))" "$((lo + 20))..$hi"; do
    [ "${part%..*}" -le "$hi" ] || break
    out=$("$seeder" --seeds "$part" --jobs 2 --quiet --timeout 60 --log "$tmp/$bug" \
            -- "$build/$bug" 2>/dev/null)
    first=$(sed -n 's/^failing seeds: \([0-9]*\).*/\1/p' <<<"$out")
    [ -n "$first" ] && break
  done
  [ -n "$first" ] || fail "$bug: not found in seeds $range: $out"
  head -1 "$tmp/$bug/seed-$first.log" | grep -q "^$bug: FAIL $kind" ||
    fail "$bug seed $first failed another way: $(head -1 "$tmp/$bug/seed-$first.log")"
  # The rerun line it printed reproduces the failure exactly (same output).
  rerun=$(sed -n 's/^  rerun: //p' "$tmp/$bug/seed-$first.log")
  grep -q "^REEL_SEED=$first " <<<"$rerun" || fail "$bug: no rerun line for seed $first"
  again=$(REEL_SEED=$first "$build/$bug" 2>&1)
  [ "$again" = "$(cat "$tmp/$bug/seed-$first.log")" ] || fail "$bug: seed $first did not rerun the same"
  # A seed on the command line is the same run as REEL_SEED.
  [ "$("$build/$bug" "$first" 2>&1 | head -3)" = "$(head -3 <<<"$again")" ] ||
    fail "$bug: '$bug $first' differs from REEL_SEED=$first"

  # Fixed: 200 seeds pass.
  out=$("$seeder" --seeds 1..200 --jobs 2 --quiet --timeout 60 -- "$build/${bug}_fixed" 2>&1) ||
    fail "${bug}_fixed fails: $(grep -m3 -E 'FAIL|failing seeds' <<<"$out")"
  echo "$bug: found at seed $first ($kind); ${bug}_fixed: 200 seeds pass"
done
echo "planted bugs: all found, all fixed variants pass"
