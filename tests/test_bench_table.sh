#!/usr/bin/env bash
# tools/bench-table on a saved `make bench` output (tests/data/bench-sample.txt,
# the sixth session's quiet run, with the bench_conn and bench_switch parts
# from single runs on a loaded machine in the seventh session): specific cells come out as the bench printed
# them, with the peer row the ratio uses and the issue's target; a truncated
# or damaged output makes it exit 1 naming the missing row, never print a
# blank cell; --update-readme rewrites only what lies between the markers,
# and README.md has those markers around a generated table.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
tool="$root/tools/bench-table"
sample="$root/tests/data/bench-sample.txt"
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

out=$("$tool" "$sample") || fail "bench-table exited $? on the sample"
has() { grep -qF -- "$1" <<<"$out" || fail "no '$1' in the table"; }
# The machine, date and load before/after.
# (bench_conn runs first: run-bench goes in name order.)
has '`make bench` of 2026-12-03T23:16:38Z: Linux 6.18.44-fc-v1147 x86_64, 2 CPU(s); load average (1, 5, 15 min) 5.77 4.44 2.70 before the first benchmark, 2.00 1.83 2.30 after the last.'
# call_soon against the pooled cancellable libuv queue, and the plain ring as the lower bound.
has '| call_soon, 10M callbacks | 171.23 M/s (run: 58.4 [53.6-59.9] ms) | pooled cancellable queue on one libuv idle handle (reel'"'"'s feature set): 156.04 M/s (run: 64.1 [55.7-92.5] ms) | 1.10x (higher is better) | ≥ 1.0× | met |'
has '| same, ns per call_soon + run | 5.84 ns | pooled queue: 6.41 ns | 1.10x (lower is better) | ≤ 5.5 ns (issue 17 item 2) | **not met** |'
has '| call_soon, plain ring as the lower bound | 171.23 M/s | libuv + plain FIFO ring, uvloop'"'"'s way [ref]: 216.11 M/s (run: 46.3 [45.2-59] ms) | 0.79x (higher is better) | — (lower bound) | — |'
# bench_switch: medians with their ranges; the await target judged on the median.
has '| task switch / yield / await round trip | 6.09 [5.20-6.62] ns / 72.46 [69.74-110.30] ns / **102.03 [90.70-124.18] ns** | ucontext swapcontext: 492.16 [455.00-629.56] ns | — (no ratio printed; medians of 5 interleaved runs) | await ≤ 120 ns (median) | met |'
# bench_conn: idle TCP beside libuv, idle stream against 1 KiB, both met here.
has '| idle TCP connection, heap bytes per connection (10,000 held) | 265 [265-269] B | libuv, uv_tcp_t + uv_read_start, same run: 269 [269-269] B | 1.01 (libuv'"'"'s heap / reel'"'"'s) | ≤ 269 B (libuv'"'"'s figure) | met |'
has '| idle stream connection (start_server handler waiting in a read), heap bytes (10,000 held) | 819 [819-832] B | — | — | ≤ 1 KiB | met |'
# ... and judged on the reel median: over 269 B / over 1 KiB is not met.
sed -e 's/^\(reel TCP  *\)265 \[265-269\]/\1317 [317-319]/' -e 's/^\(reel stream  *\)819 \[819-832\]/\11306 [1306-1307]/' "$sample" > "$tmp/big.txt"
big=$("$tool" "$tmp/big.txt") || fail "bench-table exited $? on the edited sample"
grep -qF '| 317 [317-319] B | libuv, uv_tcp_t + uv_read_start, same run: 269 [269-269] B | 1.01 (libuv'"'"'s heap / reel'"'"'s) | ≤ 269 B (libuv'"'"'s figure) | **not met** |' <<<"$big" || fail "idle TCP over 269 B not judged not met"
grep -qF '| 1306 [1306-1307] B | — | — | ≤ 1 KiB | **not met** |' <<<"$big" || fail "idle stream over 1 KiB not judged not met"
# TCP echo at 1,000 connections: the CPU ratio misses its target and says so;
# at 16 KiB it meets it.
has '| TCP echo, 1,000 conns × 1 KiB, msgs/s | 172372 [170988-208225] | libuv: 184957 [162121-197162] (raw epoll: 169686 [149956-227416]) | 0.93 (raw epoll: 1.02) |'
has '| same, server CPU ns per message | 5579 [4491-5820] | libuv: 5186 [4548-6002] (raw epoll: 5619 [4172-6279]) | 0.93 (raw epoll: 1.01); libuv'"'"'s cost / reel'"'"'s | ≥ 1.0 | **not met** |'
has '| same, server CPU ns per message | 6842 [6576-7347] | libuv: 6823 [6159-7312] (raw epoll: 6769 [6452-6958]) | 1.00 (raw epoll: 0.99); libuv'"'"'s cost / reel'"'"'s | ≥ 1.0 | met |'
has '| 1.40 (median; best of 5: 1.72) |'
has '| 2471.19 ns [2344-2560] | libuv with UV_UDP_RECVMMSG: 2658.65 ns [2581-2789] | 1.08x (lower is better); libuv'"'"'s cost / reel'"'"'s | ≥ 1.0 (reel/libuv CPU ≤ 1.0) | met |'
has '| recording, 1 KiB echo, round trips/s | 1.289e+05 rt/s [1.233e+05-1.614e+05] | the same run unrecorded: 1.395e+05 rt/s [1.383e+05-1.491e+05] | 0.92x (loop CPU 0.93x, process CPU 0.82x) | ≥ 0.90 | met |'
# reel-kv rows: one -P 1 below target, one -P 16 above, and memory per key.
has '| SET -P 1, req/s | 115407 (88692-121359) | redis-server: 124069 (102093-129955) | 0.93; server CPU µs/request 5.40 / 5.80 = 1.07 | ≥ 1.0 | **not met** |'
has '| LRANGE_100 -P 16, req/s | 1904762 (1694915-1941748) | redis-server: 1226994 (1117318-1324503) | 1.55; server CPU µs/request 2.65 / 6.40 = 2.42 | ≥ 1.0 | met |'
has '| memory per key, 1000000 small keys (RSS growth) | 72.7 B (reel-kv-B: 72.7 B) | redis-server: 98.6 B |'
# Since the eighth session the script also prints the per-repetition ratios'
# spread (a third table): the ratio cell carries it; without it (the sample,
# an older run) the cell is the ratio alone, as above.
printf 'SET            1  reel-kv / redis-server   0.93 (0.88-1.01)\n' | cat "$sample" - > "$tmp/paired.txt"
paired=$("$tool" "$tmp/paired.txt") || fail "bench-table exited $? on the sample with a paired-ratio row"
grep -qF '| redis-server: 124069 (102093-129955) | 0.93 (per repetition 0.88–1.01); server CPU µs/request 5.40 / 5.80 = 1.07 | ≥ 1.0 | **not met** |' <<<"$paired" ||
  fail "the per-repetition spread is not in the SET -P 1 ratio cell"
