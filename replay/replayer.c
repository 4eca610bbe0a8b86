/* replay/replayer.c — a backend that answers every call from a trace.
 *
 * Each call is turned into the record the recorder would have written for
 * it (its inputs only) and compared with the next record of the trace; if
 * they match, the recorded answer is given back (results, bytes, addresses,
 * events). The first mismatch stops the replay: a report is built (with
 * records around the spot, read again from the file) and logged, and every
 * later call fails with the stop code. No descriptor is created, no clock
 * is read for the program, nothing sleeps. The one wait is for the
 * program's own threads: a recorded wake-up is delivered only once as many
 * threadsafe callbacks have been posted as had been when it was recorded
 * (a bounded wait on a condition variable, REEL_REPLAY_WAIT_MS). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "trace.h"

#define RT_POSTED_WAIT_NS 30000000000ull  /* default bound on waiting for posts */
enum { rp_reqs_max = 65536 };             /* requests in flight */

typedef struct replayer {
    reel_backend base;
    reel_backend_ops ops;
    reel_trace_reader *rd;
    char *path;
    reel_trace_record cur;      /* the next record, once peeked */
    bool have_cur;
    uint64_t consumed;
    int stopped;                /* 0, REEL_EDIVERGED or REEL_ECORRUPT */
    reel_replay_divergence div;
    uint64_t last_now;
    pthread_mutex_t mu;         /* guards posted */
    pthread_cond_t cv;
    uint64_t posted;
    uint64_t wait_ns;
    reel_backend_req **reqs;    /* submitted, not yet completed */
    size_t nreqs, reqs_cap;
    uint64_t callbacks, cb_hash;
    reel_loop *loop;            /* where reports are logged, if known */
    uint8_t *scratch;           /* rt_data_bytes_max */
    uint64_t *written;          /* by fd: bytes written so far (reports) */
    size_t nwritten;
} replayer;

#define RP(b) ((replayer *)(b))

/* ------------------------------------------------------------- reports */

/* A record as a call: the recorded one with its answer, the actual one
 * as made; without the "#index " prefix either way. */
static void fmt_call(const reel_trace_record *rec, char *buf, size_t cap, bool answer)
{
    char tmp[sizeof ((reel_replay_divergence *)0)->expected];
    rt_format_call(rec, tmp, sizeof tmp, answer);
    const char *s = tmp;
    if (answer && *s == '#') {
        const char *sp = strchr(s, ' ');
        s = sp ? sp + 1 : s;
    }
    snprintf(buf, cap, "%s", s);
}

static void append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

/* Records around `target`, read again from the file: a few before, the
 * target marked with '>', two after. */
static void add_context(replayer *p, uint64_t target)
{
    enum { before = 4, after = 2, line_bytes = 240 };
    char ring[before][line_bytes];
    uint64_t nring = 0;
    reel_trace_reader *rd;
    char *rep = p->div.report;
    size_t cap = sizeof p->div.report;
    if (reel_trace_open(&rd, p->path, NULL, 0) < 0)
        return;
    append(rep, cap, "context:\n");
    reel_trace_record rec;
    int rc;
    bool reached = false;
    while ((rc = reel_trace_next(rd, &rec)) == 1) {
        char line[line_bytes];
        reel_trace_format(&rec, line, sizeof line);
        if (rec.index < target) {
            snprintf(ring[nring % before], line_bytes, "%s", line);
            nring++;
            continue;
        }
        if (!reached) {
            for (uint64_t i = nring > before ? nring - before : 0; i < nring; i++)
                append(rep, cap, "    %s\n", ring[i % before]);
            reached = true;
        }
        append(rep, cap, "%s %s\n", rec.index == target ? "  >" : "   ", line);
        if (rec.index >= target + after)
            break;
    }
    if (!reached) {
        for (uint64_t i = nring > before ? nring - before : 0; i < nring; i++)
            append(rep, cap, "    %s\n", ring[i % before]);
        append(rep, cap, "  > (no record %llu: %s)\n", (unsigned long long)target,
               rc < 0 ? reel_trace_error(rd) : "the trace ends before it");
    }
    reel_trace_close(rd);
}

static void log_report(replayer *p)
{
    reel_loop *loop = p->loop;
    if (!loop) {
        reel_loop *running = reel_get_running_loop();
        if (running && reel_loop_backend(running) == &p->base)
            loop = running;
    }
    const char *s = p->div.report;
    while (*s) {
        const char *nl = strchr(s, '\n');
        int n = (int)(nl ? nl - s : (ptrdiff_t)strlen(s));
        if (loop && !reel_loop_is_closed(loop)) {
            reel_loop_log(loop, "%.*s", n, s);
        } else {
            char line[1024];
            int k = snprintf(line, sizeof line, "%.*s\n", n, s);
            ssize_t w = write(STDERR_FILENO, line, k < (int)sizeof line ? (size_t)k : sizeof line - 1);
            (void)w;
        }
        s += n + (nl ? 1 : 0);
    }
}

/* Stop the replay at `index` with a report. rec: the recorded record (or
 * NULL: none), actual: the call made (or NULL). */
