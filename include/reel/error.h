/* reel/error.h — error codes.
 *
 * Every reel call that can fail returns 0 (or a non-negative count) on
 * success and a negative code on failure. System errors are negated errno
 * values (-EINVAL, -ECONNREFUSED, ...); reel's own conditions, which mirror
 * asyncio's exception classes, use the REEL_E* codes below, far outside the
 * errno range. reel_strerror() names any of them.
 *
 * A call that returns an object through an output pointer (`reel_future
 * **out`, `void **result`, ...) sets it to NULL when it fails. A call that
 * rejects an argument returns -EINVAL and sets reel_last_error() (task.h)
 * to -EINVAL with a message naming the call and the argument, e.g.
 * "reel_loop_call_soon: fn is NULL".
 */
#ifndef REEL_ERROR_H
#define REEL_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    REEL_ECANCELLED   = -1001, /* asyncio.CancelledError */
    REEL_EINVALSTATE  = -1002, /* asyncio.InvalidStateError */
    REEL_ELIMIT       = -1003, /* asyncio.LimitOverrunError (detail: consumed) */
    REEL_EINCOMPLETE  = -1004, /* asyncio.IncompleteReadError (detail: partial, expected) */
    REEL_EDIVERGED    = -1005, /* replay: the program asked what the trace does not hold */
    REEL_ECLOSED      = -1006, /* the loop, or the transport/stream used, is closed;
                                  reel_last_error() says which */
    REEL_ERUNNING     = -1007, /* the loop is already running */
    REEL_ESTOPPED     = -1008, /* run_until_complete: loop stopped before the future completed */
    REEL_ETHREAD      = -1009, /* debug mode: non-thread-safe call from a foreign thread */
    REEL_ETIMEOUT     = -1010, /* asyncio.TimeoutError */
    REEL_ENOTASK      = -1011, /* a task-only call made outside a task */
    REEL_ECORRUPT     = -1012, /* a trace or input file is corrupt or truncated */
    REEL_ESENDFILE    = -1013, /* asyncio.SendfileNotAvailableError */
    REEL_ELIVENESS    = -1014, /* simulator: the program reported a liveness failure */
};

/* Name-resolution failures (socket.gaierror) carry the getaddrinfo /
 * getnameinfo EAI_* code (negative in glibc) shifted into their own range:
 * REEL_EGAI(EAI_NONAME). EAI_SYSTEM is reported as the negated errno. */
#define REEL_EGAI_BASE (-2000)
#define REEL_EGAI(eai) (REEL_EGAI_BASE + (eai))
#define REEL_IS_EGAI(code) ((code) < REEL_EGAI_BASE && (code) > REEL_EGAI_BASE - 1000)

/* A static, human-readable name for an error code (negative errno or
 * REEL_E*). Never NULL; unknown codes give "unknown error". Thread-safe. */
const char *reel_strerror(int code);

/* The detail an error carries inside a future (asyncio keeps these on the
 * exception object). `message` is owned by the future that holds it. */
typedef struct reel_error {
    int code;            /* negative error code */
    char *message;       /* optional text, NUL-terminated, or NULL */
    size_t consumed;     /* REEL_ELIMIT: LimitOverrunError.consumed */
    size_t expected;     /* REEL_EINCOMPLETE: IncompleteReadError.expected */
    void *partial;       /* REEL_EINCOMPLETE: IncompleteReadError.partial bytes */
    size_t partial_len;  /* length of `partial` */
} reel_error;

#ifdef __cplusplus
}
#endif
#endif
