/* fuzz_trace — the trace reader on hostile input.
 *
 * Reads every record of the input as a trace from memory, formats each as
 * text and JSON, decodes request answers, and checks the reader's promises:
 * records come in order, no field exceeds its limit, an error is sticky and
 * explained with a position. Any crash, sanitizer report or failed check is
 * a finding, and so is memory the reader did not free (the fuzz kit's
 * leak check, reel/fuzz.h). Builds with libFuzzer, AFL++ (fuzz/driver.c,
 * persistent mode) or plain (fuzz/driver.c replays a corpus directory: a
 * ctest). Coverage goes on the reader (tools/fuzz-build):
 * REEL_FUZZ_COVERAGE: edges replay/ */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../replay/trace.h"
#include "reel/fuzz.h"

#define CHECK(c) \
    do {         \
        if (!(c)) \
            abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int read_trace(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reel_fuzz_leak_check_begin();
    read_trace(data, size);
    CHECK(reel_fuzz_leak_check_end() == 0);
    return 0;
}

static int read_trace(const uint8_t *data, size_t size)
{
    reel_trace_reader *r;
    char err[256];
    int rc = reel_trace_open_memory(&r, data, size, err, sizeof err);
    if (rc < 0) {
        CHECK(r == NULL && err[0] != '\0');
        return 0;
    }
    reel_trace_record rec;
    uint64_t want = 0;
    static char text[2048], json[4096];
    while ((rc = reel_trace_next(r, &rec)) == 1) {
        CHECK(rec.index == want++);
        CHECK(rec.data_len <= rt_data_bytes_max && rec.addr_len <= rt_addr_bytes_max);
        CHECK(rec.data_len == 0 || rec.data != NULL);
        CHECK(rec.offset < size);
        size_t n = reel_trace_format(&rec, text, sizeof text);
        CHECK(strlen(text) == (n < sizeof text ? n : sizeof text - 1));
        n = reel_trace_format_json(&rec, json, sizeof json);
        CHECK(strlen(json) == (n < sizeof json ? n : sizeof json - 1));
        if (rec.op == REEL_TRACE_EVENT && rec.arg[5] == REEL_REQ_GETADDRINFO && rec.data_len) {
            struct addrinfo *ai;
            if (rt_decode_addrinfo(rec.data, rec.data_len, &ai) == 0)
                rt_free_addrinfo(ai);
        }
    }
    CHECK(rc == 0 || rc < 0);
    if (rc < 0) {
        CHECK(reel_trace_error(r)[0] != '\0');
        CHECK(reel_trace_next(r, &rec) == rc); /* sticky */
    }
    reel_trace_close(r);
    return 0;
}
