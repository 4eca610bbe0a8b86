/* planted_chunk_boundary — a line protocol with a PLANTED off-by-one at a
 * chunk boundary, to show that the fuzz kit finds it (tools/fuzz-planted,
 * `make fuzz-planted`: libFuzzer + ASan must report it within 60 s).
 *
 * The parser keeps a partial line between data_received calls in a
 * 32-byte buffer at the end of its heap state. A complete line is checked
 * correctly; the carry-over check for a partial line uses > where >= is
 * needed, and the carried line is NUL-terminated: when a chunk ends after
 * exactly 32 bytes of an unfinished line, one byte is written past the
 * buffer. Only a chunk boundary at that exact spot triggers it: the
 * network (here, the fuzz connection) decides the boundaries, so a test
 * that sends whole lines never sees it. Not in fuzz/fuzz_*.c on purpose:
 * fuzz-smoke would (rightly) fail on it. */
#include <stdlib.h>
#include <string.h>

#include "reel/fuzz.h"

enum { line_bytes = 32 };

typedef struct bl_conn {
    reel_transport *t;
    size_t len;
    char line[line_bytes];   /* last: an overflow leaves the allocation */
} bl_conn;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void bl_made(void *u, reel_transport *t) { ((bl_conn *)u)->t = t; }

static void bl_data(void *u, const void *data, size_t n)
{
    bl_conn *c = u;
    const char *p = data;
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (nl) {
            if (c->len + take >= sizeof c->line) {
                reel_transport_write(c->t, "-ERR too long\r\n", 15);
            } else {
                memcpy(c->line + c->len, p, take);
                reel_transport_write(c->t, "+OK\r\n", 5);
            }
            c->len = 0;
            p += take + 1;
            n -= take + 1;
        } else {
            if (c->len + take > sizeof c->line) {   /* PLANTED: should be >= */
                reel_transport_write(c->t, "-ERR too long\r\n", 15);
                c->len = 0;
            } else {
                memcpy(c->line + c->len, p, take);
                c->len += take;
                c->line[c->len] = '\0';             /* one past the end at 32 */
            }
            break;
        }
    }
}

static void bl_lost(void *u, int err)
{
    (void)err;
    free(u);
}

static int bl_factory(void *arg, reel_protocol *out)
{
    (void)arg;
    bl_conn *c = malloc(sizeof *c);
    if (!c)
        return -1;
    c->len = 0;
    *out = (reel_protocol){.user = c, .connection_made = bl_made, .data_received = bl_data,
                           .connection_lost = bl_lost};
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reel_fuzz_conn_opts opts = {.factory = bl_factory, .max_chunk_bytes = 64};
    reel_fuzz_conn_run_bytes(&opts, data, size, NULL);
    return 0;
}