static void stop(replayer *p, int code, uint64_t index, uint64_t offset, const reel_trace_record *rec,
                 const reel_trace_record *actual, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void stop(replayer *p, int code, uint64_t index, uint64_t offset, const reel_trace_record *rec,
                 const reel_trace_record *actual, const char *fmt, ...)
{
    if (p->stopped)
        return;
    p->stopped = code;
    reel_replay_divergence *d = &p->div;
    d->code = code;
    d->record_index = index;
    d->offset = offset;
    d->expected[0] = d->actual[0] = d->report[0] = '\0';
    if (rec)
        fmt_call(rec, d->expected, sizeof d->expected, true);
    if (actual) {
        reel_trace_record a = *actual;
        a.index = index;
        fmt_call(&a, d->actual, sizeof d->actual, false);
    }
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    append(d->report, sizeof d->report, "replay %s at record %llu (byte offset %llu) of %s: %s\n",
           code == REEL_ECORRUPT ? "stopped" : "diverged", (unsigned long long)index,
           (unsigned long long)offset, p->path, why);
    append(d->report, sizeof d->report, "  expected: %s\n", rec ? d->expected : "(nothing: see above)");
    append(d->report, sizeof d->report, "  actual:   %s\n", actual ? d->actual : "(none)");
    add_context(p, index);
    log_report(p);
}

/* The reader failed: the trace cannot answer from here on. */
static void stop_reader(replayer *p, const reel_trace_record *actual)
{
    uint64_t idx, off;
    rt_reader_error_pos(p->rd, &idx, &off);
    stop(p, REEL_ECORRUPT, idx, off, NULL, actual, "%s", reel_trace_error(p->rd));
}

/* ------------------------------------------------------------ matching */

/* The next record the program must match, skipping SITE annotations (the
 * reader keeps their names); NULL once stopped or at the trace's end. */
static const reel_trace_record *peek(replayer *p, const reel_trace_record *actual)
{
    if (p->stopped)
        return NULL;
    while (!p->have_cur) {
        int rc = reel_trace_next(p->rd, &p->cur);
        if (rc < 0) {
            stop_reader(p, actual);
            return NULL;
        }
        if (rc == 0)
            return NULL; /* only after the end record was matched */
        if (p->cur.op == REEL_TRACE_SITE) {
            p->consumed++;
            continue;
        }
        p->have_cur = true;
    }
    return &p->cur;
}

static bool same_bytes(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool same_call(const reel_trace_record *rec, const reel_trace_record *a)
{
    if (rec->op != a->op)
        return false;
    const rt_op_desc *d = rt_op(rec->op);
    if (!d)
        return false;
    if (rec->op == REEL_TRACE_CALLBACK)
        return strcmp(rec->func ? rec->func : "?", a->func ? a->func : "?") == 0;
    if ((d->inputs & RT_F_FD) && rec->fd != a->fd)
        return false;
    for (int i = 0; i < 6; i++)
        if ((d->inputs & rt_arg_bit(i)) && rec->arg[i] != a->arg[i])
            return false;
    if ((d->inputs & RT_F_DATA) && !same_bytes(rec->data, rec->data_len, a->data, a->data_len))
        return false;
    if ((d->inputs & RT_F_ADDR) && !same_bytes(rec->addr, rec->addr_len, a->addr, a->addr_len))
        return false;
    return true;
}

/* What most often makes a program diverge: it learnt something outside
 * the loop. The classic one is a system call on a descriptor the loop
 * owns, which in a replay is the recorded number but not a real socket. */
static const char likely_cause[] =
    ".\n  likely cause: the program used a value it got outside the loop. A descriptor the "
    "loop owns is, in a replay, the recorded number but not a real socket, so a system call "
    "made on it directly (getsockname(2), getpeername(2), ioctl(2), ...) answers differently; "
    "ask the loop instead (reel_server_get_sockname, reel_transport_get_sockname/_peername, "
    "reel_stream_get_sockname). Clocks, randomness and files read directly differ too";

/* Writes: bytes the program has written on each fd, so that a write that
 * differs can be placed in the stream. */
enum { rp_written_fds_max = 1 << 16 };

static void note_written(replayer *p, int fd, int64_t n)
{
    if (fd < 0 || fd >= rp_written_fds_max || n <= 0)
        return;
    if ((size_t)fd >= p->nwritten) {
        size_t cap = p->nwritten ? p->nwritten : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        uint64_t *w = realloc(p->written, cap * sizeof *w);
        if (!w)
            return; /* reports lose the offset, nothing else */
        memset(w + p->nwritten, 0, (cap - p->nwritten) * sizeof *w);
        p->written = w;
        p->nwritten = cap;
    }
    p->written[fd] += (uint64_t)n;
}

static uint64_t written_on(const replayer *p, int fd)
{
    return fd >= 0 && (size_t)fd < p->nwritten ? p->written[fd] : 0;
}

/* For write, writev and sendto: the argument holding the length and the
 * one holding the CRC32C of the bytes; false for other ops. */
static bool write_args(uint32_t op, int *len_arg, int *crc_arg)
{
    switch (op) {
    case REEL_TRACE_WRITE:
        *len_arg = 0, *crc_arg = 1;
        return true;
    case REEL_TRACE_WRITEV:
        *len_arg = 1, *crc_arg = 2;
        return true;
    case REEL_TRACE_SENDTO:
        *len_arg = 0, *crc_arg = 2;
        return true;
    default:
        return false;
    }
}

/* The program wrote other bytes (or another length) on the same fd than
 * the recording: say which write, where in the stream, and both CRCs. */
static bool stop_on_write(replayer *p, const reel_trace_record *rec, const reel_trace_record *actual)
{
    int la, ca;
    if (rec->op != actual->op || rec->fd != actual->fd || !write_args(rec->op, &la, &ca))
        return false;
    const rt_op_desc *d = rt_op(rec->op);
    /* The recorded crc covers the bytes the recording wrote; the program's
     * covers as many of its own (replayer.c: accepted_by). */
    int64_t rec_n = rec->result > 0 ? rec->result : 0, own_n = actual->arg[la];
    if (own_n > rec_n)
        own_n = rec_n;
    stop(p, REEL_EDIVERGED, rec->index, rec->offset, rec, actual,
         "the program wrote other bytes than the recording: %s on fd %d at byte %llu of what "
         "it wrote there, asked %lld bytes (recorded %lld): the recorded %lld bytes have crc32c "
         "%08llx, the program's %lld bytes %08llx",
         d ? d->name : "write", rec->fd, (unsigned long long)written_on(p, rec->fd),
         (long long)actual->arg[la], (long long)rec->arg[la], (long long)rec_n,
         (unsigned long long)(uint32_t)rec->arg[ca], (long long)own_n,
         (unsigned long long)(uint32_t)actual->arg[ca]);
    return true;
}

/* Consume the next record if the call matches it; otherwise stop. The
 * returned record (and its data) stays valid until the next peek. */
static const reel_trace_record *match(replayer *p, const reel_trace_record *actual)
{
    const reel_trace_record *rec = peek(p, actual);
    if (!rec) {
        int sig;
        if (!p->stopped && reel_trace_unfinished(p->rd, &sig))
            stop(p, REEL_EDIVERGED, reel_trace_records_read(p->rd), reel_trace_bytes_read(p->rd), NULL,
                 actual, "the recording ends here: the recorded process did not finish (%s%s)",
                 sig > 0 ? "killed by " : "killed, crashed or still running",
                 sig > 0 ? strsignal(sig) : "");
        else if (!p->stopped)
            stop(p, REEL_EDIVERGED, reel_trace_records_read(p->rd), reel_trace_bytes_read(p->rd), NULL,
                 actual, "the program made a call after the end of the recording");
        return NULL;
    }
    if (!same_call(rec, actual)) {
        if (stop_on_write(p, rec, actual))
            return NULL;
        if (rec->op == REEL_TRACE_END || rec->op == REEL_TRACE_EXIT)
            stop(p, REEL_EDIVERGED, rec->index, rec->offset, rec, actual,
                 "the recording ends here (its loop was %s), the program goes on",
                 rec->op == REEL_TRACE_END ? "closed" : "still open at exit");
        else
            stop(p, REEL_EDIVERGED, rec->index, rec->offset, rec, actual, "%s%s",
                 rec->op != actual->op ? "the program made another call than the recording"
                                       : "the call's arguments differ from the recording",
                 likely_cause);
        return NULL;
    }
    p->have_cur = false;
    p->consumed++;
    return rec;
}

/* A matched record whose answer cannot be given back (it does not fit the
 * call): only a damaged or forged trace does that. */
static int64_t inconsistent(replayer *p, const reel_trace_record *rec, const reel_trace_record *actual,
                            const char *what)
{
    stop(p, REEL_ECORRUPT, rec->index, rec->offset, rec, actual, "the recorded answer does not fit the call (%s)",
         what);
    return p->stopped;
}

static int64_t simple(replayer *p, const reel_trace_record *actual)
{
    const reel_trace_record *rec = match(p, actual);
    if (!rec)
        return p->stopped;
    if (rec->result < INT32_MIN || rec->result > INT32_MAX)
        return inconsistent(p, rec, actual, "result out of range");
    return rec->result;
}

/* --------------------------------------------------- time, randomness */

static uint64_t p_now_ns(reel_backend *b)
{
    replayer *p = RP(b);
    reel_trace_record a = {.op = REEL_TRACE_NOW, .fd = -1};
    const reel_trace_record *rec = match(p, &a);
    if (rec)
        p->last_now = (uint64_t)rec->result;
    return p->last_now;
}

static int p_random(reel_backend *b, void *buf, size_t len)
{
    replayer *p = RP(b);
    uint8_t *out = buf;
    do {
        size_t n = len < rt_data_bytes_max ? len : rt_data_bytes_max;
        reel_trace_record a = {.op = REEL_TRACE_RANDOM, .fd = -1, .arg = {(int64_t)n}};
        const reel_trace_record *rec = match(p, &a);
        if (!rec)
            return p->stopped;
        if (rec->result < 0)
            return (int)rec->result;
        if (rec->data_len != n)
            return (int)inconsistent(p, rec, &a, "random bytes");
        memcpy(out, rec->data, n);
        out += n;
        len -= n;
    } while (len);
    return 0;
}

/* ---------------------------------------------------------- readiness */

static int p_watch(reel_backend *b, int fd, uint32_t old_events, uint32_t new_events)
{
    reel_trace_record a = {.op = REEL_TRACE_WATCH, .fd = fd, .arg = {old_events, new_events}};
    return (int)simple(RP(b), &a);
}

/* Wait until the program's threads have posted `need` callbacks in all. */
static bool wait_posted(replayer *p, const reel_trace_record *ev, uint64_t need)
{
    pthread_mutex_lock(&p->mu);
    if (p->posted < need) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        uint64_t ns = (uint64_t)dl.tv_nsec + p->wait_ns % 1000000000ull;
        dl.tv_sec += (time_t)(p->wait_ns / 1000000000ull + ns / 1000000000ull);
        dl.tv_nsec = (long)(ns % 1000000000ull);
        while (p->posted < need)
            if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT)
                break;
    }
    uint64_t have = p->posted;
    pthread_mutex_unlock(&p->mu);
    if (have >= need)
        return true;
    stop(p, REEL_EDIVERGED, ev->index, ev->offset, ev, NULL,
         "the recording had %llu threadsafe callbacks posted by this wake-up; the program's threads "
         "posted %llu within %llu ms", (unsigned long long)need, (unsigned long long)have,
         (unsigned long long)(p->wait_ns / 1000000));
    return false;
}

