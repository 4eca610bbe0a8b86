/* tests/helpers.h — shared test helpers: a loop per backend, captured log
 * lines, a captured exception-handler context. */
#ifndef REEL_TEST_HELPERS_H
#define REEL_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "reel.h"

/* Create a loop on the default (epoll) backend; fails the test on error. */
reel_loop *th_loop_new(void);
/* Close, free and check nothing failed. */
void th_loop_free(reel_loop *loop);

/* Create an empty temporary file /tmp/reel-TAG-PID-XXXXXX; its path goes
 * to buf (fails the test on error). Returns buf. */
char *th_tmpfile(char *buf, size_t cap, const char *tag);
/* A text file's contents (up to 64 KiB) in one of two static buffers that
 * take turns, so two results can be compared; fails the test if the file
 * cannot be opened. */
char *th_slurp(const char *path);

/* Captured log lines (reel_loop_set_log). */
typedef struct th_log {
    char lines[64][1024];
    int count;
} th_log;
void th_log_capture(reel_loop *loop, th_log *log);
/* Index of the first captured line containing `needle`, or -1. */
int th_log_find(const th_log *log, const char *needle);

/* Captured exception-handler calls. */
typedef struct th_exc {
    int count;
    char message[256];
    int error;
    const reel_future *future;
    int fd;
    char handle_func[128];
} th_exc;
void th_exc_capture(reel_loop *loop, th_exc *exc);

/* Run the loop for at most `seconds` of loop time (a safety net for tests
 * that wait for something): stops the loop via call_later. */
int th_run_for(reel_loop *loop, double seconds);

#endif
