/* replay/recorder.c — a backend that wraps another, forwards every call,
 * and appends the call and its answer to a trace.
 *
 * What it adds to the wrapped backend's behaviour, all legal under the
 * backend contract: a read or receive asks for at most rt_data_bytes_max
 * bytes (a short read), and a wake-up admits at most the threadsafe
 * callbacks that had been posted when poll returned it (so a replay can
 * wait for exactly those; see include/reel/replay.h). Everything else is
 * the wrapped backend's answer, unchanged.
 *
 * Records are appended from the loop's thread only: wake() and posted(),
 * the two calls other threads make, record nothing (posted() bumps an
 * atomic counter); the writer's flusher thread only copies sealed blocks
 * from the ring to the file. Each record is in the kernel's page cache
 * once recorded (replay/trace.h, "Crash safety"), so a killed or crashed
 * process leaves every call it completed; fatal signals are noted in the
 * trace (on_fatal_signal). If writing the trace fails (disk full), the
 * recorder says so once through the log and goes on forwarding. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../loop/cb_hash.h"
#include "trace.h"

typedef struct rec_site {
    const char *func, *file; /* keyed by pointer: the loop passes static strings */
    int line;
    uint32_t id;             /* 0: empty slot */
    uint64_t name_hash;      /* rl_callback_name_hash(func), computed once */
} rec_site;

typedef struct recorder {
    reel_backend base;
    reel_backend_ops ops;          /* this instance's table: NULL where inner has NULL */
    reel_backend *inner;
    const reel_backend_ops *in;
    rt_writer *w;
    bool failed;
    atomic_uint_least64_t posted;  /* threadsafe callbacks posted so far */
    uint64_t posted_at_wake;       /* ... as seen when poll last returned a wake-up */
    uint64_t admitted;             /* ... and taken by the loop */
    uint64_t last_flush_ns;
    uint64_t now_last;             /* the last clock value recorded (NOW) ... */
    uint64_t now_at;               /* ... and the writer's record count just after it */
    rec_site *sites;               /* open addressing, power-of-two capacity */
    uint32_t sites_cap, nsites;
    uint64_t callbacks, cb_hash;
    pthread_t loop_thread;         /* the thread that last polled */
    bool have_thread;
    bool finished;                 /* end / exit record written */
    bool forked;                   /* this is a child after fork(): record nothing */
    uint8_t *scratch;              /* rt_data_bytes_max: gathered readv bytes, answers */
    struct recorder *next_live;
} recorder;

#define REC(b) ((recorder *)(b))

/* Field by field: a designated initializer of this 144-byte struct becomes
 * `rep stos` with GCC, whose start-up cost showed in the recording overhead
 * (every recorded call makes one record). */
static inline void rec_init(reel_trace_record *r, uint32_t op, int fd)
{
    r->index = r->offset = 0;
    r->op = op;
    r->fd = fd;
    r->arg[0] = r->arg[1] = r->arg[2] = r->arg[3] = r->arg[4] = r->arg[5] = 0;
    r->result = 0;
    r->time_ns = 0;
    r->data = r->addr = NULL;
    r->data_len = r->addr_len = 0;
    r->func = r->file = NULL;
    r->line = 0;
}

/* ------------------------------------------------- live list, atexit */

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static recorder *live_head;
static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

static void finish(recorder *r, uint32_t op);

/* A process that exits without closing its loop still gets its trace:
 * flushed with an exit record, when the exiting thread is the loop's own
 * (it cannot be in the middle of a record then). From another thread the
 * loop may be mid-record, so the tail since the last flush is left out. */
static void flush_at_exit(void)
{
    pthread_mutex_lock(&live_lock);
    for (recorder *r = live_head; r; r = r->next_live)
        if (!r->have_thread || pthread_equal(r->loop_thread, pthread_self()))
            finish(r, REEL_TRACE_EXIT);
    pthread_mutex_unlock(&live_lock);
}

/* fork(): the child shares the trace file (and its offset) with the
 * parent, so its records would interleave with the parent's and its copy
 * of the block being filled would be written twice: it records nothing. */
static void before_fork(void) { pthread_mutex_lock(&live_lock); }
static void after_fork_parent(void) { pthread_mutex_unlock(&live_lock); }
static void after_fork_child(void)
{
    for (recorder *r = live_head; r; r = r->next_live)
        r->forked = true;
    pthread_mutex_unlock(&live_lock);
}

/* Fatal signals. Every committed record is already in the kernel (in the
 * page cache, through the writer's mapped ring: see replay/trace.h), so a
 * fatal signal only has to say what ended the run: the handler notes the signal in each
 * live trace with async-signal-safe steps (a store into the mapping; a
 * buffered writer pwrite()s its committed block), puts the default action
 * back and raises the signal again, so the process dies of it as it would
 * have. It is installed only where the disposition is the default: a
 * program's own handler (or a sanitizer's) is left alone. SIGKILL cannot
 * be caught; the trace is complete up to the last committed record all
 * the same. */
