/* fuzz_kv_resp — reel-kv's RESP2 parser (examples/kv/resp.c) fed as the
 * server feeds it: the input is split into reads (sizes drawn from its
 * last bytes by the fuzz kit's provider, reel/fuzz.h), unparsed tails are
 * kept and parsed again with the next read, exactly like
 * examples/kv/server.c's query buffer.
 *
 * Checks: every command parsed from the split input equals the one parsed
 * from the whole input (same count, same arguments, same error), no
 * argument points outside the buffer, no command has more than
 * KV_ARGS_MAX arguments or an argument over KV_BULK_MAX_BYTES, and the
 * reply scanner accepts or rejects without reading past the end.
 * The corpus (fuzz/corpus/kv_resp/) is real redis-cli and redis-benchmark
 * traffic captured by `reel-kv --capture-dir`, plus the bad inputs the
 * tests use, each followed by a trailer of read sizes. Builds with
 * libFuzzer, AFL++ or plain (fuzz/driver.c replays the corpus: a ctest),
 * like every harness here (tools/fuzz-smoke, fuzz/build.sh). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <reel/fuzz.h>

#include "../examples/kv/resp.c"

#define CHECK(c)                                                                    \
    do {                                                                            \
        if (!(c)) {                                                                 \
            fprintf(stderr, "fuzz_kv_resp: check failed at line %d: %s\n", __LINE__, #c); \
            abort();                                                                \
        }                                                                           \
    } while (0)

enum { max_cmds = 4096 };

typedef struct digest {
    size_t ncmds;
    uint64_t h[max_cmds];
    int rc_end;  /* how parsing stopped: 0 incomplete, <0 error */
    const char *err;
} digest;

static uint64_t hash_cmd(const kv_cmd *cmd)
{
    uint64_t h = 0xcbf29ce484222325ull ^ cmd->argc;
    for (size_t i = 0; i < cmd->argc; i++) {
        h = (h ^ cmd->lens[i]) * 0x100000001b3ull;
        for (size_t k = 0; k < cmd->lens[i]; k++)
            h = (h ^ cmd->argv[i][k]) * 0x100000001b3ull;
    }
    return h;
}

/* Parse buf as a server would, in reads of the given sizes. */
static void run(const uint8_t *data, size_t size, const uint8_t *splits, size_t nsplits, digest *d)
{
    kv_cmd cmd = {0};
    kv_buf q = {0};
    size_t fed = 0, si = 0;
    /* Not the whole digest: h[] is 32 KiB and only h[0..ncmds) is read;
     * zeroing it twice per input was most of an input's time. */
    d->ncmds = 0;
    d->rc_end = 0;
    d->err = NULL;
    while (fed < size) {
        size_t chunk = nsplits ? (size_t)splits[si++ % nsplits] * 7 + 1 : size;
        if (chunk > size - fed)
            chunk = size - fed;
        CHECK(kv_buf_add(&q, data + fed, chunk) == 0);
        fed += chunk;
        size_t pos = 0;
        for (;;) {
            size_t used, need;
            const char *err;
            int rc = kv_resp_parse(q.p + pos, q.len - pos, &cmd, &used, &need, &err);
            if (rc == 0) {
                CHECK(used == 0);
                CHECK(need == 0 || need > q.len - pos);
                d->rc_end = 0;
                break;
            }
            if (rc < 0) {
                CHECK(err != NULL);
                d->rc_end = rc;
                d->err = err;
                goto out;
            }
            CHECK(used > 0 && used <= q.len - pos);
            CHECK(cmd.argc <= KV_ARGS_MAX);
            for (size_t i = 0; i < cmd.argc; i++) {
                CHECK(cmd.lens[i] <= KV_BULK_MAX_BYTES);
                CHECK(cmd.argv[i] >= q.p + pos && cmd.argv[i] + cmd.lens[i] <= q.p + pos + used);
            }
            if (rc == 1 && d->ncmds < max_cmds)
                d->h[d->ncmds++] = hash_cmd(&cmd);
            pos += used;
        }
        kv_buf_consume(&q, pos);
    }
out:
    kv_cmd_free(&cmd);
    kv_buf_free(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Through the kit's provider (reel/fuzz.h): the reads' sizes from the
     * end of the input (a count, then one byte each), the bytes to parse
     * are all the rest, from the front — so a corpus file is RESP as it
     * came off the wire followed by a short trailer. */
    reel_fuzz_input in;
    reel_fuzz_input_init(&in, data, size);
    uint8_t splits[8];
    size_t nsplits = (size_t)reel_fuzz_uint(&in, 0, sizeof splits);
    for (size_t i = 0; i < nsplits; i++)
        splits[i] = (uint8_t)reel_fuzz_uint(&in, 0, 255);
    const uint8_t *payload;
    size_t len = reel_fuzz_bytes_rest(&in, &payload);
    static digest whole, split;
    run(payload, len, NULL, 0, &whole);
    run(payload, len, splits, nsplits, &split);
    CHECK(whole.ncmds == split.ncmds);
    CHECK(memcmp(whole.h, split.h, whole.ncmds * sizeof whole.h[0]) == 0);
    CHECK(whole.rc_end == split.rc_end);
    CHECK(whole.err == split.err);
    long r = kv_resp_reply_len(payload, len);
    CHECK(r <= (long)len);
    return 0;
}
