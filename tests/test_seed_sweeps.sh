#!/usr/bin/env bash
# Sweep the backend-independent networking and streams scenarios over
# simulator seeds beyond the fixed ones their own runs use (REEL_SEED=n
# runs every scenario on seed n, plain and swarm). A failing seed is named
# with the line that reruns it. Wider sweeps: build/reel-seeds --count N.
set -u
build=${1:?build dir}
rc=0
for t in test_net_sim test_stream_net; do
  "$build/reel-seeds" --seeds 1000..1039 --jobs 2 --quiet --timeout 300 -- "$build/$t" || rc=1
done
exit $rc