static reel_backend_req *take_req(replayer *p, uint64_t id)
{
    for (size_t i = 0; i < p->nreqs; i++)
        if (p->reqs[i]->id == id) {
            reel_backend_req *req = p->reqs[i];
            p->reqs[i] = p->reqs[--p->nreqs];
            return req;
        }
    return NULL;
}

/* Give a completed request its recorded answer. */
static bool answer_req(replayer *p, const reel_trace_record *e, reel_backend_req *req)
{
    req->result = (int)e->result;
    if (e->result < 0)
        return true;
    switch (req->kind) {
    case REEL_REQ_GETADDRINFO: {
        int rc = e->data_len ? rt_decode_addrinfo(e->data, e->data_len, &req->addrinfo) : 0;
        if (rc < 0) {
            inconsistent(p, e, NULL, "getaddrinfo answer");
            return false;
        }
        return true;
    }
    case REEL_REQ_GETNAMEINFO: {
        const char *h = (const char *)e->data;
        const char *z = e->data_len ? memchr(h, 0, e->data_len) : NULL;
        if (!z || !memchr(z + 1, 0, e->data_len - (size_t)(z + 1 - h))) {
            inconsistent(p, e, NULL, "getnameinfo answer");
            return false;
        }
        snprintf(req->hostname, sizeof req->hostname, "%s", h);
        snprintf(req->servname, sizeof req->servname, "%s", z + 1);
        return true;
    }
    case REEL_REQ_JOB:
        /* The job's effects are the program's own: run it here, on the
         * loop's thread, at the point its completion was recorded. */
        req->ret = req->fn ? req->fn(req->arg) : NULL;
        return true;
    default:
        return true;
    }
}

