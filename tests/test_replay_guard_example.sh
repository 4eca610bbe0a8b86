#!/usr/bin/env bash
# examples/stream_echo, unmodified, records (REEL_RECORD) and replays
# (REEL_REPLAY) with the same callback hash: it learns its server's port
# through the loop (reel_server_get_sockname), not with getsockname(2).
# And a trace recorded by one program is refused up front by another,
# naming both.
set -u
build=${1:?build dir}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
REEL_RECORD="$tmp/echo.trace" "$build/stream_echo" > "$tmp/rec.log" 2>&1 ||
  { echo "FAIL: stream_echo fails while recording"; cat "$tmp/rec.log"; exit 1; }
REEL_REPLAY="$tmp/echo.trace" "$build/stream_echo" > "$tmp/rep.log" 2>&1 ||
  { echo "FAIL: stream_echo fails when replayed"; cat "$tmp/rep.log"; exit 1; }
if grep -qE "replay (diverged|stopped)" "$tmp/rep.log"; then
  echo "FAIL: the replay of stream_echo diverged"; cat "$tmp/rep.log"; exit 1
fi
cmp -s "$tmp/rec.log" "$tmp/rep.log" ||
  { echo "FAIL: the replay printed something else"; diff "$tmp/rec.log" "$tmp/rep.log"; exit 1; }
# Every callback record was matched in order by the replay; the end
# record's hash is the recording's own sequence hash.
"$build/reel-trace" stats "$tmp/echo.trace" | grep -q "hash [0-9a-f]* (matches)" ||
  { echo "FAIL: the trace's callback hash does not match its callbacks"; exit 1; }

cp "$build/stream_echo" "$tmp/not_the_echo"
if REEL_REPLAY="$tmp/echo.trace" "$tmp/not_the_echo" > "$tmp/other.log" 2>&1; then
  echo "FAIL: another program replayed stream_echo's trace"; cat "$tmp/other.log"; exit 1
fi
grep -q "recorded by program 'stream_echo', this is 'not_the_echo'" "$tmp/other.log" ||
  { echo "FAIL: the refusal does not name both programs"; cat "$tmp/other.log"; exit 1; }
echo "replay guard: stream_echo replays with its recorded hash; another program is refused"