static const int fatal_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS,
                                    SIGILL, SIGFPE, SIGABRT};

static void on_fatal_signal(int signo)
{
    int saved = errno;
    for (recorder *r = __atomic_load_n(&live_head, __ATOMIC_ACQUIRE); r;
         r = __atomic_load_n(&r->next_live, __ATOMIC_ACQUIRE))
        if (!r->forked && !r->finished && !r->failed)
            rt_writer_on_signal(r->w, signo);
    /* SA_RESETHAND put the default action back; the signal is blocked
     * until this handler returns, and then kills the process. */
    raise(signo);
    errno = saved;
}

static void install_fatal_handlers(void)
{
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++) {
        struct sigaction old;
        if (sigaction(fatal_signals[i], NULL, &old) < 0 || (old.sa_flags & SA_SIGINFO) ||
            old.sa_handler != SIG_DFL)
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sa.sa_flags = SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        sigaction(fatal_signals[i], &sa, NULL);
    }
}

static void register_atexit(void)
{
    atexit(flush_at_exit);
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    install_fatal_handlers();
}

static void live_add(recorder *r)
{
    pthread_once(&atexit_once, register_atexit);
    pthread_mutex_lock(&live_lock);
    r->next_live = live_head;
    __atomic_store_n(&live_head, r, __ATOMIC_RELEASE); /* the signal handler walks the list */
    pthread_mutex_unlock(&live_lock);
}

static void live_remove(recorder *r)
{
    pthread_mutex_lock(&live_lock);
    for (recorder **p = &live_head; *p; p = &(*p)->next_live)
        if (*p == r) {
            __atomic_store_n(p, r->next_live, __ATOMIC_RELEASE);
            break;
        }
    pthread_mutex_unlock(&live_lock);
}

/* ---------------------------------------------------------- emitting */

static void record_failed(recorder *r, int rc)
{
    r->failed = true;
    char msg[256];
    int n = snprintf(msg, sizeof msg, "reel: recording stopped, cannot write the trace: %s",
                     reel_strerror(rc));
    if (r->in->log)
        r->in->log(r->inner, msg, (size_t)n);
}

static inline void emit(recorder *r, const reel_trace_record *rec)
{
    if (__builtin_expect(r->failed || r->finished || r->forked, 0))
        return;
    int rc = rt_writer_append(r->w, rec);
    if (rc < 0)
        record_failed(r, rc);
}

/* The fast paths' side of emit: whether to record, and what a failed
 * append means. */
static inline bool recording(const recorder *r) { return !(r->failed || r->finished || r->forked); }
static inline void emitted(recorder *r, int rc)
{
    if (__builtin_expect(rc < 0, 0))
        record_failed(r, rc);
}

static void finish(recorder *r, uint32_t op)
{
    if (r->finished || r->failed || r->forked)
        return;
    reel_trace_record t;
    rec_init(&t, op, -1);
    t.arg[0] = (int64_t)r->callbacks;
    t.arg[1] = (int64_t)r->cb_hash;
    emit(r, &t);
    r->finished = true;
    if (!r->failed) {
        int rc = rt_writer_end(r->w);
        if (rc < 0)
            record_failed(r, rc);
    }
}

static inline uint32_t clamp_len(size_t n, size_t max) { return (uint32_t)(n < max ? n : max); }


/* --------------------------------------------------- time, randomness */

static uint64_t r_now_ns(reel_backend *b)
{
    recorder *r = REC(b);
    uint64_t t = r->in->now_ns(r->inner);
    if (recording(r)) {
        emitted(r, rt_writer_now(r->w, t));
        r->now_last = t;
        r->now_at = r->w->records; /* struct rt_writer is in trace.h: no call */
    }
    return t;
}

static int r_random(reel_backend *b, void *buf, size_t len)
{
    recorder *r = REC(b);
    uint8_t *p = buf;
    do { /* one record per chunk: a record holds at most rt_data_bytes_max */
        size_t n = len < rt_data_bytes_max ? len : rt_data_bytes_max;
        int rc = r->in->random(r->inner, p, n);
        reel_trace_record rec;
        rec_init(&rec, REEL_TRACE_RANDOM, -1);
        rec.arg[0] = (int64_t)n;
        rec.result = rc;
        rec.data = p;
        rec.data_len = rc == 0 ? (uint32_t)n : 0;
        emit(r, &rec);
        if (rc < 0)
            return rc;
        p += n;
        len -= n;
    } while (len);
    return 0;
}

/* ---------------------------------------------------------- readiness */

static int r_watch(reel_backend *b, int fd, uint32_t old_events, uint32_t new_events)
{
    recorder *r = REC(b);
    int rc = r->in->watch(r->inner, fd, old_events, new_events);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_WATCH, fd);
    rec.arg[0] = old_events;
    rec.arg[1] = new_events;
    rec.result = rc;
    emit(r, &rec);
    return rc;
}

