#!/usr/bin/env bash
# test_kv_replay BUILD_DIR — record reel-kv on epoll (REEL_RECORD) while
# redis-benchmark runs against it (several tests, plain and pipelined),
# stop it with SIGTERM, then replay the trace (REEL_REPLAY) with no
# network and no clients. reel-kv prints at exit the loop's callback hash
# and a hash of every reply byte it wrote; the replay must print the same
# line (same callbacks in the same order, same replies, same command
# count) and report no divergence.
# Exit 77 (skip) when redis-tools is missing: tools/ensure-deps test installs it.
set -u
build=$1
kv=$build/reel-kv
command -v redis-benchmark >/dev/null || { echo "SKIP: redis-benchmark not installed"; exit 77; }
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "== $f"; tail -5 "$f"; done; exit 1; }

REEL_RECORD=$tmp/trace "$kv" --port 0 > "$tmp/rec.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "ready on" "$tmp/rec.log" && break; sleep 0.05; done
port=$(sed -n 's/.*ready on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/rec.log")
[ -n "$port" ] || fail "reel-kv did not start"
for P in 1 8; do
  redis-benchmark -p "$port" -c 4 -n 300 -P $P -t set,get,incr,lpush,rpop,sadd,spop,hset,lrange,mset -q \
    > "$tmp/bench$P.log" 2>&1 || fail "redis-benchmark -P $P"
done
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ $rc = 0 ] || fail "recorded reel-kv exited with $rc"
rec=$(grep "reel-kv: exit:" "$tmp/rec.log") || fail "no exit line while recording"

start=$(date +%s%N)
REEL_REPLAY=$tmp/trace "$kv" --port 0 > "$tmp/rep.log" 2>&1 || fail "replay exited with an error"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
rep=$(grep "reel-kv: exit:" "$tmp/rep.log") || fail "no exit line when replaying"
grep -qE "diverged|stopped at" "$tmp/rep.log" && fail "the replay diverged"
echo "recorded: $rec"
echo "replayed: $rep"
[ "$rec" = "$rep" ] || fail "replay differs from the recording"
grep -q " 0 callbacks" <<<"$rec" && fail "no callbacks were hashed"
echo "PASS: redis-benchmark session ($(stat -c %s "$tmp/trace") byte trace) replayed identically in ${ms} ms"