static int p_poll(reel_backend *b, reel_event *events, int max_events, int64_t timeout_ns)
{
    replayer *p = RP(b);
    reel_trace_record a = {.op = REEL_TRACE_POLL, .fd = -1, .arg = {max_events, timeout_ns}};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    int64_t n = rec->result;
    if (n < 0)
        return n < INT32_MIN ? (int)inconsistent(p, rec, &a, "result out of range") : (int)n;
    if (n > max_events)
        return (int)inconsistent(p, rec, &a, "more events than asked for");
    for (int i = 0; i < (int)n; i++) {
        const reel_trace_record *e = peek(p, &a);
        if (!e) {
            if (!p->stopped)
                stop(p, REEL_ECORRUPT, reel_trace_records_read(p->rd), reel_trace_bytes_read(p->rd), NULL,
                     &a, "the trace ends inside a poll result");
            return p->stopped;
        }
        if (e->op != REEL_TRACE_EVENT)
            return (int)inconsistent(p, e, &a, "a poll result without its events");
        p->have_cur = false;
        p->consumed++;
        reel_event ev = {.kind = (uint32_t)e->arg[0], .events = (uint32_t)e->arg[1], .id = e->arg[2],
                         .value = e->arg[3]};
        if (ev.kind == REEL_EV_WAKE) {
            if (!wait_posted(p, e, e->arg[4] > 0 ? (uint64_t)e->arg[4] : 0))
                return p->stopped;
        } else if (ev.kind == REEL_EV_DONE) {
            reel_backend_req *req = take_req(p, (uint64_t)e->arg[4]);
            if (!req) {
                stop(p, REEL_EDIVERGED, e->index, e->offset, e, &a,
                     "the recording completes request %lld, which the program did not submit",
                     (long long)e->arg[4]);
                return p->stopped;
            }
            if (!answer_req(p, e, req))
                return p->stopped;
            ev.ptr = req;
        }
        events[i] = ev;
    }
    return (int)n;
}

static int p_wake(reel_backend *b)
{
    (void)b; /* wake-ups come from the trace */
    return 0;
}