static int r_poll(reel_backend *b, reel_event *events, int max_events, int64_t timeout_ns)
{
    recorder *r = REC(b);
    r->loop_thread = pthread_self();
    r->have_thread = true;
    /* The poll's start: when the last record is a clock read (the loop
     * reads the clock to compute the timeout, then polls, with no backend
     * call between), that value, not a clock read of its own (~26 ns on
     * this VM's kvm-clock; one in four 256 B echo round trips polls). */
    uint64_t t0 = recording(r) && r->w->records == r->now_at ? r->now_last : r->in->now_ns(r->inner);
    /* About to block: put what is buffered on disk if it has waited long. */
    if (timeout_ns != 0 && !r->failed && !r->forked && rt_writer_pending(r->w) &&
        t0 - r->last_flush_ns >= RT_FLUSH_INTERVAL_NS) {
        int rc = rt_writer_flush(r->w);
        if (rc < 0)
            record_failed(r, rc);
        r->last_flush_ns = t0;
    }
    /* The CRC over this iteration's records in one pass (trace.h,
     * "Version 4"): what follows is committed by length alone. */
    if (recording(r))
        rt_writer_checkpoint(r->w);
    int n = r->in->poll(r->inner, events, max_events, timeout_ns);
    uint64_t t1 = r->in->now_ns(r->inner);
    uint64_t posted = atomic_load(&r->posted);
    if (recording(r))
        emitted(r, rt_writer_poll(r->w, max_events, timeout_ns, (int64_t)(t1 - t0), n, t0));
    /* Events without an answer to carry (all but a completed request's),
     * all at once: one room check and one commit for the poll. */
    int i = 0;
    uint8_t *p0 = n > 0 && recording(r) ? rt_writer_events_begin(r->w, (size_t)n) : NULL;
    if (p0) {
        uint8_t *p = p0;
        for (; i < n; i++) {
            const reel_event *ev = &events[i];
            if (ev->kind == REEL_EV_DONE && ev->ptr)
                break;
            int64_t a4 = 0;
            if (ev->kind == REEL_EV_WAKE)
                a4 = (int64_t)(r->posted_at_wake = posted);
            p = rt_event_put(p, ev->kind, ev->events, ev->id, ev->value, a4);
        }
        rt_writer_events_end(r->w, p0, p, (size_t)i);
    }
    for (; i < n; i++) {
        const reel_event *ev = &events[i];
        if (ev->kind != REEL_EV_DONE || !ev->ptr) { /* no answer to carry: the fast path */
            int64_t a4 = 0;
            if (ev->kind == REEL_EV_WAKE)
                a4 = (int64_t)(r->posted_at_wake = posted);
            if (recording(r))
                emitted(r, rt_writer_event(r->w, ev->kind, ev->events, ev->id, ev->value, a4));
            continue;
        }
        reel_trace_record e;
        rec_init(&e, REEL_TRACE_EVENT, -1);
        e.arg[0] = ev->kind;
        e.arg[1] = ev->events;
        e.arg[2] = ev->id;
        e.arg[3] = ev->value;
        if (ev->kind == REEL_EV_WAKE) {
            e.arg[4] = (int64_t)posted;
            r->posted_at_wake = posted;
        } else if (ev->kind == REEL_EV_DONE && ev->ptr) {
            const reel_backend_req *req = ev->ptr;
            e.arg[4] = (int64_t)req->id;
            e.arg[5] = req->kind;
            e.result = req->result;
            int len = rt_done_answer(req, r->scratch, rt_data_bytes_max);
            if (len < 0) {
                record_failed(r, len);
                return n;
            }
            e.data = r->scratch;
            e.data_len = (uint32_t)len;
        }
        emit(r, &e);
    }
    return n;
}

static int r_wake(reel_backend *b)
{
    recorder *r = REC(b);
    return r->in->wake(r->inner);
}

static void r_posted(reel_backend *b, size_t queued)
{
    recorder *r = REC(b);
    atomic_fetch_add(&r->posted, 1);
    if (r->in->posted)
        r->in->posted(r->inner, queued);
}

static size_t r_admit_posted(reel_backend *b, size_t queued)
{
    recorder *r = REC(b);
    size_t take = r->in->admit_posted ? r->in->admit_posted(r->inner, queued) : queued;
    if (take > queued)
        take = queued;
    /* Only what had been posted when poll returned the wake-up: a replay
     * can wait for exactly that many before answering. */
    uint64_t allowed = r->posted_at_wake > r->admitted ? r->posted_at_wake - r->admitted : 0;
    if (take > allowed)
        take = (size_t)allowed;
    r->admitted += take;
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_ADMIT, -1);
    rec.arg[0] = (int64_t)queued;
    rec.result = (int64_t)take;
    emit(r, &rec);
    return take;
}

/* ----------------------------------------------------------- callbacks */

static uint32_t site_hash(const char *func, const char *file, int line)
{
    uint64_t h = (uint64_t)(uintptr_t)func * 0x9e3779b97f4a7c15ull;
    h ^= (uint64_t)(uintptr_t)file * 0xc2b2ae3d27d4eb4full;
    h ^= (uint64_t)(unsigned)line * 0x165667b19e3779f9ull;
    return (uint32_t)(h >> 32);
}

