#!/usr/bin/env bash
# The simulator log and its timeline: REEL_SIM_LOG writes one readable line
# per world event (faults with start and end, crashes, restarts, pauses,
# connections, and with REEL_SIM_LOG_DELIVERIES=1 every delivered segment);
# tools/reel-simlog turns it into Chrome/Perfetto trace-event JSON with a
# track per host, faults as spans and deliveries as flows. The same seed
# writes the same log.
set -u
build=${1:?build dir}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
seed=6
REEL_SIM_LOG=$tmp/a.log REEL_SIM_LOG_DELIVERIES=1 "$build/sim_swarm_world" $seed 1 >/dev/null || fail "world"
REEL_SIM_LOG=$tmp/b.log REEL_SIM_LOG_DELIVERIES=1 "$build/sim_swarm_world" $seed 1 >/dev/null || fail "world"
cmp -s "$tmp/a.log" "$tmp/b.log" || fail "the same seed wrote different logs"
log=$tmp/a.log
head -1 "$log" | grep -q "^# reel sim log: seed $seed" || fail "no header: $(head -1 "$log")"
grep -q "^0.000000000 - world seed=$seed swarm=1" "$log" || fail "no world line"
grep -qE '^[0-9]+\.[0-9]{9} [a-z0-9-]+ fault-start id=[0-9]+ kind=' "$log" || fail "no fault with a start"
grep -qE ' fault-end id=[0-9]+ kind=' "$log" || fail "no fault end"
grep -q ' quiet-phase' "$log" || fail "no quiet phase"
grep -qE '^[0-9.]+ cli[0-9] connected conn=[0-9]+ to=srv' "$log" || fail "no connection event"
grep -qE ' deliver conn=[0-9]+ from=[a-z0-9]+ bytes=[0-9]+ sent=[0-9.]+' "$log" || fail "no delivery"
# Without REEL_SIM_LOG_DELIVERIES, no delivery lines.
REEL_SIM_LOG=$tmp/c.log "$build/sim_swarm_world" $seed 1 >/dev/null || fail "world"
grep -q ' deliver ' "$tmp/c.log" && fail "deliveries logged without asking"
"$build/reel-simlog" perfetto "$log" > "$tmp/trace.json" || fail "reel-simlog"
for want in '"ph":"b","cat":"fault"' '"ph":"e","cat":"fault"' '"ph":"s","cat":"msg"' '"ph":"f","bp":"e"' \
            '"name":"thread_name","args":{"name":"srv"}' '"name":"process_name"'; do
  grep -qF "$want" "$tmp/trace.json" || fail "trace has no $want"
done
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["traceEvents"]) > 100' \
    "$tmp/trace.json" || fail "trace is not valid JSON"
fi
# The schedule the run wrote, beside it on the timeline (--schedule): a
# second process, every line of the file an event of it, spans for dur=.
REEL_SIM_LOG=$tmp/s.log REEL_SIM_SCHEDULE_OUT=$tmp/s.sched "$build/sim_swarm_world" $seed 1 >/dev/null ||
  fail "world with a schedule"
"$build/reel-simlog" perfetto "$tmp/s.log" --schedule "$tmp/s.sched" > "$tmp/st.json" || fail "reel-simlog --schedule"
lines=$(grep -vc '^#' "$tmp/s.sched") spans=$(grep -v '^#' "$tmp/s.sched" | grep -c ' dur=')
[ "$lines" -ge 3 ] || fail "seed $seed wrote only $lines schedule lines"
if command -v python3 >/dev/null; then
  python3 - "$tmp/st.json" "$lines" "$spans" <<'PY' || fail "the schedule is not on the timeline"
import json, sys
ev = [e for e in json.load(open(sys.argv[1]))["traceEvents"] if e.get("pid") == 2 and e["ph"] in "Xi"]
assert len(ev) == int(sys.argv[2]), (len(ev), sys.argv[2])
assert sum(e["ph"] == "X" for e in ev) == int(sys.argv[3])
assert all(e["args"]["line"].split()[1] in e["name"] for e in ev)
PY
fi
"$build/reel-simlog" perfetto "$tmp/s.log" --schedule "$tmp/nonexistent" > /dev/null 2>&1
[ $? = 2 ] || fail "a missing schedule file was not exit 2"
# A damaged line is reported and skipped.
{ head -5 "$log"; echo "garbage line"; } > "$tmp/bad.log"
"$build/reel-simlog" perfetto "$tmp/bad.log" > /dev/null 2> "$tmp/err"
[ $? = 1 ] || fail "damaged log not reported in the exit status"
grep -q "bad.log:6: not a simulator log line" "$tmp/err" || fail "no message for the damaged line"
echo "sim log: $(wc -l < "$log") lines, trace $(wc -c < "$tmp/trace.json") bytes"
