/* reel/replay.h — record a real run to a trace, replay it without the world.
 *
 * A trace is the sequence of backend calls a loop made and their answers
 * (include/reel/backend.h): clock reads, random bytes, readiness, accepted
 * connections and their addresses, bytes read and received, write and send
 * results, socket options, name-resolution answers, signals, child exits,
 * and how many threadsafe callbacks each wake-up admitted. The loop also
 * tells the backend which callback it runs, so the trace holds the
 * callback sequence too (for the timeline and as a check).
 *
 * Recording: a recorder is a backend that wraps another one (the epoll
 * backend for a real run), forwards every call, and appends the call and
 * its answer to the trace. Replaying: a replayer is a backend that answers
 * every call from the trace. It needs no network and no peer, creates no
 * descriptor, and never sleeps: poll returns the recorded events at once,
 * now_ns returns the recorded clock. The first call that does not match
 * the trace (another operation, another fd, other bytes written, an extra
 * read, another callback) stops the replay with REEL_EDIVERGED and a report
 * (record index, the expected and the actual call, records around it) that
 * is also written to the loop's log; from then on every call fails with
 * REEL_EDIVERGED and run_forever returns it. A corrupt or truncated trace
 * stops it the same way with REEL_ECORRUPT.
 *
 * Environment switches, read by reel_loop_new():
 *   REEL_RECORD=path   record every loop the program creates to `path`
 *                      (the second loop to path.1, the third path.2, ...);
 *   REEL_REPLAY=path   replay them from the same files; a trace recorded by
 *                      another program (the header's program name) is
 *                      refused up front, naming both, unless
 *                      REEL_REPLAY_ANY_PROGRAM=1.
 *
 * Determinism rules a replayed program must keep (docs/replay.md):
 *   - descriptors are the recorded numbers; descriptors the program creates
 *     itself (raw syscalls, then adopt()) are real in replay and may carry
 *     other numbers, which shows as a divergence: create them through the
 *     backend (socket/socketpair/pipe) to have them replayed;
 *   - threadsafe callbacks: each recorded wake-up notes how many callbacks
 *     had been posted by then, and admits at most those. In replay the
 *     wake-up waits (on a condition, at most REEL_REPLAY_WAIT_MS, default
 *     30 s) until the program's own threads have posted as many, then
 *     admits exactly the recorded batch, so batches land in the same loop
 *     iterations. Posts from one thread replay exactly; posts racing from
 *     several threads queue in the replay's order, and a different order
 *     is reported as a divergence at the first differing callback;
 *   - the loop's debug mode reads the clock around callbacks: replay with
 *     the same REEL_DEBUG setting as the recording.
 */
#ifndef REEL_REPLAY_H
#define REEL_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reel/backend.h"
#include "reel/error.h"
#include "reel/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ loops */

/* Create a loop on the epoll backend that records to `path` (created or
 * truncated). The trace is complete once the loop is closed; a process
 * that exits without closing it still flushes what it recorded (the trace
 * then ends with an exit record); a process killed by any signal (SIGKILL
 * too) or crashing leaves every call it recorded, and the trace reads as
 * unfinished (reel_trace_unfinished). Returns 0 and *out, or a negative
 * code (-errno from opening the file). */
int reel_loop_new_recording(reel_loop **out, const char *path);

/* Create a loop that replays the trace at `path`. Returns 0 and *out,
 * -errno if the file cannot be read, REEL_ECORRUPT if its header is not
 * a valid trace, or -EPERM if another program recorded it (see
 * REEL_REPLAY_ANY_PROGRAM above); the reason goes to stderr. */
int reel_loop_new_replaying(reel_loop **out, const char *path);

/* ---------------------------------------------------------- backends */

/* A recorder wrapping `inner`: forwards every call and records it to
 * `path`. Takes ownership of `inner` (also on failure: it is destroyed).
 * Optional ops the inner backend lacks stay absent. Returns 0 and *out or
 * a negative code. */
int reel_backend_recorder_new(reel_backend *inner, const char *path, reel_backend **out);

/* A replayer answering from the trace at `path`. Returns 0 and *out,
 * -errno, or REEL_ECORRUPT (bad header; reason to stderr). */
int reel_backend_replayer_new(const char *path, reel_backend **out);

bool reel_backend_is_recorder(const reel_backend *b);
bool reel_backend_is_replayer(const reel_backend *b);

/* Recorder: make the file hold everything recorded so far. A trace on a
 * regular file needs nothing (each record is in the page cache once
 * recorded); one on a pipe or terminal writes its buffered block. Returns
 * 0 or a negative code; -EINVAL if b is not a recorder. */
int reel_recorder_flush(reel_backend *b);

/* ------------------------------------------------------ replay status */

/* Why and where a replay stopped. */
typedef struct reel_replay_divergence {
    int code;              /* REEL_EDIVERGED, or REEL_ECORRUPT */
    uint64_t record_index; /* the trace record that did not match / could not be read */
    uint64_t offset;       /* its byte offset in the trace file */
    char expected[512];    /* the recorded call, one line ("" if the trace ended) */
    char actual[512];      /* the call the program made, one line */
    char report[4096];     /* the full report with a few records of context */
} reel_replay_divergence;