static int sites_grow(recorder *r)
{
    uint32_t cap = r->sites_cap ? r->sites_cap * 2 : 256;
    rec_site *s = calloc(cap, sizeof *s);
    if (!s)
        return -ENOMEM;
    for (uint32_t i = 0; i < r->sites_cap; i++) {
        rec_site *o = &r->sites[i];
        if (!o->id)
            continue;
        uint32_t j = site_hash(o->func, o->file, o->line) & (cap - 1);
        while (s[j].id)
            j = (j + 1) & (cap - 1);
        s[j] = *o;
    }
    free(r->sites);
    r->sites = s;
    r->sites_cap = cap;
    return 0;
}

static uint32_t site_new(recorder *r, const char *func, const char *file, int line, uint64_t *name_hash);

/* The site's id, writing its SITE record the first time; 0 if the table
 * is full (the callback is then recorded as "?"). *name_hash gets
 * rl_callback_name_hash(func), kept with the site so a busy loop does not
 * hash the same name again. */
static inline uint32_t site_id(recorder *r, const char *func, const char *file, int line, uint64_t *name_hash)
{
    if (__builtin_expect(r->sites_cap != 0, 1)) {
        uint32_t mask = r->sites_cap - 1;
        const rec_site *sites = r->sites;
        for (uint32_t j = site_hash(func, file, line) & mask; sites[j].id; j = (j + 1) & mask) {
            const rec_site *st = &sites[j];
            if (st->func == func && st->file == file && st->line == line) {
                *name_hash = st->name_hash;
                return st->id;
            }
        }
    }
    return site_new(r, func, file, line, name_hash);
}

/* A site not seen before, out of line: the lookup above is inlined into
 * r_callback (a call was ~15 of its ~53 instructions per callback). */
__attribute__((noinline)) static uint32_t site_new(recorder *r, const char *func, const char *file, int line,
                                                   uint64_t *name_hash)
{
    *name_hash = rl_callback_name_hash(func);
    if (r->nsites >= rt_sites_max)
        return 0;
    if ((r->nsites + 1) * 2 > r->sites_cap && sites_grow(r) < 0)
        return 0;
    /* The SITE record first, so a reader knows the name before its use. */
    size_t fl = strnlen(func, rt_site_text_bytes / 2 - 1), gl = strnlen(file, rt_site_text_bytes / 2 - 1);
    uint8_t text[rt_site_text_bytes];
    memcpy(text, func, fl);
    text[fl] = 0;
    memcpy(text + fl + 1, file, gl);
    text[fl + 1 + gl] = 0;
    uint32_t id = ++r->nsites;
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_SITE, -1);
    rec.arg[0] = id;
    rec.arg[1] = line;
    rec.data = text;
    rec.data_len = (uint32_t)(fl + gl + 2);
    emit(r, &rec);
    uint32_t j = site_hash(func, file, line) & (r->sites_cap - 1);
    while (r->sites[j].id)
        j = (j + 1) & (r->sites_cap - 1);
    r->sites[j] = (rec_site){func, file, line, id, *name_hash};
    return id;
}

static void r_callback(reel_backend *b, const char *func, const char *file, int line)
{
    recorder *r = REC(b);
    r->callbacks++;
    uint64_t name_hash;
    if (!r->failed && !r->finished) {
        uint32_t id = site_id(r, func, file, line, &name_hash);
        /* No clock read: a callback record is its site alone. Replay needs
         * no time here (it checks the site, and the end record's hash), and
         * a clock read was most of what a callback cost the recording loop
         * (~2 of ~2.8 reads per echo round trip on a VM where each is
         * ~30 ns). The timeline places a callback at the last recorded
         * clock value; debug mode's stopwatch records a clock read before
         * and after each callback. */
        if (recording(r))
            emitted(r, rt_writer_callback(r->w, id, 0));
    } else {
        name_hash = rl_callback_name_hash(func);
    }
    /* = reel_callback_hash_step(r->cb_hash, func) */
    r->cb_hash = rl_callback_hash_fold(r->cb_hash, name_hash);
    if (r->in->callback)
        r->in->callback(r->inner, func, file, line);
}

/* The hash of the callbacks and of the bytes written (reel_loop_callback_hash). */
static uint64_t r_callback_hash(reel_backend *b, uint64_t *count)
{
    *count = REC(b)->callbacks;
    return REC(b)->cb_hash;
}

/* --------------------------------------------------------- descriptors */

static int r_socket(reel_backend *b, int domain, int type, int protocol)
{
    recorder *r = REC(b);
    int fd = r->in->socket(r->inner, domain, type, protocol);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_SOCKET, -1);
    rec.arg[0] = domain;
    rec.arg[1] = type;
    rec.arg[2] = protocol;
    rec.result = fd;
    emit(r, &rec);
    return fd;
}

