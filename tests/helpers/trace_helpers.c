#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trace_helpers.h"

void th_trace_path(char *buf, size_t cap, const char *tag)
{
    static atomic_uint seq;
    const char *dir = getenv("TMPDIR");
    snprintf(buf, cap, "%s/reel-test-%d-%s-%u.trace", dir && *dir ? dir : "/tmp", (int)getpid(), tag,
             atomic_fetch_add(&seq, 1));
}

uint8_t *th_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

int th_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -errno;
    size_t w = fwrite(data, 1, len, f);
    int rc = fclose(f);
    return w == len && rc == 0 ? 0 : -EIO;
}

int th_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

int64_t th_trace_find(const char *path, uint32_t op, int fd, int n)
{
    reel_trace_reader *r;
    if (reel_trace_open(&r, path, NULL, 0) < 0)
        return -1;
    reel_trace_record rec;
    int64_t found = -1;
    while (reel_trace_next(r, &rec) == 1)
        if (rec.op == op && (fd == -2 || rec.fd == fd) && n-- == 0) {
            found = (int64_t)rec.index;
            break;
        }
    reel_trace_close(r);
    return found;
}

int64_t th_trace_next_call(const char *path, int64_t index)
{
    reel_trace_reader *r;
    if (reel_trace_open(&r, path, NULL, 0) < 0)
        return -1;
    reel_trace_record rec;
    int64_t found = -1;
    while (reel_trace_next(r, &rec) == 1)
        if ((int64_t)rec.index > index && rec.op != REEL_TRACE_SITE) {
            found = (int64_t)rec.index;
            break;
        }
    reel_trace_close(r);
    return found;
}

int64_t th_trace_find_callback(const char *path, const char *func)
{
    reel_trace_reader *r;
    if (reel_trace_open(&r, path, NULL, 0) < 0)
        return -1;
    reel_trace_record rec;
    int64_t found = -1;
    while (reel_trace_next(r, &rec) == 1)
        if (rec.op == REEL_TRACE_CALLBACK && rec.func && strcmp(rec.func, func) == 0) {
            found = (int64_t)rec.index;
            break;
        }
    reel_trace_close(r);
    return found;
}

int64_t th_trace_count(const char *path)
{
    reel_trace_reader *r;
    if (reel_trace_open(&r, path, NULL, 0) < 0)
        return -1;
    reel_trace_record rec;
    int64_t n = 0;
    while (reel_trace_next(r, &rec) == 1)
        n++;
    reel_trace_close(r);
    return n;
}

uint64_t th_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
