/* examples/kv/kv_demo.h — the reel-kv part of `make demo`. */
#ifndef KV_DEMO_H
#define KV_DEMO_H

/* Serve redis-benchmark from an in-process reel-kv on epoll (when
 * redis-benchmark is installed), run the 3-node cluster under faults in
 * the simulator with the checker, then find the planted bug, shrink its
 * fault schedule and replay the failing run from the shrunk schedule.
 * Prints as it goes; returns the number of failed checks. */
int kv_demo(void);

#endif