static int r_socketpair(reel_backend *b, int domain, int type, int protocol, int fds[2])
{
    recorder *r = REC(b);
    int rc = r->in->socketpair(r->inner, domain, type, protocol, fds);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_SOCKETPAIR, rc == 0 ? fds[0] : -1);
    rec.arg[0] = domain;
    rec.arg[1] = type;
    rec.arg[2] = protocol;
    rec.arg[3] = rc == 0 ? fds[1] : -1;
    rec.result = rc;
    emit(r, &rec);
    return rc;
}

static int r_pipe(reel_backend *b, int fds[2])
{
    recorder *r = REC(b);
    int rc = r->in->pipe(r->inner, fds);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_PIPE, rc == 0 ? fds[0] : -1);
    rec.arg[0] = rc == 0 ? fds[1] : -1;
    rec.result = rc;
    emit(r, &rec);
    return rc;
}

static int r_close(reel_backend *b, int fd)
{
    recorder *r = REC(b);
    int rc = r->in->close(r->inner, fd);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_CLOSE, fd);
    rec.result = rc;
    emit(r, &rec);
    return rc;
}

static int r_adopt(reel_backend *b, int fd)
{
    recorder *r = REC(b);
    int rc = r->in->adopt(r->inner, fd);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_ADOPT, fd);
    rec.result = rc;
    emit(r, &rec);
    return rc;
}

static int r_bind(reel_backend *b, int fd, const struct sockaddr *addr, socklen_t len)
{
    recorder *r = REC(b);
    int rc = r->in->bind(r->inner, fd, addr, len);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_BIND, fd);
    rec.result = rc;
    rec.addr = (const uint8_t *)addr;
    rec.addr_len = addr ? clamp_len(len, rt_addr_bytes_max) : 0;
    emit(r, &rec);
    return rc;
}

static int r_listen(reel_backend *b, int fd, int backlog)
{
    recorder *r = REC(b);
    int rc = r->in->listen(r->inner, fd, backlog);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_LISTEN, fd);
    rec.arg[0] = backlog;
    rec.result = rc;
    emit(r, &rec);
    return rc;
}

static int r_accept(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    recorder *r = REC(b);
    socklen_t len_in = addr && len ? *len : 0;
    int nfd = r->in->accept(r->inner, fd, addr, len);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_ACCEPT, fd);
    rec.arg[0] = addr != NULL;
    rec.arg[1] = len_in;
    rec.result = nfd;
    if (nfd >= 0 && addr && len) {
        rec.arg[2] = *len;
        rec.addr = (const uint8_t *)addr;
        rec.addr_len = clamp_len(*len < len_in ? *len : len_in, rt_addr_bytes_max);
    }
    emit(r, &rec);
    return nfd;
}

static int r_connect(reel_backend *b, int fd, const struct sockaddr *addr, socklen_t len)
{
    recorder *r = REC(b);
    int rc = r->in->connect(r->inner, fd, addr, len);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_CONNECT, fd);
    rec.result = rc;
    rec.addr = (const uint8_t *)addr;
    rec.addr_len = addr ? clamp_len(len, rt_addr_bytes_max) : 0;
    emit(r, &rec);
    return rc;
}

static int r_shutdown(reel_backend *b, int fd, int how)
{
    recorder *r = REC(b);
    int rc = r->in->shutdown(r->inner, fd, how);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_SHUTDOWN, fd);
    rec.arg[0] = how;
    rec.result = rc;
    emit(r, &rec);
    return rc;
}

static ssize_t r_read(reel_backend *b, int fd, void *buf, size_t len)
{
    recorder *r = REC(b);
    ssize_t n = r->in->read(r->inner, fd, buf, len < rt_data_bytes_max ? len : rt_data_bytes_max);
    if (recording(r))
        emitted(r, rt_writer_io(r->w, REEL_TRACE_READ, fd, (int64_t)len, 0, n, buf, n > 0 ? (uint32_t)n : 0));
    return n;
}

static ssize_t r_write(reel_backend *b, int fd, const void *buf, size_t len)
{
    recorder *r = REC(b);
    ssize_t n = r->in->write(r->inner, fd, buf, len);
    size_t accepted = n > 0 ? (size_t)n : 0;
    uint32_t crc = rt_crc32c(0, buf, accepted);
    r->cb_hash = reel_callback_hash_write(r->cb_hash, crc, accepted);
    if (recording(r))
        emitted(r, rt_writer_io(r->w, REEL_TRACE_WRITE, fd, (int64_t)len, crc, n, buf,
                                clamp_len(len, rt_write_preview_bytes)));
    return n;
}

