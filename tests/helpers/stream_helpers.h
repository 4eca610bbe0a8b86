/* tests/helpers/stream_helpers.h — helpers for the stream tests: checks
 * that can run inside a task (where a CMocka assertion must not jump off
 * the task's stack), and a way to run one scenario on the epoll backend
 * and on the simulated network. */
#ifndef REEL_TEST_STREAM_HELPERS_H
#define REEL_TEST_STREAM_HELPERS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "reel.h"

/* The first failed ST_CHECK since st_reset(), or "" if none. */
extern char st_failure[512];
void st_reset(void);
void st_fail(const char *file, int line, const char *what);
/* Fail the test (on the test's own stack) if a check failed. */
void st_assert_clean(void);

/* Inside a task: record the failure and return -ENOTRECOVERABLE. */
#define ST_CHECK(c)                                        \
    do {                                                   \
        if (!(c)) {                                        \
            st_fail(__FILE__, __LINE__, #c);               \
            return -ENOTRECOVERABLE;                       \
        }                                                  \
    } while (0)
/* The bytes equal the C string s. */
#define ST_BYTES_EQ(b, s) \
    ((b).len == strlen(s) && ((b).len == 0 || memcmp((b).data, (s), (b).len) == 0))

/* Run fn(arg) as a task on loop until it is done (60 s safety net of loop
 * time) and return its code; fails the test if a check failed. */
int st_run(reel_loop *loop, reel_task_fn fn, void *arg);

/* A scenario drives a loop with reel calls only, so it runs on any
 * backend. st_on_epoll / st_on_sim run one on a fresh epoll loop / on the
 * loop of a host of a fresh simulated world (seed from REEL_SEED or 1);
 * the sim run prints the line that reruns a failure. */
typedef void (*st_scenario_fn)(reel_loop *loop);
void st_on_epoll(st_scenario_fn sc);
void st_on_sim(st_scenario_fn sc, const char *name);

/* A flow-control fixture: the server handler (st_h_read_when_told) reads
 * everything only once `go` completes, so a client's writes back up and
 * drainers (st_t_drainer tasks) wait. */
typedef struct st_flow {
    reel_future *go;
    size_t total;
    size_t got;
    int drained;
    reel_stream *s;
} st_flow;
int st_h_read_when_told(reel_stream *s, void *arg); /* arg: st_flow* */
int st_t_drainer(void *arg, void **result);         /* arg: st_flow* */

#endif
