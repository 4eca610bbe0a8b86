/* planted_leak — a protocol with a PLANTED leak in its connection_lost
 * path, to show that the fuzz kit reports it as a finding: the state is
 * freed on a clean close but not when the connection is lost with an
 * error (a reset). Any input whose ending is a reset aborts with
 * "reel-fuzz: LEAK: ...". tests/test_fuzz_planted.sh runs it on a
 * committed input; tools/fuzz-planted lets libFuzzer find it. */
#include <stdlib.h>
#include <string.h>

#include "reel/fuzz.h"

typedef struct lk_conn {
    reel_transport *t;
    size_t bytes;
} lk_conn;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void lk_made(void *u, reel_transport *t) { ((lk_conn *)u)->t = t; }

static void lk_data(void *u, const void *data, size_t n)
{
    lk_conn *c = u;
    (void)data;
    c->bytes += n;
    reel_transport_write(c->t, "+OK\r\n", 5);
}

static void lk_lost(void *u, int err)
{
    if (err == 0)   /* PLANTED: the error path forgets to free */
        free(u);
}

static int lk_factory(void *arg, reel_protocol *out)
{
    (void)arg;
    lk_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    *out = (reel_protocol){.user = c, .connection_made = lk_made, .data_received = lk_data,
                           .connection_lost = lk_lost};
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reel_fuzz_conn_opts opts = {.factory = lk_factory};
    reel_fuzz_conn_run_bytes(&opts, data, size, NULL);
    return 0;
}