/* True if the replaying loop (or replayer backend) stopped; fills *out
 * (may be NULL). False for a replay still matching, and for a loop that
 * is not replaying. */
bool reel_replay_diverged(reel_loop *loop, reel_replay_divergence *out);
bool reel_replayer_diverged(reel_backend *b, reel_replay_divergence *out);

typedef struct reel_replay_status {
    int stopped;            /* 0, REEL_EDIVERGED or REEL_ECORRUPT */
    uint64_t records;       /* trace records consumed so far */
    bool at_end;            /* everything recorded was replayed: next is the end record */
    uint64_t callbacks;     /* callbacks replayed (until a divergence, the diverging one included) */
    uint64_t callback_hash; /* their hash and the written bytes' (reel_loop_callback_hash) */
    bool recorded_hash_known; /* the end record has been seen */
    uint64_t recorded_callbacks, recorded_callback_hash; /* from the end record */
    bool unfinished;        /* at_end of a recording that did not finish (killed, crashed):
                               every record it committed was replayed */
    int recorded_signal;    /* the fatal signal that ended it, if the recorder noted one */
} reel_replay_status;

/* Progress of a replaying loop / replayer. Returns 0, or -EINVAL if it is
 * not replaying (or closed). */
int reel_replay_status_get(reel_loop *loop, reel_replay_status *out);
int reel_replayer_status_get(reel_backend *b, reel_replay_status *out);

/* --------------------------------------------------------- the trace */

/* Format version written by this library; readers accept 2 up to it
 * (version 3 adds the crash-safe ring, version 4 checksums records per
 * loop iteration instead of per record; docs/replay.md, "The format"). */
#define REEL_TRACE_VERSION 4

/* Operations (record kinds). Numbers are part of the format. */
enum reel_trace_op {
    REEL_TRACE_NOW = 1,     /* result = now_ns */
    REEL_TRACE_RANDOM,      /* a0 len; result; data = bytes */
    REEL_TRACE_WATCH,       /* fd, a0 old, a1 new; result */
    REEL_TRACE_POLL,        /* a0 max_events, a1 timeout_ns, a2 waited_ns; result n; time; then n EVENT */
    REEL_TRACE_EVENT,       /* a0 kind, a1 events, a2 id, a3 value, a4 posted (WAKE) / req id (DONE),
                               a5 req kind (DONE); result = req result; data = req answer */
    REEL_TRACE_ADMIT,       /* a0 queued; result = admitted */
    REEL_TRACE_SOCKET,      /* a0 domain, a1 type, a2 protocol; result fd */
    REEL_TRACE_SOCKETPAIR,  /* a0 domain, a1 type, a2 protocol; result; fd = fds[0], a3 = fds[1] */
    REEL_TRACE_PIPE,        /* result; fd = fds[0], a0 = fds[1] */
    REEL_TRACE_CLOSE,       /* fd; result */
    REEL_TRACE_ADOPT,       /* fd; result */
    REEL_TRACE_BIND,        /* fd, addr; result */
    REEL_TRACE_LISTEN,      /* fd, a0 backlog; result */
    REEL_TRACE_ACCEPT,      /* fd, a0 addr wanted, a1 addrlen in; result fd; addr = peer, a2 its length */
    REEL_TRACE_CONNECT,     /* fd, addr; result */
    REEL_TRACE_SHUTDOWN,    /* fd, a0 how; result */
    REEL_TRACE_READ,        /* fd, a0 len; result; data = bytes read */
    REEL_TRACE_WRITE,       /* fd, a0 len, a1 crc32c of the bytes accepted; result; data = preview */
    REEL_TRACE_READV,       /* fd, a0 iovcnt, a1 total len; result; data = bytes read */
    REEL_TRACE_WRITEV,      /* fd, a0 iovcnt, a1 total len, a2 crc32c; result; data = preview */
    REEL_TRACE_RECVFROM,    /* fd, a0 len, a1 flags, a2 addr wanted, a3 addrlen in; result; data;
                               addr, a4 its length */
    REEL_TRACE_SENDTO,      /* fd, a0 len, a1 flags, a2 crc32c; addr = destination; result; data = preview */
    REEL_TRACE_SENDFILE,    /* fd = out, a0 in_fd, a1 offset in (-1: none), a2 count; result; a3 offset out */
    REEL_TRACE_GETSOCKNAME, /* fd, a0 len in; result; addr, a1 its length */
    REEL_TRACE_GETPEERNAME, /* fd, a0 len in; result; addr, a1 its length */
    REEL_TRACE_SETSOCKOPT,  /* fd, a0 level, a1 name; data = value; result */
    REEL_TRACE_GETSOCKOPT,  /* fd, a0 level, a1 name, a2 len in; result; data = value */
    REEL_TRACE_UNLINK,      /* data = path; result */
    REEL_TRACE_SUBMIT,      /* a0 kind, a1 id, a2 family, a3 socktype, a4 protocol, a5 flags;
                               data = host\0service\0 (GETADDRINFO); addr (GETNAMEINFO); result */
    REEL_TRACE_SPAWN,       /* data = file\0argv[0]\0...; a1-a3 stdio, a4 new_session; result; a0 = pid */
    REEL_TRACE_KILL,        /* a0 pid, a1 sig; result */
    REEL_TRACE_SIGNAL_WATCH,/* a0 signo, a1 on; result */
    REEL_TRACE_CALLBACK,    /* a0 site id; time (func/file/line resolved by the reader) */
    REEL_TRACE_SITE,        /* a0 site id, a1 line; data = func\0file\0 (annotation) */
    REEL_TRACE_END,         /* a0 callbacks, a1 callback hash: the loop was closed */
    REEL_TRACE_EXIT,        /* a0 callbacks, a1 callback hash: the process exited first */
    REEL_TRACE_PREAD,       /* fd, a0 len, a1 offset; result; data = bytes read */
    REEL_TRACE_STAT,        /* data = path; result; a0 mode, a1 inode */
    REEL_TRACE_OP_COUNT
};

