/* Fuzz a line protocol (examples/lib/lineproto.c) through reel's fuzz kit:
 * the input is delivered in chunks it chooses, then EOF, a reset or
 * nothing; timers run in virtual time; a leak or a crash is a finding.
 * libFuzzer: clang -fsanitize=fuzzer,address fuzz_lines.c lineproto.c libreel_fuzz.a
 * libreel.a + the --wrap flags; AFL++ / plain runner: add fuzz/driver.c
 * (docs/fuzzing.md). */
#include <stdio.h>
#include <stdlib.h>

#include <reel/fuzz.h>

#include "lineproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reel_fuzz_conn_opts opts = {.factory = lineproto_factory};
    reel_fuzz_conn_result res;
    reel_fuzz_conn_run_bytes(&opts, data, size, &res);
    /* What came back must be well-formed replies (a partial last reply
     * only if the capture was cut). */
    if (!res.output_truncated && !lineproto_replies_ok(res.output, res.output_len)) {
        fprintf(stderr, "malformed reply stream (%zu bytes)\n", res.output_len);
        abort();
    }
    return 0;
}
