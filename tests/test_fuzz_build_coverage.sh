#!/usr/bin/env bash
# tools/fuzz-build puts coverage on the code under test only
# (docs/fuzzing.md, "Instrument your code, not reel"): the harness and the
# sources given with it fully, the reel sources a harness names on its
# "REEL_FUZZ_COVERAGE: edges" line with edge counters, the rest of reel
# not at all; "REEL_FUZZ_COVERAGE: no-cmp" drops comparison tracing from
# the harness's own code; "REEL_FUZZ_COVERAGE: all" instruments
# everything. Checked on the compile commands (FUZZ_CC=echo: nothing is
# compiled), from the repository root, where a glob in the edges list
# would match reel's own folders.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
fail=0

# flags HARNESS [EXTRA...] -> "SOURCE full|edges|none" per compiled source
flags() {
  FUZZ_CC=echo bash tools/fuzz-build "$1" /dev/null undefined "${@:2}" 2>&1 |
    awk '{ src = ""; for (i = 1; i < NF; i++) if ($i == "-c") src = $(i + 1)
           if (src == "") next
           k = "none"
           if ($0 ~ /fuzzer-no-link/) k = ($0 ~ /-fno-sanitize-coverage=trace-cmp/) ? "edges" : "full"
           sub("^'"$root"'/", "", src); print src, k }'
}

# expect HARNESS-LABEL "SOURCE KIND"... < flags output
expect() {
  local label=$1 out=$2; shift 2
  for want in "$@"; do
    if ! grep -qx "$want" <<<"$out"; then
      echo "FAIL: $label: expected '$want', got: $(grep "^${want%% *} " <<<"$out")"; fail=1
    fi
  done
}

sh=$(flags "$root/fuzz/fuzz_stream_conn.c")
expect stream_conn "$sh" "fuzz/fuzz_stream_conn.c full" "loop/stream.c edges" "loop/streambuf.c edges" \
  "loop/transport.c edges" "loop/loop.c none" "loop/task.c none" "sim/world.c none" \
  "sim/net.c none" "fuzz/kit/conn.c none" "replay/trace.c none"

lines=$(flags "$root/examples/fuzz_lines.c" "$root"/examples/lib/*.c)
expect lines "$lines" "examples/fuzz_lines.c full" "examples/lib/lineproto.c full" "loop/stream.c none" \
  "loop/transport.c none" "sim/world.c none" "fuzz/kit/conn.c none"

trace=$(flags "$root/fuzz/fuzz_trace.c")
expect trace "$trace" "fuzz/fuzz_trace.c full" "replay/trace.c edges" "replay/format.c edges" \
  "loop/stream.c none" "sim/world.c none"

kv=$(flags "$root/fuzz/fuzz_kv_conn.c")
expect kv_conn "$kv" "fuzz/fuzz_kv_conn.c edges" "loop/stream.c none" "loop/transport.c none" "sim/world.c none"

resp=$(flags "$root/fuzz/fuzz_kv_resp.c")
expect kv_resp "$resp" "fuzz/fuzz_kv_resp.c full" "loop/streambuf.c none"

sched=$(flags "$root/fuzz/fuzz_schedule.c")
expect schedule "$sched" "fuzz/fuzz_schedule.c full" "sim/world.c full" "loop/loop.c full" "fuzz/kit/conn.c full"

[ $fail = 0 ] && echo "fuzz-build coverage: stream_conn, lines, trace, kv_conn, kv_resp and schedule instrumented as the rule says"
exit $fail
