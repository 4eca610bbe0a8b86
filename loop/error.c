/* loop/error.c — names for error codes. */
#define _GNU_SOURCE
#include <netdb.h>
#include <string.h>

#include "reel/error.h"

const char *reel_strerror(int code)
{
    switch (code) {
    case 0: return "success";
    case REEL_ECANCELLED: return "operation cancelled (CancelledError)";
    case REEL_EINVALSTATE: return "invalid state (InvalidStateError)";
    case REEL_ELIMIT: return "separator not found within the limit (LimitOverrunError)";
    case REEL_EINCOMPLETE: return "EOF before enough bytes were read (IncompleteReadError)";
    case REEL_EDIVERGED: return "replay diverged from the trace";
    case REEL_ECLOSED: return "closed (the event loop, or the transport or stream used)";
    case REEL_ERUNNING: return "event loop is already running";
    case REEL_ESTOPPED: return "event loop stopped before the future completed";
    case REEL_ETHREAD: return "non-thread-safe operation invoked from another thread";
    case REEL_ETIMEOUT: return "operation timed out (TimeoutError)";
    case REEL_ENOTASK: return "called outside a task";
    case REEL_ECORRUPT: return "corrupt or truncated input";
    case REEL_ESENDFILE: return "sendfile not available (SendfileNotAvailableError)";
    case REEL_ELIVENESS: return "liveness failure reported in the simulator";
    default: break;
    }
    if (REEL_IS_EGAI(code))
        return gai_strerror(code - REEL_EGAI_BASE);
    if (code < 0 && code > -4096) {
        const char *s = strerrordesc_np(-code);
        if (s)
            return s;
    }
    return "unknown error";
}