static void p_posted(reel_backend *b, size_t queued)
{
    (void)queued;
    replayer *p = RP(b);
    pthread_mutex_lock(&p->mu);
    p->posted++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static size_t p_admit_posted(reel_backend *b, size_t queued)
{
    replayer *p = RP(b);
    reel_trace_record a = {.op = REEL_TRACE_ADMIT, .fd = -1, .arg = {(int64_t)queued}};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return 0;
    if (rec->result < 0 || (uint64_t)rec->result > queued) {
        stop(p, REEL_EDIVERGED, rec->index, rec->offset, rec, &a,
             "the recording admitted %lld threadsafe callbacks here, %zu are queued",
             (long long)rec->result, queued);
        return 0;
    }
    return (size_t)rec->result;
}

static void p_callback(reel_backend *b, const char *func, const char *file, int line)
{
    replayer *p = RP(b);
    /* After a divergence the hash stays as it was at the diverging call
     * (included): what follows is the program reacting to the stop. */
    if (!p->stopped) {
        p->callbacks++;
        p->cb_hash = reel_callback_hash_step(p->cb_hash, func);
    }
    reel_trace_record a = {.op = REEL_TRACE_CALLBACK, .fd = -1, .func = func, .file = file, .line = line};
    match(p, &a);
}

/* The hash of the callbacks and of the bytes written (reel_loop_callback_hash). */
static uint64_t p_callback_hash(reel_backend *b, uint64_t *count)
{
    *count = RP(b)->callbacks;
    return RP(b)->cb_hash;
}

/* --------------------------------------------------------- descriptors */

static int p_socket(reel_backend *b, int domain, int type, int protocol)
{
    reel_trace_record a = {.op = REEL_TRACE_SOCKET, .fd = -1, .arg = {domain, type, protocol}};
    return (int)simple(RP(b), &a);
}

static int p_socketpair(reel_backend *b, int domain, int type, int protocol, int fds[2])
{
    replayer *p = RP(b);
    reel_trace_record a = {.op = REEL_TRACE_SOCKETPAIR, .fd = -1, .arg = {domain, type, protocol}};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (rec->result == 0) {
        fds[0] = rec->fd;
        fds[1] = (int)rec->arg[3];
    }
    return (int)rec->result;
}

static int p_pipe(reel_backend *b, int fds[2])
{
    replayer *p = RP(b);
    reel_trace_record a = {.op = REEL_TRACE_PIPE, .fd = -1};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (rec->result == 0) {
        fds[0] = rec->fd;
        fds[1] = (int)rec->arg[0];
    }
    return (int)rec->result;
}

static int p_close(reel_backend *b, int fd)
{
    replayer *p = RP(b);
    if (fd >= 0 && (size_t)fd < p->nwritten)
        p->written[fd] = 0; /* the number may be reused: a new stream */
    reel_trace_record a = {.op = REEL_TRACE_CLOSE, .fd = fd};
    return (int)simple(p, &a);
}

static int p_adopt(reel_backend *b, int fd)
{
    reel_trace_record a = {.op = REEL_TRACE_ADOPT, .fd = fd};
    return (int)simple(RP(b), &a);
}

static uint32_t addr_len_of(const struct sockaddr *addr, socklen_t len)
{
    return addr ? (uint32_t)(len < rt_addr_bytes_max ? len : rt_addr_bytes_max) : 0;
}

static int p_bind(reel_backend *b, int fd, const struct sockaddr *addr, socklen_t len)
{
    reel_trace_record a = {.op = REEL_TRACE_BIND, .fd = fd, .addr = (const uint8_t *)addr,
                           .addr_len = addr_len_of(addr, len)};
    return (int)simple(RP(b), &a);
}

static int p_listen(reel_backend *b, int fd, int backlog)
{
    reel_trace_record a = {.op = REEL_TRACE_LISTEN, .fd = fd, .arg = {backlog}};
    return (int)simple(RP(b), &a);
}

/* Give back a recorded address into (addr, *len). */
static bool put_addr(const reel_trace_record *rec, struct sockaddr *addr, socklen_t *len, socklen_t len_in,
                     int64_t len_out)
{
    if (!addr || !len)
        return true;
    if (rec->addr_len > len_in || len_out < 0 || len_out > INT32_MAX)
        return false;
    rt_copy(addr, rec->addr, rec->addr_len);
    *len = (socklen_t)len_out;
    return true;
}

static int p_accept(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    replayer *p = RP(b);
    socklen_t len_in = addr && len ? *len : 0;
    reel_trace_record a = {.op = REEL_TRACE_ACCEPT, .fd = fd, .arg = {addr != NULL, len_in}};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (rec->result >= 0 && !put_addr(rec, addr, len, len_in, rec->arg[2]))
        return (int)inconsistent(p, rec, &a, "peer address");
    return (int)rec->result;
}

static int p_connect(reel_backend *b, int fd, const struct sockaddr *addr, socklen_t len)
{
    reel_trace_record a = {.op = REEL_TRACE_CONNECT, .fd = fd, .addr = (const uint8_t *)addr,
                           .addr_len = addr_len_of(addr, len)};
    return (int)simple(RP(b), &a);
}

static int p_shutdown(reel_backend *b, int fd, int how)
{
    reel_trace_record a = {.op = REEL_TRACE_SHUTDOWN, .fd = fd, .arg = {how}};
    return (int)simple(RP(b), &a);
}

static ssize_t p_read(reel_backend *b, int fd, void *buf, size_t len)
{
    replayer *p = RP(b);
    reel_trace_record a = {.op = REEL_TRACE_READ, .fd = fd, .arg = {(int64_t)len}};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (rec->result > 0) {
        if ((uint64_t)rec->result > len || rec->data_len != (uint64_t)rec->result)
            return inconsistent(p, rec, &a, "bytes read");
        memcpy(buf, rec->data, rec->data_len);
    }
    return rec->result;
}

/* How many of the program's bytes the recording says were accepted: the
 * crc covers those. */
static size_t accepted_by(replayer *p, uint32_t op, size_t len)
{
    const reel_trace_record *next = peek(p, NULL);
    if (!next || next->op != op || next->result <= 0)
        return 0;
    return (uint64_t)next->result < len ? (size_t)next->result : len;
}

static ssize_t p_write(reel_backend *b, int fd, const void *buf, size_t len)
{
    replayer *p = RP(b);
    size_t n = accepted_by(p, REEL_TRACE_WRITE, len);
    uint32_t crc = rt_crc32c(0, buf, n);
    if (!p->stopped)
        p->cb_hash = reel_callback_hash_write(p->cb_hash, crc, n);
    reel_trace_record a = {.op = REEL_TRACE_WRITE, .fd = fd, .arg = {(int64_t)len, crc},
                           .data = buf, .data_len = (uint32_t)(len < rt_write_preview_bytes ? len : rt_write_preview_bytes)};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (rec->result > (int64_t)len)
        return inconsistent(p, rec, &a, "more written than asked");
    note_written(p, fd, rec->result);
    return rec->result;
}

static ssize_t p_readv(reel_backend *b, int fd, const struct iovec *iov, int iovcnt)
{
    replayer *p = RP(b);
    size_t total = rt_iov_total(iov, iovcnt);
    reel_trace_record a = {.op = REEL_TRACE_READV, .fd = fd, .arg = {iovcnt, (int64_t)total}};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (rec->result > 0) {
        if ((uint64_t)rec->result > total || rec->data_len != (uint64_t)rec->result)
            return inconsistent(p, rec, &a, "bytes read");
        size_t at = 0;
        for (int i = 0; i < iovcnt && at < rec->data_len; i++) {
            size_t k = iov[i].iov_len < rec->data_len - at ? iov[i].iov_len : rec->data_len - at;
            memcpy(iov[i].iov_base, rec->data + at, k);
            at += k;
        }
    }
    return rec->result;
}

static ssize_t p_writev(reel_backend *b, int fd, const struct iovec *iov, int iovcnt)
{
    replayer *p = RP(b);
    size_t total = rt_iov_total(iov, iovcnt);
    size_t n = accepted_by(p, REEL_TRACE_WRITEV, total);
    uint8_t preview[rt_write_preview_bytes];
    uint32_t plen;
    uint32_t crc = rt_iov_crc(iov, iovcnt, n, preview, &plen);
    if (!p->stopped)
        p->cb_hash = reel_callback_hash_write(p->cb_hash, crc, n);
    reel_trace_record a = {.op = REEL_TRACE_WRITEV, .fd = fd, .arg = {iovcnt, (int64_t)total, crc},
                           .data = preview, .data_len = plen};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (rec->result > (int64_t)total)
        return inconsistent(p, rec, &a, "more written than asked");
    note_written(p, fd, rec->result);
    return rec->result;
}

static ssize_t p_recvfrom(reel_backend *b, int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                          socklen_t *addrlen)
{
    replayer *p = RP(b);
    socklen_t len_in = addr && addrlen ? *addrlen : 0;
    reel_trace_record a = {.op = REEL_TRACE_RECVFROM, .fd = fd,
                           .arg = {(int64_t)len, flags, addr != NULL, len_in}};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (rec->result >= 0) {
        if ((uint64_t)rec->result > len || rec->data_len != (uint64_t)rec->result ||
            !put_addr(rec, addr, addrlen, len_in, rec->arg[4]))
            return inconsistent(p, rec, &a, "bytes or address received");
        rt_copy(buf, rec->data, rec->data_len);
    }
    return rec->result;
}

static ssize_t p_sendto(reel_backend *b, int fd, const void *buf, size_t len, int flags,
                        const struct sockaddr *addr, socklen_t addrlen)
{
    replayer *p = RP(b);
    size_t n = accepted_by(p, REEL_TRACE_SENDTO, len);
    uint32_t crc = rt_crc32c(0, buf, n);
    if (!p->stopped)
        p->cb_hash = reel_callback_hash_write(p->cb_hash, crc, n);
    reel_trace_record a = {.op = REEL_TRACE_SENDTO, .fd = fd, .arg = {(int64_t)len, flags, crc},
                           .data = buf, .data_len = (uint32_t)(len < rt_write_preview_bytes ? len : rt_write_preview_bytes),
                           .addr = (const uint8_t *)addr, .addr_len = addr_len_of(addr, addrlen)};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (rec->result > (int64_t)len)
        return inconsistent(p, rec, &a, "more sent than asked");
    note_written(p, fd, rec->result);
    return rec->result;
}

static ssize_t p_sendfile(reel_backend *b, int out_fd, int in_fd, int64_t *offset, size_t count)
{
    replayer *p = RP(b);
    reel_trace_record a = {.op = REEL_TRACE_SENDFILE, .fd = out_fd,
                           .arg = {in_fd, offset ? *offset : -1, (int64_t)count}};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (offset && rec->result >= 0)
        *offset = rec->arg[3];
    return rec->result;
}

static int name_call(replayer *p, uint32_t op, int fd, struct sockaddr *addr, socklen_t *len)
{
    socklen_t len_in = len ? *len : 0;
    reel_trace_record a = {.op = op, .fd = fd, .arg = {len_in}};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (rec->result == 0 && !put_addr(rec, addr, len, len_in, rec->arg[1]))
        return (int)inconsistent(p, rec, &a, "address");
    return (int)rec->result;
}

static int p_getsockname(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    return name_call(RP(b), REEL_TRACE_GETSOCKNAME, fd, addr, len);
}

static int p_getpeername(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    return name_call(RP(b), REEL_TRACE_GETPEERNAME, fd, addr, len);
}

static int p_setsockopt(reel_backend *b, int fd, int level, int name, const void *val, socklen_t len)
{
    reel_trace_record a = {.op = REEL_TRACE_SETSOCKOPT, .fd = fd, .arg = {level, name}, .data = val,
                           .data_len = val ? (uint32_t)(len < rt_data_bytes_max ? len : rt_data_bytes_max) : 0};
    return (int)simple(RP(b), &a);
}

static int p_getsockopt(reel_backend *b, int fd, int level, int name, void *val, socklen_t *len)
{
    replayer *p = RP(b);
    socklen_t len_in = len ? *len : 0;
    reel_trace_record a = {.op = REEL_TRACE_GETSOCKOPT, .fd = fd, .arg = {level, name, len_in}};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (rec->result == 0 && val && len) {
        if (rec->data_len > len_in)
            return (int)inconsistent(p, rec, &a, "option value");
        rt_copy(val, rec->data, rec->data_len);
        *len = rec->data_len;
    }
    return (int)rec->result;
}

static int p_unlink(reel_backend *b, const char *path)
{
    reel_trace_record a = {.op = REEL_TRACE_UNLINK, .fd = -1, .data = (const uint8_t *)path,
                           .data_len = path ? (uint32_t)strnlen(path, rt_data_bytes_max - 1) + 1 : 0};
    return (int)simple(RP(b), &a);
}

static ssize_t p_pread(reel_backend *b, int fd, void *buf, size_t len, int64_t offset)
{
    replayer *p = RP(b);
    reel_trace_record a = {.op = REEL_TRACE_PREAD, .fd = fd, .arg = {(int64_t)len, offset}};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (rec->result > 0) {
        if ((uint64_t)rec->result > len || rec->data_len != (uint64_t)rec->result)
            return inconsistent(p, rec, &a, "bytes read");
        memcpy(buf, rec->data, rec->data_len);
    }
    return rec->result;
}

static int p_stat(reel_backend *b, const char *path, uint32_t *mode, uint64_t *ino)
{
    replayer *p = RP(b);
    reel_trace_record a = {.op = REEL_TRACE_STAT, .fd = -1, .data = (const uint8_t *)path,
                           .data_len = path ? (uint32_t)strnlen(path, rt_data_bytes_max - 1) + 1 : 0};
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (mode)
        *mode = (uint32_t)rec->arg[0];
    if (ino)
        *ino = (uint64_t)rec->arg[1];
    return (int)rec->result;
}

/* ------------------------------------------- requests, processes, signals */

static int p_submit(reel_backend *b, reel_backend_req *req)
{
    replayer *p = RP(b);
    reel_trace_record a = {.fd = -1};
    rt_submit_fields(req, &a, p->scratch, rt_data_bytes_max);
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (rec->result == 0) {
        if (p->nreqs == p->reqs_cap) {
            size_t cap = p->reqs_cap ? p->reqs_cap * 2 : 16;
            reel_backend_req **r = cap <= rp_reqs_max ? realloc(p->reqs, cap * sizeof *r) : NULL;
            if (!r)
                return -ENOMEM;
            p->reqs = r;
            p->reqs_cap = cap;
        }
        p->reqs[p->nreqs++] = req;
    }
    return (int)rec->result;
}

static void p_freeaddrinfo(reel_backend *b, struct addrinfo *ai)
{
    (void)b;
    rt_free_addrinfo(ai); /* lists the replayer built */
}

static int p_spawn(reel_backend *b, const reel_spawn_opts *opts, int *pid)
{
    replayer *p = RP(b);
    reel_trace_record a = {.fd = -1};
    rt_spawn_fields(opts, &a, p->scratch, rt_data_bytes_max);
    const reel_trace_record *rec = match(p, &a);
    if (!rec)
        return p->stopped;
    if (rec->result == 0 && pid)
        *pid = (int)rec->arg[0];
    return (int)rec->result;
}

static int p_kill(reel_backend *b, int pid, int sig)
{
    reel_trace_record a = {.op = REEL_TRACE_KILL, .fd = -1, .arg = {pid, sig}};
    return (int)simple(RP(b), &a);
}

static int p_signal_watch(reel_backend *b, int signo, bool on)
{
    reel_trace_record a = {.op = REEL_TRACE_SIGNAL_WATCH, .fd = -1, .arg = {signo, on}};
    return (int)simple(RP(b), &a);
}

static void p_log(reel_backend *b, const char *msg, size_t len)
{
    (void)b;
    struct iovec iov[2] = {{(void *)msg, len}, {"\n", 1}};
    ssize_t r = writev(STDERR_FILENO, iov, 2);
    (void)r;
}

/* ---------------------------------------------------------- lifecycle */

static void p_destroy(reel_backend *b)
{
    replayer *p = RP(b);
    /* As every backend: requests never reported complete now, cancelled,
     * so their owners can release them (backend.h). */
    for (size_t i = 0; i < p->nreqs; i++) {
        reel_backend_req *req = p->reqs[i];
        req->addrinfo = NULL;
        req->result = -ECANCELED;
        if (req->done)
            req->done(req);
    }
    reel_trace_close(p->rd);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->reqs);
    free(p->scratch);
    free(p->written);
    free(p->path);
    free(p);
}