static ssize_t r_readv(reel_backend *b, int fd, const struct iovec *iov, int iovcnt)
{
    recorder *r = REC(b);
    /* At most rt_iov_max vectors and rt_data_bytes_max bytes: a short read. */
    struct iovec v[rt_iov_max];
    v[0] = (struct iovec){NULL, 0};
    int cnt = 0;
    size_t room = rt_data_bytes_max;
    for (int i = 0; i < iovcnt && cnt < rt_iov_max && room; i++) {
        size_t k = iov[i].iov_len < room ? iov[i].iov_len : room;
        v[cnt++] = (struct iovec){iov[i].iov_base, k};
        room -= k;
    }
    ssize_t n = r->in->readv(r->inner, fd, v, cnt);
    size_t got = n > 0 ? (size_t)n : 0, at = 0;
    for (int i = 0; i < cnt && at < got; i++) {
        size_t k = v[i].iov_len < got - at ? v[i].iov_len : got - at;
        memcpy(r->scratch + at, v[i].iov_base, k);
        at += k;
    }
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_READV, fd);
    rec.arg[0] = iovcnt;
    rec.arg[1] = (int64_t)rt_iov_total(iov, iovcnt);
    rec.result = n;
    rec.data = r->scratch;
    rec.data_len = (uint32_t)got;
    emit(r, &rec);
    return n;
}

static ssize_t r_writev(reel_backend *b, int fd, const struct iovec *iov, int iovcnt)
{
    recorder *r = REC(b);
    ssize_t n = r->in->writev(r->inner, fd, iov, iovcnt);
    uint8_t preview[rt_write_preview_bytes];
    uint32_t plen;
    uint32_t crc = rt_iov_crc(iov, iovcnt, n > 0 ? (size_t)n : 0, preview, &plen);
    r->cb_hash = reel_callback_hash_write(r->cb_hash, crc, n > 0 ? (uint64_t)n : 0);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_WRITEV, fd);
    rec.arg[0] = iovcnt;
    rec.arg[1] = (int64_t)rt_iov_total(iov, iovcnt);
    rec.arg[2] = crc;
    rec.result = n;
    rec.data = preview;
    rec.data_len = plen;
    emit(r, &rec);
    return n;
}

static ssize_t r_recvfrom(reel_backend *b, int fd, void *buf, size_t len, int flags,
                          struct sockaddr *addr, socklen_t *addrlen)
{
    recorder *r = REC(b);
    socklen_t len_in = addr && addrlen ? *addrlen : 0;
    ssize_t n = r->in->recvfrom(r->inner, fd, buf, len < rt_data_bytes_max ? len : rt_data_bytes_max,
                                flags, addr, addrlen);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_RECVFROM, fd);
    rec.arg[0] = (int64_t)len;
    rec.arg[1] = flags;
    rec.arg[2] = addr != NULL;
    rec.arg[3] = len_in;
    rec.result = n;
    rec.data = buf;
    rec.data_len = n > 0 ? (uint32_t)n : 0;
    if (n >= 0 && addr && addrlen) {
        rec.arg[4] = *addrlen;
        rec.addr = (const uint8_t *)addr;
        rec.addr_len = clamp_len(*addrlen < len_in ? *addrlen : len_in, rt_addr_bytes_max);
    }
    emit(r, &rec);
    return n;
}

static ssize_t r_sendto(reel_backend *b, int fd, const void *buf, size_t len, int flags,
                        const struct sockaddr *addr, socklen_t addrlen)
{
    recorder *r = REC(b);
    ssize_t n = r->in->sendto(r->inner, fd, buf, len, flags, addr, addrlen);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_SENDTO, fd);
    rec.arg[0] = (int64_t)len;
    rec.arg[1] = flags;
    rec.arg[2] = rt_crc32c(0, buf, n > 0 ? (size_t)n : 0);
    r->cb_hash = reel_callback_hash_write(r->cb_hash, (uint32_t)rec.arg[2], n > 0 ? (uint64_t)n : 0);
    rec.result = n;
    rec.data = buf;
    rec.data_len = clamp_len(len, rt_write_preview_bytes);
    rec.addr = (const uint8_t *)addr;
    rec.addr_len = addr ? clamp_len(addrlen, rt_addr_bytes_max) : 0;
    emit(r, &rec);
    return n;
}

static ssize_t r_sendfile(reel_backend *b, int out_fd, int in_fd, int64_t *offset, size_t count)
{
    recorder *r = REC(b);
    int64_t off_in = offset ? *offset : -1;
    ssize_t n = r->in->sendfile(r->inner, out_fd, in_fd, offset, count);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_SENDFILE, out_fd);
    rec.arg[0] = in_fd;
    rec.arg[1] = off_in;
    rec.arg[2] = (int64_t)count;
    rec.arg[3] = offset ? *offset : -1;
    rec.result = n;
    emit(r, &rec);
    return n;
}

static void name_record(recorder *r, uint32_t op, int fd, socklen_t len_in, int rc,
                        const struct sockaddr *addr, const socklen_t *len)
{
    reel_trace_record rec;
    rec_init(&rec, op, fd);
    rec.arg[0] = len_in;
    rec.result = rc;
    if (rc == 0 && addr && len) {
        rec.arg[1] = *len;
        rec.addr = (const uint8_t *)addr;
        rec.addr_len = clamp_len(*len < len_in ? *len : len_in, rt_addr_bytes_max);
    }
    emit(r, &rec);
}

static int r_getsockname(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    recorder *r = REC(b);
    socklen_t len_in = len ? *len : 0;
    int rc = r->in->getsockname(r->inner, fd, addr, len);
    name_record(r, REEL_TRACE_GETSOCKNAME, fd, len_in, rc, addr, len);
    return rc;
}