/* What the trace header says about the recording. */
typedef struct reel_trace_info {
    uint32_t version;
    uint32_t flags;              /* reserved, 0 */
    uint64_t start_realtime_ns;  /* wall clock at the start (ns since 1970) */
    uint64_t start_monotonic_ns; /* the recorded backend's clock at the start */
    uint64_t ops_mask;           /* which backend ops the recorded backend had */
    int32_t pid;
    char backend[32];            /* the recorded backend's name, e.g. "epoll" */
    char program[32];            /* the recording process's name */
    char host[64];               /* its host name */
    int32_t killed_by_signal;    /* the fatal signal the recording process died of
                                    (its recorder noted it), 0 if none */
} reel_trace_info;

/* One record, decoded. Pointers point into the reader and stay valid
 * until the next reel_trace_next() (func/file: until the reader closes). */
typedef struct reel_trace_record {
    uint64_t index;        /* from 0, every record counted */
    uint64_t offset;       /* byte offset of the record in the trace */
    uint32_t op;           /* enum reel_trace_op */
    int32_t fd;            /* -1 if the op has none */
    int64_t arg[6];        /* op-specific, see enum reel_trace_op */
    int64_t result;
    uint64_t time_ns;      /* recorder's clock (POLL; CALLBACK in older traces), else 0 */
    const uint8_t *data;
    uint32_t data_len;
    const uint8_t *addr;   /* a struct sockaddr, addr_len bytes */
    uint32_t addr_len;
    const char *func;      /* CALLBACK/SITE: the callback's name, file, line */
    const char *file;
    int line;
} reel_trace_record;

typedef struct reel_trace_reader reel_trace_reader;

/* Open a trace file / a trace in memory (borrowed until close) and check
 * its header. Returns 0 and *out, or -errno / -ENOMEM / REEL_ECORRUPT with
 * *out = NULL and the reason in err (may be NULL; err_cap bytes). */
int reel_trace_open(reel_trace_reader **out, const char *path, char *err, size_t err_cap);
int reel_trace_open_memory(reel_trace_reader **out, const void *data, size_t len,
                           char *err, size_t err_cap);

const reel_trace_info *reel_trace_get_info(const reel_trace_reader *r);

/* Read the next record: 1 and *rec, 0 at the end (after the END or EXIT
 * record, or after the last record of an unfinished recording: see
 * reel_trace_unfinished), or a negative code: REEL_ECORRUPT for a
 * truncated or corrupt trace (nothing of a damaged block is returned),
 * -errno for I/O. Errors are sticky; reel_trace_error() says what and
 * where. */
int reel_trace_next(reel_trace_reader *r, reel_trace_record *rec);

/* True once reel_trace_next() returned 0 at the end of a recording that
 * did not finish: the process was killed (any signal, SIGKILL included),
 * crashed, or is still running. Every record it committed before that
 * was returned; the trace is not damaged. *signo (may be NULL) gets the
 * fatal signal the recorder noted (SIGTERM, SIGINT, SIGSEGV, SIGABRT,
 * ...), 0 if none was noted (SIGKILL cannot be). */
bool reel_trace_unfinished(const reel_trace_reader *r, int *signo);

/* The last error as text, naming the record index and byte offset; "" if
 * none. Valid until the reader closes. */
const char *reel_trace_error(const reel_trace_reader *r);

/* Records read so far, and bytes consumed (the start of the next block). */
uint64_t reel_trace_records_read(const reel_trace_reader *r);
uint64_t reel_trace_bytes_read(const reel_trace_reader *r);

void reel_trace_close(reel_trace_reader *r);

/* "read", "poll", ... ("?" for an unknown op). */
const char *reel_trace_op_name(uint32_t op);

/* One human-readable line for rec (no newline), e.g.
 *   #42 read(fd=7, len=65536) = 5 "hello"
 * Returns the length it wanted (like snprintf); buf is always terminated. */
size_t reel_trace_format(const reel_trace_record *rec, char *buf, size_t cap);
/* The same record as one JSON object (no newline). */
size_t reel_trace_format_json(const reel_trace_record *rec, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