static const reel_backend_ops replayer_ops = {
    .name = "replay",
    .destroy = p_destroy,
    .now_ns = p_now_ns,
    .random = p_random,
    .watch = p_watch,
    .poll = p_poll,
    .wake = p_wake,
    .admit_posted = p_admit_posted,
    .socket = p_socket,
    .socketpair = p_socketpair,
    .pipe = p_pipe,
    .close = p_close,
    .adopt = p_adopt,
    .bind = p_bind,
    .listen = p_listen,
    .accept = p_accept,
    .connect = p_connect,
    .shutdown = p_shutdown,
    .read = p_read,
    .write = p_write,
    .readv = p_readv,
    .writev = p_writev,
    .recvfrom = p_recvfrom,
    .sendto = p_sendto,
    .sendfile = p_sendfile,
    .getsockname = p_getsockname,
    .getpeername = p_getpeername,
    .setsockopt = p_setsockopt,
    .getsockopt = p_getsockopt,
    .unlink = p_unlink,
    .pread = p_pread,
    .stat = p_stat,
    .submit = p_submit,
    .freeaddrinfo = p_freeaddrinfo,
    .spawn = p_spawn,
    .kill = p_kill,
    .signal_watch = p_signal_watch,
    .log = p_log,
    .posted = p_posted,
    .callback = p_callback,
    .callback_hash = p_callback_hash,
};