static int r_getpeername(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    recorder *r = REC(b);
    socklen_t len_in = len ? *len : 0;
    int rc = r->in->getpeername(r->inner, fd, addr, len);
    name_record(r, REEL_TRACE_GETPEERNAME, fd, len_in, rc, addr, len);
    return rc;
}

static int r_setsockopt(reel_backend *b, int fd, int level, int name, const void *val, socklen_t len)
{
    recorder *r = REC(b);
    int rc = r->in->setsockopt(r->inner, fd, level, name, val, len);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_SETSOCKOPT, fd);
    rec.arg[0] = level;
    rec.arg[1] = name;
    rec.result = rc;
    rec.data = val;
    rec.data_len = val ? clamp_len(len, rt_data_bytes_max) : 0;
    emit(r, &rec);
    return rc;
}

static int r_getsockopt(reel_backend *b, int fd, int level, int name, void *val, socklen_t *len)
{
    recorder *r = REC(b);
    socklen_t len_in = len ? *len : 0;
    int rc = r->in->getsockopt(r->inner, fd, level, name, val, len);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_GETSOCKOPT, fd);
    rec.arg[0] = level;
    rec.arg[1] = name;
    rec.arg[2] = len_in;
    rec.result = rc;
    if (rc == 0 && val && len) {
        rec.data = val;
        rec.data_len = clamp_len(*len < len_in ? *len : len_in, rt_data_bytes_max);
    }
    emit(r, &rec);
    return rc;
}

static int r_unlink(reel_backend *b, const char *path)
{
    recorder *r = REC(b);
    int rc = r->in->unlink(r->inner, path);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_UNLINK, -1);
    rec.result = rc;
    rec.data = (const uint8_t *)path;
    rec.data_len = path ? clamp_len(strlen(path) + 1, rt_data_bytes_max) : 0;
    emit(r, &rec);
    return rc;
}

static ssize_t r_pread(reel_backend *b, int fd, void *buf, size_t len, int64_t offset)
{
    recorder *r = REC(b);
    ssize_t n = r->in->pread(r->inner, fd, buf, len < rt_data_bytes_max ? len : rt_data_bytes_max, offset);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_PREAD, fd);
    rec.arg[0] = (int64_t)len;
    rec.arg[1] = offset;
    rec.result = n;
    rec.data = buf;
    rec.data_len = n > 0 ? (uint32_t)n : 0;
    emit(r, &rec);
    return n;
}

static int r_stat(reel_backend *b, const char *path, uint32_t *mode, uint64_t *ino)
{
    recorder *r = REC(b);
    uint32_t m = 0;
    uint64_t i = 0;
    int rc = r->in->stat(r->inner, path, &m, &i);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_STAT, -1);
    rec.arg[0] = m;
    rec.arg[1] = (int64_t)i;
    rec.result = rc;
    rec.data = (const uint8_t *)path;
    rec.data_len = path ? clamp_len(strlen(path) + 1, rt_data_bytes_max) : 0;
    emit(r, &rec);
    if (mode)
        *mode = m;
    if (ino)
        *ino = i;
    return rc;
}

/* ------------------------------------------- requests, processes, signals */

static int r_submit(reel_backend *b, reel_backend_req *req)
{
    recorder *r = REC(b);
    int rc = r->in->submit(r->inner, req);
    reel_trace_record rec;
    rec_init(&rec, 0, -1);
    rt_submit_fields(req, &rec, r->scratch, rt_data_bytes_max);
    rec.result = rc;
    emit(r, &rec);
    return rc;
}

static void r_freeaddrinfo(reel_backend *b, struct addrinfo *ai)
{
    recorder *r = REC(b);
    r->in->freeaddrinfo(r->inner, ai);
}

static int r_spawn(reel_backend *b, const reel_spawn_opts *opts, int *pid)
{
    recorder *r = REC(b);
    int rc = r->in->spawn(r->inner, opts, pid);
    reel_trace_record rec;
    rec_init(&rec, 0, -1);
    rt_spawn_fields(opts, &rec, r->scratch, rt_data_bytes_max);
    rec.result = rc;
    rec.arg[0] = rc == 0 && pid ? *pid : 0;
    emit(r, &rec);
    return rc;
}

static int r_kill(reel_backend *b, int pid, int sig)
{
    recorder *r = REC(b);
    int rc = r->in->kill(r->inner, pid, sig);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_KILL, -1);
    rec.arg[0] = pid;
    rec.arg[1] = sig;
    rec.result = rc;
    emit(r, &rec);
    return rc;
}

static int r_signal_watch(reel_backend *b, int signo, bool on)
{
    recorder *r = REC(b);
    int rc = r->in->signal_watch(r->inner, signo, on);
    reel_trace_record rec;
    rec_init(&rec, REEL_TRACE_SIGNAL_WATCH, -1);
    rec.arg[0] = signo;
    rec.arg[1] = on;
    rec.result = rc;
    emit(r, &rec);
    return rc;
}

