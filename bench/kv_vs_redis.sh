#!/usr/bin/env bash
# kv_vs_redis.sh BUILD_DIR — reel-kv beside Debian's redis-server, raced by
# redis-benchmark (part of `make bench`).
#
# Both servers run at once on their own ports, redis-server with
# persistence off (--save '' --appendonly no). After one unrecorded
# warm-up run of every test against every server, each repetition runs
# every (test, pipeline) cell against the servers back to back, rotating
# which goes first, so load from elsewhere on the machine (which drifts
# over seconds) falls on both alike. Prints, per test and -P, the median
# requests/s over the repetitions with min–max, and the ratio reel-kv /
# redis-server as the median of the per-repetition (back-to-back) ratios,
# whose min–max a third table gives (with reel-kv-B / reel-kv too: with
# KV_BENCH_KV_ARGS_B set and empty that is the A/A check); then the memory per
# key (RSS growth after loading KV_BENCH_KEYS small keys by redis-cli
# --pipe, divided by the key count) for both. Also prints the load
# average before and after: on a shared machine the numbers are noisy.
#
# With two or more CPUs both servers run pinned to CPU 1 and
# redis-benchmark to CPU 0 (taskset, as Redis's own benchmarking notes
# advise), so neither server shares its core with the load generator or
# migrates between runs. Besides requests/s it prints each server's CPU
# time per request (utime+stime from /proc/PID/stat around each run),
# which is steadier than requests/s on a shared or virtual machine, how
# often each server went to sleep per request (voluntary context switches:
# each one is a wake-up the client's send has to pay for), and the same
# for redis-benchmark: its CPU time per request (bash's `times` for the
# child) and how busy it kept its core (CPU time / wall time of the run;
# near 100 % on a quiet machine means the client, not the server, sets
# the rate).
#
# A second reel-kv variant can run in the same repetitions, beside the
# first and redis-server, same pinning (KV_BENCH_KV_ARGS_B, e.g.
# "--busy-poll-us 5"): the order of the three rotates from one repetition
# to the next, and the tables print a row for each variant, so one quiet
# run compares a candidate default with the current one directly, rather
# than two runs minutes apart on a VM that drifts by 0.1 between them.
#
# Environment: KV_BENCH_REPS (5), KV_BENCH_N requests per run (200000:
# a -P 1 run lasts ~2 s on a quiet machine; the kv part of `make bench`
# then takes ~3 minutes with two variants, ~2 with one), KV_BENCH_CLIENTS
# (50), KV_BENCH_KEYS (1000000), KV_BENCH_TESTS
# (set,get,incr,lpush,lrange_100), KV_BENCH_KV_ARGS (extra reel-kv
# arguments, e.g. "--busy-poll-us 50"; none by default),
# KV_BENCH_KV_ARGS_B (a second reel-kv with these arguments; unset: none).
set -u
build=${1:?usage: kv_vs_redis.sh BUILD_DIR}
kv=$build/reel-kv
reps=${KV_BENCH_REPS:-5}
n=${KV_BENCH_N:-200000}
clients=${KV_BENCH_CLIENTS:-50}
nkeys=${KV_BENCH_KEYS:-1000000}
tests=${KV_BENCH_TESTS:-set,get,incr,lpush,lrange_100}
for t in redis-server redis-benchmark redis-cli; do
  command -v $t >/dev/null || { echo "kv_vs_redis: $t missing (tools/ensure-deps bench)"; exit 1; }
done
[ -x "$kv" ] || { echo "kv_vs_redis: $kv not built"; exit 1; }
pin_srv= pin_cli=
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  pin_srv="taskset -c 1" pin_cli="taskset -c 0"
fi
tmp=$(mktemp -d)
kvpid= kvbpid= rpid=
variant_b=${KV_BENCH_KV_ARGS_B+yes}
cleanup() { kill $kvpid $kvbpid $rpid 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    redis-cli -p $p PING >/dev/null 2>&1 || { echo $p; return; }
  done
}

