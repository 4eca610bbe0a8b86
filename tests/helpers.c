#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "helpers.h"

char *th_tmpfile(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "/tmp/reel-%s-%d-XXXXXX", tag, (int)getpid());
    int fd = mkstemp(buf);
    assert_true(fd >= 0);
    close(fd);
    return buf;
}

char *th_slurp(const char *path)
{
    static char text[2][65536];
    static int which;
    char *t = text[which ^= 1];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(t, 1, sizeof text[0] - 1, f);
    t[n] = '\0';
    fclose(f);
    return t;
}

reel_loop *th_loop_new(void)
{
    reel_loop *loop = NULL;
    assert_int_equal(reel_loop_new(&loop), 0);
    assert_non_null(loop);
    return loop;
}

void th_loop_free(reel_loop *loop)
{
    assert_int_equal(reel_loop_close(loop), 0);
    assert_true(reel_loop_is_closed(loop));
    reel_loop_free(loop);
}

static void log_cb(reel_loop *loop, const char *msg, void *arg)
{
    (void)loop;
    th_log *log = arg;
    if (log->count < 64)
        snprintf(log->lines[log->count++], sizeof log->lines[0], "%s", msg);
}

void th_log_capture(reel_loop *loop, th_log *log)
{
    memset(log, 0, sizeof *log);
    reel_loop_set_log(loop, log_cb, log);
}

int th_log_find(const th_log *log, const char *needle)
{
    for (int i = 0; i < log->count; i++)
        if (strstr(log->lines[i], needle))
            return i;
    return -1;
}

static void exc_cb(reel_loop *loop, const reel_context *ctx, void *arg)
{
    (void)loop;
    th_exc *e = arg;
    e->count++;
    snprintf(e->message, sizeof e->message, "%s", ctx->message ? ctx->message : "");
    e->error = ctx->error;
    e->future = ctx->future;
    e->fd = ctx->fd;
    snprintf(e->handle_func, sizeof e->handle_func, "%s", ctx->handle ? ctx->handle->func : "");
}

void th_exc_capture(reel_loop *loop, th_exc *exc)
{
    memset(exc, 0, sizeof *exc);
    exc->fd = -1;
    reel_loop_set_exception_handler(loop, exc_cb, exc);
}

static void stop_cb(void *arg) { reel_loop_stop(arg); }

int th_run_for(reel_loop *loop, double seconds)
{
    reel_handle h;
    int rc = reel_loop_call_later(loop, seconds, stop_cb, loop, &h);
    if (rc < 0)
        return rc;
    rc = reel_loop_run_forever(loop);
    reel_handle_cancel(h);
    return rc;
}
