#!/usr/bin/env bash
# examples/asyncio: each program (the asyncio docs' examples in C) is run
# as its doc page runs it and prints what the Python prints. Servers get
# port 0, print the port the system bound, and are stopped with SIGTERM.
set -u
build=${1:?build dir}
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
ex() { echo "$build/asyncio_$1"; }
# expect NAME OUTPUT-FILE LINE...: each line appears, in order.
expect() {
  local name=$1 file=$2; shift 2
  local n=0
  for want in "$@"; do
    n=$(tail -n +$((n + 1)) "$file" | grep -n -m1 -F -- "$want" | cut -d: -f1) \
      || fail "$name: no line '$want' in: $(cat "$file")"
    [ -n "$n" ] || fail "$name: no line '$want' in: $(cat "$file")"
  done
  echo "asyncio example $name: ok"
}
# start_server NAME: run it on port 0 in the background until it prints the
# line with its bound address ("Serving on ..." or "Listening on ..."); the
# port on that line goes to $port. The system picks the port at bind time,
# so no other process can take it between choosing and binding.
start_server() {
  "$(ex "$1")" 0 > "$tmp/$1.out" 2>&1 &
  pids+=($!)
  local line
  for _ in $(seq 200); do
    line=$(grep -m1 "Serving on\|Listening on" "$tmp/$1.out") && break
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.05
  done
  port=$(printf '%s\n' "$line" | grep -oE '[0-9]+\)?$' | tr -d ')')
  [ -n "$port" ] && [ "$port" -gt 0 ] || fail "$1 did not start: $(cat "$tmp/$1.out")"
}
# wait_for_handlers PID: until its main thread catches (or blocks) SIGINT
# and SIGTERM, read from /proc/PID/status; at most 10 s.
wait_for_handlers() {
  local cgt blk
  for _ in $(seq 200); do
    cgt=$(awk '/^SigCgt:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
    blk=$(awk '/^SigBlk:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
    [ -n "$cgt" ] && (( ((16#$cgt | 16#$blk) & 0x4002) == 0x4002 )) && return 0
    sleep 0.05
  done
  return 1
}
stop_server() { kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null; }

timeout 10 "$(ex hello_world)" > "$tmp/hello" || fail "hello_world exit $?"
[ "$(cat "$tmp/hello")" = "Hello World" ] || fail "hello_world printed: $(cat "$tmp/hello")"
echo "asyncio example hello_world: ok"

timeout 20 "$(ex call_later_clock)" > "$tmp/clock" || fail "call_later_clock exit $?"
[ "$(wc -l < "$tmp/clock")" -eq 5 ] || fail "call_later_clock: $(cat "$tmp/clock")"
grep -qvE '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}$' "$tmp/clock" && fail "call_later_clock: $(cat "$tmp/clock")"
echo "asyncio example call_later_clock: ok"

start_server tcp_echo_server_protocol
timeout 10 "$(ex tcp_echo_client_protocol)" "$port" > "$tmp/cp" 2>&1 || fail "tcp_echo_client_protocol: $(cat "$tmp/cp")"
expect tcp_echo_client_protocol "$tmp/cp" "Data sent: 'Hello World!'" "Data received: 'Hello World!'" \
  "The server closed the connection"
stop_server
expect tcp_echo_server_protocol "$tmp/tcp_echo_server_protocol.out" "Serving on 127.0.0.1:$port" \
  "Connection from ('127.0.0.1', " "Data received: 'Hello World!'" "Send: 'Hello World!'" \
  "Close the client socket"

start_server tcp_echo_server_streams
timeout 10 "$(ex tcp_echo_client_streams)" "$port" > "$tmp/cs" 2>&1 || fail "tcp_echo_client_streams: $(cat "$tmp/cs")"
expect tcp_echo_client_streams "$tmp/cs" "Send: 'Hello World!'" "Received: 'Hello World!'" "Close the connection"
stop_server
expect tcp_echo_server_streams "$tmp/tcp_echo_server_streams.out" "Serving on ('127.0.0.1', $port)" \
  "Received 'Hello World!' from ('127.0.0.1', " "Send: 'Hello World!'" "Close the connection"

# A refused connection names the address, as asyncio's OSError does.
timeout 10 "$(ex tcp_echo_client_streams)" "$port" > "$tmp/refused" 2>&1 && fail "connected to a closed port"
grep -q "Connect call failed 127.0.0.1:$port" "$tmp/refused" || fail "refused: $(cat "$tmp/refused")"

start_server udp_echo_server
timeout 10 "$(ex udp_echo_client)" "$port" > "$tmp/uc" 2>&1 || fail "udp_echo_client: $(cat "$tmp/uc")"
expect udp_echo_client "$tmp/uc" "Send: Hello World!" "Received: Hello World!" "Close the socket" "Connection closed"
stop_server
expect udp_echo_server "$tmp/udp_echo_server.out" "Starting UDP server" "Listening on ('127.0.0.1', $port)" \
  "Received 'Hello World!' from ('127.0.0.1', " "Send 'Hello World!' to ('127.0.0.1', "

timeout 10 "$(ex subprocess_date)" > "$tmp/date" 2>&1 || fail "subprocess_date: $(cat "$tmp/date")"
grep -qE "^Current date: .*[0-9]{4}$" "$tmp/date" || fail "subprocess_date printed: $(cat "$tmp/date")"
echo "asyncio example subprocess_date: ok"

for sig in TERM INT; do
  "$(ex signal_handlers)" > "$tmp/sig" 2>&1 &
  pid=$!
  pids+=($pid)
  wait_for_handlers $pid || fail "signal_handlers: SIGINT/SIGTERM never caught: $(cat "$tmp/sig")"
  kill -$sig $pid
  wait $pid || fail "signal_handlers exit $? on SIG$sig: $(cat "$tmp/sig")"
  expect "signal_handlers (SIG$sig)" "$tmp/sig" "pid $pid: send SIGINT or SIGTERM to exit." "got signal SIG$sig: exit"
done

timeout 20 "$(ex run_in_executor)" > "$tmp/exec" 2>&1 || fail "run_in_executor: $(cat "$tmp/exec")"
expect run_in_executor "$tmp/exec" "default thread pool " "custom thread pool " "custom thread pool 333332833333500000"
