/* tests/helpers/heap.h — how test_tcp_10k and bench/bench_conn measure the
 * memory of N idle connections, in one place so the test's printout and
 * the bench's rows mean the same thing.
 *
 *   heap: what glibc's malloc has handed out, mallinfo2()'s uordblks
 *         (chunks in use in the heap) + hblkhd (blocks malloc mmap'd: big
 *         ones, such as a per-descriptor table of 10,000 entries), read
 *         before the connections come and again once they sit idle; the
 *         difference / N is the heap per connection. Both terms count:
 *         glibc's mmap threshold moves once a big block is freed, so the
 *         same block is mapped in one run and in the heap in the next (a
 *         reel TCP figure of 238 B then 760 B at 1,000 connections with
 *         uordblks alone: the loop's 512 KiB read buffer). Memory the program maps itself (a task's stack,
 *         loop/epoll.c) is not in it. Under a sanitizer, malloc is not
 *         glibc's and the difference reads 0: callers print no figure then.
 *   descriptors: holding N connections needs N descriptors (plus a few);
 *         th_nofile_raise lifts the soft RLIMIT_NOFILE toward that. */
#ifndef REEL_TESTS_HELPERS_HEAP_H
#define REEL_TESTS_HELPERS_HEAP_H

#include <malloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>

/* Bytes malloc has handed out now (mallinfo2's uordblks + hblkhd). */
static inline size_t th_heap_in_use(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

/* Heap bytes per connection between two th_heap_in_use readings. */
static inline double th_heap_per(size_t before, size_t after, size_t conns)
{
    return conns ? ((double)after - (double)before) / (double)conns : 0.0;
}

/* Make the soft descriptor limit at least `need`. Returns false (and
 * changes nothing) if the hard limit is lower. *old_cur gets the soft
 * limit to give back with th_nofile_restore, *hard the hard limit (either
 * may be NULL). */
static inline bool th_nofile_raise(rlim_t need, rlim_t *old_cur, rlim_t *hard)
{
    struct rlimit rl = {0, 0};
    if (old_cur)
        *old_cur = 0;
    if (hard)
        *hard = 0;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return false;
    if (old_cur)
        *old_cur = rl.rlim_cur;
    if (hard)
        *hard = rl.rlim_max;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
        return false;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rl.rlim_cur = need;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return false;
    }
    return true;
}

/* Put the soft descriptor limit back to what th_nofile_raise found. */
static inline void th_nofile_restore(rlim_t old_cur)
{
    struct rlimit rl;
    if (old_cur && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = old_cur;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

#endif