start_servers() { # fresh processes; sets kvpid kport (kvbpid kbport) rpid rport
  : > "$tmp/kv.log"; : > "$tmp/kvb.log"
  $pin_srv "$kv" --port 0 ${KV_BENCH_KV_ARGS:-} > "$tmp/kv.log" 2>&1 &
  kvpid=$!
  if [ -n "$variant_b" ]; then
    $pin_srv "$kv" --port 0 ${KV_BENCH_KV_ARGS_B:-} > "$tmp/kvb.log" 2>&1 &
    kvbpid=$!
  fi
  rport=$(free_port)
  $pin_srv redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --logfile "$tmp/redis.log" &
  rpid=$!
  # Up to 20 s: on a loaded machine a fresh redis-server can take seconds
  # to answer, and a server that never does must fail the run by name
  # (not print 0 keys in the memory rows).
  for _ in $(seq 400); do
    grep -q "ready on" "$tmp/kv.log" && { [ -z "$variant_b" ] || grep -q "ready on" "$tmp/kvb.log"; } &&
      redis-cli -p "$rport" PING >/dev/null 2>&1 && break
    sleep 0.05
  done
  redis-cli -p "$rport" PING >/dev/null 2>&1 ||
    { echo "kv_vs_redis: redis-server did not answer on port $rport within 20 s"; cat "$tmp/redis.log"; exit 1; }
  kport=$(sed -n 's/.*ready on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/kv.log")
  [ -n "$kport" ] || { echo "kv_vs_redis: reel-kv did not start"; exit 1; }
  if [ -n "$variant_b" ]; then
    kbport=$(sed -n 's/.*ready on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/kvb.log")
    [ -n "$kbport" ] || { echo "kv_vs_redis: reel-kv ($KV_BENCH_KV_ARGS_B) did not start"; exit 1; }
  fi
}
stop_servers() { kill $kvpid $kvbpid $rpid 2>/dev/null; wait $kvpid $kvbpid $rpid 2>/dev/null; kvpid= kvbpid= rpid=; }
start_servers
echo
echo "== reel-kv vs redis-server $(redis-server --version | grep -o 'v=[0-9.]*'): redis-benchmark -c $clients -n $n, $reps interleaved repetitions"
echo "   $(nproc) CPU(s)${pin_srv:+, servers on CPU 1 and redis-benchmark on CPU 0}; one unrecorded warm-up run (-n $((n / 10))) per test and server;"
echo "   each (test, -P) cell runs against every server back to back, order rotating per repetition; ratio = median of the per-repetition ratios"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   reel-kv: reel-kv ${KV_BENCH_KV_ARGS:-(default arguments)}"
[ -n "$variant_b" ] && echo "   reel-kv-B: reel-kv ${KV_BENCH_KV_ARGS_B:-(default arguments)}"

# results: one line per run: server test P rps server-cpu-us-per-request
# client-cpu-us-per-request client-busy-% server-sleeps-per-request
tick=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' /proc/$1/stat; }
sleeps() { awk '/^voluntary_ctxt_switches/ { print $2 }' /proc/$1/status; }
secs() { # "1m2.345s" -> 62.345
  awk -v t="$1" 'BEGIN { split(t, a, "m"); sub(/s$/, "", a[2]); print a[1] * 60 + a[2] }'
}
run() { # run SERVER PORT PID P TEST [N]: one redis-benchmark run, the server's CPU time around it
  local t=$5 nr=${6:-$n} before after rps sl0 sl1 t0 t1 cu cs name
  name=$(echo "$t" | tr a-z A-Z)
  before=$(cpu_ticks "$3") sl0=$(sleeps "$3") t0=$(date +%s%N)
  # In a subshell, `times` gives the CPU time of the benchmark alone.
  # The CSV row is picked by its name: -t lrange_100 first prints the
  # row of the LPUSH that fills the list ("LPUSH (needed to benchmark
  # LRANGE)"), which is not the LRANGE_100 rate.
  (
    $pin_cli redis-benchmark -p "$2" -c "$clients" -n "$nr" -P "$4" -t "$t" --csv 2>/dev/null |
      awk -F'","' -v name="$name" 'NR > 1 { gsub(/"/, "", $1); gsub(/"/, "", $2)
        if (index($1, name) == 1) { print $2; exit } }' > "$tmp/rps"
    times > "$tmp/times"
  )
  t1=$(date +%s%N) after=$(cpu_ticks "$3") sl1=$(sleeps "$3")
  [ -n "${6:-}" ] && return # a warm-up run: not recorded
  rps=$(cat "$tmp/rps")
  [ -n "$rps" ] || return
  read -r cu cs < <(sed -n 2p "$tmp/times")
  awk -v s="$1" -v name="$name" -v p="$4" -v r="$rps" -v d=$((after - before)) -v k="$tick" -v n="$nr" \
    -v c="$(secs "$cu") $(secs "$cs")" -v w=$((t1 - t0)) -v sl=$((sl1 - sl0)) -v rep="$rep" 'BEGIN {
      split(c, cc, " "); cpu = cc[1] + cc[2]
      printf "%s %s %s %s %.3f %.3f %.1f %.4f %s\n", s, name, p, r, d * 1e6 / k / n, cpu * 1e6 / n, cpu * 1e9 / w * 100, sl / n, rep }' >> "$tmp/results"
}
# The servers in this run, in the order of the first repetition; each
# repetition rotates it by one, so every server goes first, middle and last.
servers="kv redis"
[ -n "$variant_b" ] && servers="kv kvb redis"
nserv=$(echo $servers | wc -w)
port_of() { case $1 in kv) echo "$kport" ;; kvb) echo "$kbport" ;; redis) echo "$rport" ;; esac; }
pid_of() { case $1 in kv) echo "$kvpid" ;; kvb) echo "$kvbpid" ;; redis) echo "$rpid" ;; esac; }
label() { case $1 in kv) echo reel-kv ;; kvb) echo reel-kv-B ;; redis) echo redis-server ;; esac; }
# Warm-up: one short run of every test against every server, not
# recorded, so the first repetition does not pay for first-touch page
# faults and cold caches that the later ones do not.
rep=0
for s in $servers; do
  for t in ${tests//,/ }; do run $s "$(port_of $s)" "$(pid_of $s)" 1 "$t" $((n / 10)); done
done
# Each cell (test, -P) runs against every server back to back, so the
# runs compared are seconds apart, not a whole pass over the tests; the
# order within a cell rotates from one repetition to the next.
for rep in $(seq "$reps"); do
  set -- $servers
  for _ in $(seq $(((rep - 1) % nserv))); do x=$1; shift; set -- "$@" "$x"; done
  order="$*"
  for P in 1 16; do
    for t in ${tests//,/ }; do
      for s in $order; do run $s "$(port_of $s)" "$(pid_of $s)" $P "$t"; done
    done
  done
done

med() { # "median min max" of the numbers on stdin
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "0 0 0"; exit } m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}
paired() { # paired A B TEST P -> "median min max" of A's req/s / B's, per repetition
  awk -v a="$1" -v b="$2" -v t="$3" -v p="$4" '$2 == t && $3 == p && ($1 == a || $1 == b) { r[$1, $9] = $4 }
    END { for (i = 1; (a, i) in r || (b, i) in r; i++) if ((a, i) in r && (b, i) in r && r[b, i] > 0) print r[a, i] / r[b, i] }' "$tmp/results" | med
}
stat() { # stat SERVER TEST P [COLUMN] -> "median min max"
  awk -v s="$1" -v t="$2" -v p="$3" -v c="${4:-4}" '$1 == s && $2 == t && $3 == p { print $c }' "$tmp/results" | med
}
kvs="kv"
[ -n "$variant_b" ] && kvs="kv kvb"
printf '\n%-12s %3s  %-10s %-30s %-30s %-6s %s\n' test -P server "req/s median (min-max)" "redis-server req/s median (min-max)" ratio \
  "server CPU us/request, this / redis-server (medians; ratio > 1 = this cheaper)"
for t in $(awk '{ print $2 }' "$tmp/results" | awk '!seen[$0]++'); do
  for P in 1 16; do
    read -r rm rmin rmax < <(stat redis "$t" $P)
    read -r rc _ _ < <(stat redis "$t" $P 5)
    for k in $kvs; do
      read -r km kmin kmax < <(stat $k "$t" $P)
      read -r kc _ _ < <(stat $k "$t" $P 5)
      read -r ratio _ _ < <(paired $k redis "$t" $P)
      ratio=$(printf '%.2f' "$ratio")
      cpu=$(awk -v a="$kc" -v b="$rc" 'BEGIN { printf "%.2f / %.2f = %.2f", a, b, (a > 0 ? b / a : 0) }')
      printf '%-12s %3s  %-10s %-30s %-30s %-6s %s\n' "$t" $P "$(label $k)" "$(printf '%.0f (%.0f-%.0f)' "$km" "$kmin" "$kmax")" \
        "$(printf '%.0f (%.0f-%.0f)' "$rm" "$rmin" "$rmax")" "$ratio" "$cpu"
    done
  done
done
printf '\n%-12s %3s  %-12s %-22s %-16s %s\n' test -P server "client CPU us/request" "client busy %" \
  "server sleeps per request (medians)"
for t in $(awk '{ print $2 }' "$tmp/results" | awk '!seen[$0]++'); do
  for P in 1 16; do
    for k in $kvs redis; do
      read -r c6 _ _ < <(stat $k "$t" $P 6)
      read -r c7 _ _ < <(stat $k "$t" $P 7)
      read -r c8 _ _ < <(stat $k "$t" $P 8)
      printf '%-12s %3s  %-12s %-22.2f %-16.1f %.3f\n' "$t" $P "$(label $k)" "$c6" "$c7" "$c8"
    done
  done
done

printf '\n%-12s %3s  %-24s %s\n' test -P "req/s ratio" "per repetition, back-to-back runs: median (min-max)"
for t in $(awk '{ print $2 }' "$tmp/results" | awk '!seen[$0]++'); do
  for P in 1 16; do
    for k in $kvs; do
      read -r m lo hi < <(paired $k redis "$t" $P)
      printf '%-12s %3s  %-24s %.2f (%.2f-%.2f)\n' "$t" $P "$(label $k) / redis-server" "$m" "$lo" "$hi"
    done
    if [ -n "$variant_b" ]; then
      read -r m lo hi < <(paired kvb kv "$t" $P)
      printf '%-12s %3s  %-24s %.2f (%.2f-%.2f)\n' "$t" $P "reel-kv-B / reel-kv" "$m" "$lo" "$hi"
    fi
  done
done

# Memory per key: RSS growth after loading nkeys keys "key:<i>" = "value",
# into fresh server processes (heap freed by the runs above would be
# reused and hide the growth).
stop_servers
start_servers
rss_kib() { awk '/^VmRSS:/ { print $2 }' /proc/$1/status; }
awk -v n="$nkeys" 'BEGIN { for (i = 0; i < n; i++) { k = "key:" i; printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$5\r\nvalue\r\n", length(k), k } }' > "$tmp/keys.resp"
for s in $kvs redis; do
  pid=$(pid_of $s) port=$(port_of $s)
  redis-cli -p "$port" FLUSHALL >/dev/null
  sleep 0.2
  before=$(rss_kib $pid)
  redis-cli -p "$port" --pipe < "$tmp/keys.resp" > /dev/null
  after=$(rss_kib $pid)
  keys=$(redis-cli -p "$port" DBSIZE)
  awk -v s="$(label $s)" -v b="$before" -v a="$after" -v k="$keys" \
    'BEGIN { printf "memory %-13s %d keys: RSS +%d KiB = %.1f bytes per key\n", s, k, a - b, (a - b) * 1024 / (k ? k : 1) }'
  redis-cli -p "$port" FLUSHALL >/dev/null
done
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg) (rerun on a quiet machine for numbers to quote)"