grep -qF 'the median of the per-repetition ratios' <<<"$paired" || fail "the kv caption does not say how the ratio is made"
has 'the TCP echo, UDP, streams and recording ratios are the median of the per-repetition ratios'
# No cell is left blank.
grep -E '^\|' <<<"$out" | grep -qE '\|\s*\|' && fail "a blank cell: $(grep -E '\|\s*\|' <<<"$out" | head -1)"

# A run cut short (here: after the UDP bench, before reel-kv) fails, naming what is missing.
sed '/^== reel-kv vs redis-server/,$d' "$sample" > "$tmp/cut.txt"
err=$("$tool" "$tmp/cut.txt" 2>&1 >"$tmp/cut.out"); rc=$?
[ $rc -eq 1 ] || fail "truncated output: exit $rc, want 1"
[ ! -s "$tmp/cut.out" ] || fail "truncated output: printed a table anyway"
grep -qF "kv_vs_redis.sh: no 'kv' section" <<<"$err" || fail "truncated output: error does not name the kv section: $err"
# One row gone from the middle: named.
grep -v '^echo 1024 B: loop CPU' "$sample" > "$tmp/row.txt"
err=$("$tool" "$tmp/row.txt" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "missing row: exit $rc, want 1"
grep -qF "no row 'echo 1024 B: loop CPU us/round trip'" <<<"$err" || fail "missing row not named: $err"
# The memory rows missing (a make bench from before bench_conn): named.
sed '/^bench_conn:/,/^$/d' "$sample" > "$tmp/noconn.txt"
err=$("$tool" "$tmp/noconn.txt" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "no bench_conn: exit $rc, want 1"
grep -qF "bench_conn: no 'conn' section" <<<"$err" || fail "missing bench_conn not named: $err"
# A switch row in the old best-of format (no range): named, not half-read.
sed 's/^\(reel_task_await_round_trip  *[0-9.]*\)  *\[[0-9.-]*\]/\1/' "$sample" > "$tmp/oldsw.txt"
err=$("$tool" "$tmp/oldsw.txt" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "switch row without a range: exit $rc, want 1"
grep -qF "bench_switch, reel_task_await_round_trip" <<<"$err" || fail "switch row without a range not named: $err"
# A row that is there but unparsable (a cell emptied): named, not printed blank.
sed 's/^\(server CPU  reel\/libuv = \)1.00, reel\/raw epoll = 1.04/\1, reel\/raw epoll = 1.04/' "$sample" > "$tmp/bad.txt"
err=$("$tool" "$tmp/bad.txt" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || fail "unparsable row: exit $rc, want 1"
grep -qF "bench_echo 100 connections x 1024 bytes, server CPU ratios" <<<"$err" || fail "unparsable row not named: $err"
# No file: exit 2.
"$tool" "$tmp/none.txt" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "missing file: exit $rc, want 2"

# --update-readme replaces the text between the markers and nothing else.
printf 'intro\n<!-- bench-table:begin -->\nold table\n<!-- bench-table:end -->\nafter\n' > "$tmp/README.md"
"$tool" --update-readme "$sample" "$tmp/README.md" >/dev/null || fail "--update-readme failed"
head -2 "$tmp/README.md" | diff - <(printf 'intro\n<!-- bench-table:begin -->\n') >/dev/null || fail "--update-readme changed the text before the table"
tail -2 "$tmp/README.md" | diff - <(printf '<!-- bench-table:end -->\nafter\n') >/dev/null || fail "--update-readme changed the text after the table"
grep -q 'old table' "$tmp/README.md" && fail "--update-readme kept the old table"
diff <(sed -n '/^<!-- bench-table:begin -->$/,/^<!-- bench-table:end -->$/p' "$tmp/README.md" | sed '1d;$d') <(printf '%s\n' "$out") >/dev/null \
  || fail "--update-readme wrote something else than the printed table"
# A README without the markers is left alone, exit 2.
printf 'no markers\n' > "$tmp/R2.md"
"$tool" --update-readme "$sample" "$tmp/R2.md" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && [ "$(cat "$tmp/R2.md")" = "no markers" ] || fail "README without markers: exit $rc"
# The README holds the markers --update-readme needs, once each, and between
# them a table of the same shape as the tool prints.
readme="$root/README.md"
[ "$(grep -cx '<!-- bench-table:begin -->' "$readme")" = 1 ] && [ "$(grep -cx '<!-- bench-table:end -->' "$readme")" = 1 ] \
  || fail "README.md needs one <!-- bench-table:begin --> and one <!-- bench-table:end --> line"
sed -n '/^<!-- bench-table:begin -->$/,/^<!-- bench-table:end -->$/p' "$readme" | grep -qF "$(grep -m1 '^| benchmark |' <<<"$out")" \
  || fail "README.md: no generated table between the markers"
echo "bench-table: all checks passed"