bool reel_backend_is_replayer(const reel_backend *b)
{
    return b && b->ops && b->ops->destroy == p_destroy;
}

void rt_replayer_attach_loop(reel_backend *b, reel_loop *loop)
{
    if (reel_backend_is_replayer(b))
        RP(b)->loop = loop;
}

static uint64_t wait_from_env(void)
{
    const char *v = getenv("REEL_REPLAY_WAIT_MS");
    if (!v || !*v)
        return RT_POSTED_WAIT_NS;
    char *end;
    unsigned long long ms = strtoull(v, &end, 10);
    if (*end || ms == 0 || ms > 86400000ull)
        return RT_POSTED_WAIT_NS;
    return ms * 1000000ull;
}

/* The running program's name as the recorder writes it (the kernel's
 * comm: the executable's name, at most 15 bytes); "" if unknown. */
enum { rp_comm_bytes_max = 15 };
static void own_program_name(char *buf, size_t cap)
{
    buf[0] = '\0';
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
}

/* A trace replays only in the program that recorded it: refuse another
 * one up front, naming both, rather than diverge somewhere in the middle.
 * REEL_REPLAY_ANY_PROGRAM=1 skips the check (a renamed binary). */
static bool same_name(const char *a, const char *b)
{
    return strncmp(a, b, rp_comm_bytes_max) == 0;
}

