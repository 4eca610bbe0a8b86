/* tests/helpers/trace_helpers.h — helpers for the record/replay tests:
 * temporary trace paths, whole-file reads and writes, open-descriptor
 * counts, and finding records in a trace. */
#ifndef REEL_TEST_TRACE_HELPERS_H
#define REEL_TEST_TRACE_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "reel.h"

/* A fresh path for a trace in $TMPDIR (or /tmp); the file is not created. */
void th_trace_path(char *buf, size_t cap, const char *tag);
/* Read a whole file (malloc'd, *len set), NULL on failure. */
uint8_t *th_read_file(const char *path, size_t *len);
/* Write bytes to a file (created/truncated); 0 or -errno. */
int th_write_file(const char *path, const void *data, size_t len);
/* Open descriptors of this process (entries of /proc/self/fd). */
int th_count_fds(void);
/* Index of the n-th (from 0) record of `op` whose fd is `fd` (-2: any fd)
 * in the trace at path, or -1. */
int64_t th_trace_find(const char *path, uint32_t op, int fd, int n);
/* Index of the first record after `index` that is not a SITE record. */
int64_t th_trace_next_call(const char *path, int64_t index);
/* Index of the first CALLBACK record for function `func`, or -1. */
int64_t th_trace_find_callback(const char *path, const char *func);
/* Number of records in the trace (until its end or first error). */
int64_t th_trace_count(const char *path);
/* Wall-clock nanoseconds (CLOCK_MONOTONIC), for the test's own timing. */
uint64_t th_wall_ns(void);

#endif