static void r_log(reel_backend *b, const char *msg, size_t len)
{
    recorder *r = REC(b);
    r->in->log(r->inner, msg, len);
}

/* ---------------------------------------------------------- lifecycle */

static void r_destroy(reel_backend *b)
{
    recorder *r = REC(b);
    live_remove(r);
    finish(r, REEL_TRACE_END);
    if (r->forked)
        rt_writer_abandon(r->w);
    else
        rt_writer_close(r->w, !r->failed);
    reel_backend_destroy(r->inner);
    free(r->sites);
    free(r->scratch);
    free(r);
}

static const reel_backend_ops recorder_ops = {
    .name = "record",
    .destroy = r_destroy,
    .now_ns = r_now_ns,
    .random = r_random,
    .watch = r_watch,
    .poll = r_poll,
    .wake = r_wake,
    .admit_posted = r_admit_posted,
    .socket = r_socket,
    .socketpair = r_socketpair,
    .pipe = r_pipe,
    .close = r_close,
    .adopt = r_adopt,
    .bind = r_bind,
    .listen = r_listen,
    .accept = r_accept,
    .connect = r_connect,
    .shutdown = r_shutdown,
    .read = r_read,
    .write = r_write,
    .readv = r_readv,
    .writev = r_writev,
    .recvfrom = r_recvfrom,
    .sendto = r_sendto,
    .sendfile = r_sendfile,
    .getsockname = r_getsockname,
    .getpeername = r_getpeername,
    .setsockopt = r_setsockopt,
    .getsockopt = r_getsockopt,
    .unlink = r_unlink,
    .pread = r_pread,
    .stat = r_stat,
    .submit = r_submit,
    .freeaddrinfo = r_freeaddrinfo,
    .spawn = r_spawn,
    .kill = r_kill,
    .signal_watch = r_signal_watch,
    .log = r_log,
    .posted = r_posted,
    .callback = r_callback,
    .callback_hash = r_callback_hash,
};

bool reel_backend_is_recorder(const reel_backend *b)
{
    return b && b->ops && b->ops->destroy == r_destroy;
}

int reel_recorder_flush(reel_backend *b)
{
    if (!reel_backend_is_recorder(b))
        return -EINVAL;
    recorder *r = REC(b);
    if (r->failed)
        return -EIO;
    if (r->forked)
        return -ECHILD;
    return rt_writer_flush(r->w);
}

static void read_program_name(char *buf, size_t cap)
{
    buf[0] = '\0';
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0)
        n = 0;
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
}

int reel_backend_recorder_new(reel_backend *inner, const char *path, reel_backend **out)
{
    if (out)
        *out = NULL;
    if (!out || !inner || !inner->ops || !path || !inner->ops->now_ns || !inner->ops->poll ||
        !inner->ops->wake) {
        reel_backend_destroy(inner);
        return -EINVAL;
    }
    recorder *r = calloc(1, sizeof *r);
    uint8_t *scratch = malloc(rt_data_bytes_max);
    if (!r || !scratch) {
        free(r);
        free(scratch);
        reel_backend_destroy(inner);
        return -ENOMEM;
    }
    r->scratch = scratch;
    r->inner = inner;
    r->in = inner->ops;
    r->ops = recorder_ops;
    r->base.ops = &r->ops;
    r->cb_hash = REEL_CALLBACK_HASH_INIT;
    atomic_init(&r->posted, 0);
    /* Mirror the inner backend's absent ops, except those the recorder
     * itself answers (admit_posted, posted, callback). */
    for (size_t i = 0; i < rt_ops_count; i++) {
        size_t off = rt_ops_offsets[i];
        if (off == offsetof(reel_backend_ops, admit_posted) || off == offsetof(reel_backend_ops, posted) ||
            off == offsetof(reel_backend_ops, callback))
            continue;
        void (*fp)(void);
        memcpy(&fp, (const char *)inner->ops + off, sizeof fp);
        if (!fp)
            memcpy((char *)&r->ops + off, &fp, sizeof fp);
    }
    reel_trace_info info;
    memset(&info, 0, sizeof info);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    info.start_realtime_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    info.start_monotonic_ns = inner->ops->now_ns(inner);
    info.ops_mask = rt_ops_mask_of(&r->ops);
    info.pid = (int32_t)getpid();
    snprintf(info.backend, sizeof info.backend, "%s", inner->ops->name ? inner->ops->name : "?");
    read_program_name(info.program, sizeof info.program);
    if (gethostname(info.host, sizeof info.host) < 0)
        info.host[0] = '\0';
    info.host[sizeof info.host - 1] = '\0';
    int rc = rt_writer_open(&r->w, path, &info);
    if (rc < 0) {
        free(r->scratch);
        free(r);
        reel_backend_destroy(inner);
        return rc;
    }
    r->last_flush_ns = info.start_monotonic_ns;
    r->now_at = UINT64_MAX; /* no clock read recorded yet */
    live_add(r);
    *out = &r->base;
    return 0;
}
