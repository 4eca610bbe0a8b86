#!/usr/bin/env bash
# test_kv_redis_tools BUILD_DIR — reel-kv serves the real Redis clients from
# Debian's redis-tools: redis-cli (PING, a SET/GET round trip, --pipe mode)
# and redis-benchmark (-t ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,
# spop,lrange,mset, not pipelined and -P 16). Passes when every client
# command succeeds, the server sent no error reply (INFO's
# total_error_replies), closed no client for bad input or unread output,
# and every benchmark test reported a rate (no dropped connections).
# Exit 77 (skip) when redis-tools is missing: tools/ensure-deps test installs it.
set -u
build=$1
kv=$build/reel-kv
command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null ||
  { echo "SKIP: redis-cli/redis-benchmark not installed (tools/ensure-deps test)"; exit 77; }
[ -x "$kv" ] || { echo "FAIL: $kv not built"; exit 1; }
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/kv.log" ] && tail -20 "$tmp/kv.log"; exit 1; }

"$kv" --port 0 --log > "$tmp/kv.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "ready on" "$tmp/kv.log" && break; sleep 0.05; done
port=$(sed -n 's/.*ready on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/kv.log")
[ -n "$port" ] || fail "reel-kv did not start"
cli() { redis-cli -p "$port" "$@"; }

[ "$(cli PING)" = PONG ] || fail "PING"
[ "$(cli SET greeting 'hello world')" = OK ] || fail "SET"
[ "$(cli GET greeting)" = "hello world" ] || fail "GET round trip"
[ "$(cli INCR counter)" = 1 ] || fail "INCR"

# Pipe mode: 10,000 commands as raw RESP, one connection.
for i in $(seq 10000); do printf '*3\r\n$3\r\nSET\r\n$%d\r\nkey:%d\r\n$1\r\nv\r\n' $((4 + ${#i})) "$i"; done > "$tmp/pipe.txt"
cli --pipe < "$tmp/pipe.txt" > "$tmp/pipe.out" 2>&1 || fail "redis-cli --pipe: $(cat "$tmp/pipe.out")"
grep -q "errors: 0, replies: 10000" "$tmp/pipe.out" || fail "redis-cli --pipe: $(cat "$tmp/pipe.out")"
[ "$(cli DBSIZE)" = 10002 ] || fail "DBSIZE after --pipe: $(cli DBSIZE)"

tests=ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,lrange,mset
for P in 1 16; do
  redis-benchmark -p "$port" -c 20 -n 2000 -P $P -t $tests --csv > "$tmp/bench$P.csv" 2> "$tmp/bench$P.err" ||
    fail "redis-benchmark -P $P exited with an error: $(tail -5 "$tmp/bench$P.err")"
  for t in PING_INLINE PING_MBULK SET GET INCR LPUSH RPUSH LPOP RPOP SADD HSET SPOP LRANGE_100 LRANGE_600 MSET; do
    grep -q "^\"$t" "$tmp/bench$P.csv" || grep -q "^\"${t}[ _(]" "$tmp/bench$P.csv" ||
      fail "redis-benchmark -P $P: no result for $t: $(cat "$tmp/bench$P.csv")"
  done
  echo "redis-benchmark -P $P: $(wc -l < "$tmp/bench$P.csv") result lines"
done

info=$(cli INFO stats | tr -d '\r')
errs=$(sed -n 's/^total_error_replies://p' <<<"$info")
proto=$(sed -n 's/^protocol_errors://p' <<<"$info")
cut=$(sed -n 's/^client_output_limit_closes://p' <<<"$info")
[ "$errs" = 0 ] || fail "server sent $errs error replies"
[ "$proto" = 0 ] && [ "$cut" = 0 ] || fail "server closed clients: protocol_errors=$proto output_limit=$cut"
grep -q "closing a client" "$tmp/kv.log" && fail "server closed a client"
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ $rc = 0 ] || fail "reel-kv exited with $rc"
grep -q "reel-kv: exit:" "$tmp/kv.log" || fail "reel-kv did not exit cleanly"
echo "PASS: redis-cli and redis-benchmark served ($(grep -o '[0-9]* commands' "$tmp/kv.log"))"