/* Under Valgrind the kernel's comm is the tool's ("memcheck-amd64-"). */
static bool valgrind_name(const char *name)
{
    static const char *const tools[] = {"memcheck-", "helgrind-", "drd-",  "massif-", "cachegrind-",
                                        "callgrind-", "dhat-",     "none-", "exp-",    "lackey-"};
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        if (strncmp(name, tools[i], strlen(tools[i])) == 0)
            return true;
    return false;
}

static int check_program(const char *path, const reel_trace_info *info)
{
    const char *any = getenv("REEL_REPLAY_ANY_PROGRAM");
    if (!info->program[0] || valgrind_name(info->program) ||
        (any && *any && strcmp(any, "0") != 0))
        return 0;
    char self[64];
    own_program_name(self, sizeof self);
    /* The executable's name as invoked: what comm says outside Valgrind. */
    const char *invoked = program_invocation_short_name;
    if (!self[0] || same_name(self, info->program) || (invoked && same_name(invoked, info->program)))
        return 0;
    char line[512];
    int n = snprintf(line, sizeof line,
                     "reel: cannot replay %s: it was recorded by program '%s', this is '%s' "
                     "(REEL_REPLAY_ANY_PROGRAM=1 replays it anyway)\n",
                     path, info->program, self);
    ssize_t w = write(STDERR_FILENO, line, n < (int)sizeof line ? (size_t)n : sizeof line - 1);
    (void)w;
    return -EPERM;
}

int reel_backend_replayer_new(const char *path, reel_backend **out)
{
    if (out)
        *out = NULL;
    if (!out || !path)
        return -EINVAL;
    char err[512];
    reel_trace_reader *rd;
    int rc = reel_trace_open(&rd, path, err, sizeof err);
    if (rc < 0) {
        char line[768];
        int n = snprintf(line, sizeof line, "reel: cannot replay %s: %s\n", path, err);
        ssize_t w = write(STDERR_FILENO, line, n < (int)sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
        return rc;
    }
    rc = check_program(path, reel_trace_get_info(rd));
    if (rc < 0) {
        reel_trace_close(rd);
        return rc;
    }
    replayer *p = calloc(1, sizeof *p);
    if (p) {
        p->path = strdup(path);
        p->scratch = malloc(rt_data_bytes_max);
    }
    if (!p || !p->path || !p->scratch) {
        if (p) {
            free(p->path);
            free(p->scratch);
        }
        free(p);
        reel_trace_close(rd);
        return -ENOMEM;
    }
    p->rd = rd;
    p->ops = replayer_ops;
    p->base.ops = &p->ops;
    p->cb_hash = REEL_CALLBACK_HASH_INIT;
    p->wait_ns = wait_from_env();
    const reel_trace_info *info = reel_trace_get_info(rd);
    p->last_now = info->start_monotonic_ns;
    /* Ops the recorded backend lacked are absent here too, so the program
     * takes the same path; the ones the replayer itself needs stay. */
    for (size_t i = 0; i < rt_ops_count; i++) {
        size_t off = rt_ops_offsets[i];
        if (off == offsetof(reel_backend_ops, destroy) || off == offsetof(reel_backend_ops, now_ns) ||
            off == offsetof(reel_backend_ops, poll) || off == offsetof(reel_backend_ops, wake) ||
            off == offsetof(reel_backend_ops, admit_posted) || off == offsetof(reel_backend_ops, posted) ||
            off == offsetof(reel_backend_ops, callback) || off == offsetof(reel_backend_ops, log) ||
            off == offsetof(reel_backend_ops, freeaddrinfo))
            continue;
        if (!(info->ops_mask & (1ull << i))) {
            void (*fp)(void) = NULL;
            memcpy((char *)&p->ops + off, &fp, sizeof fp);
        }
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = &p->base;
    return 0;
}

/* ------------------------------------------------------------- status */

bool reel_replayer_diverged(reel_backend *b, reel_replay_divergence *out)
{
    if (!reel_backend_is_replayer(b) || !RP(b)->stopped)
        return false;
    if (out)
        *out = RP(b)->div;
    return true;
}

bool reel_replay_diverged(reel_loop *loop, reel_replay_divergence *out)
{
    return loop && reel_replayer_diverged(reel_loop_backend(loop), out);
}

int reel_replayer_status_get(reel_backend *b, reel_replay_status *out)
{
    if (!reel_backend_is_replayer(b) || !out)
        return -EINVAL;
    replayer *p = RP(b);
    memset(out, 0, sizeof *out);
    const reel_trace_record *next = peek(p, NULL);
    out->stopped = p->stopped;
    out->records = p->consumed;
    out->callbacks = p->callbacks;
    out->callback_hash = p->cb_hash;
    int sig = 0;
    if (!next && reel_trace_unfinished(p->rd, &sig)) {
        out->at_end = true;
        out->unfinished = true;
        out->recorded_signal = sig;
    }
    if (next && (next->op == REEL_TRACE_END || next->op == REEL_TRACE_EXIT)) {
        out->at_end = true;
        out->recorded_hash_known = true;
        out->recorded_callbacks = (uint64_t)next->arg[0];
        out->recorded_callback_hash = (uint64_t)next->arg[1];
    }
    return 0;
}

int reel_replay_status_get(reel_loop *loop, reel_replay_status *out)
{
    return loop ? reel_replayer_status_get(reel_loop_backend(loop), out) : -EINVAL;
}
