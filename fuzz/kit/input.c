/* fuzz/kit/input.c — the fuzz data provider (reel/fuzz.h): numbers from
 * the end of the input, byte spans from the front, defined results when
 * the bytes run out. Follows the contract of LLVM's FuzzedDataProvider
 * (written anew, in C). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "reel/fuzz.h"

void reel_fuzz_input_init(reel_fuzz_input *in, const uint8_t *data, size_t size)
{
    in->data = data;
    in->size = data ? size : 0;
}

size_t reel_fuzz_remaining(const reel_fuzz_input *in) { return in->size; }

/* The last byte, consumed. Only called with size > 0. */
static uint8_t take_last(reel_fuzz_input *in) { return in->data[--in->size]; }

uint64_t reel_fuzz_uint(reel_fuzz_input *in, uint64_t min, uint64_t max)
{
    if (min >= max)
        return min;
    uint64_t range = max - min, v = 0;
    /* As many bytes as the range has (fewer if the input ends). */
    for (unsigned bits = 0; bits < 64 && (range >> bits) != 0 && in->size > 0; bits += 8)
        v = (v << 8) | take_last(in);
    if (range != UINT64_MAX)
        v %= range + 1;
    return min + v;
}

int64_t reel_fuzz_int(reel_fuzz_input *in, int64_t min, int64_t max)
{
    if (min >= max)
        return min;
    uint64_t off = reel_fuzz_uint(in, 0, (uint64_t)max - (uint64_t)min);
    return (int64_t)((uint64_t)min + off);
}

bool reel_fuzz_bool(reel_fuzz_input *in) { return in->size > 0 && (take_last(in) & 1); }

unsigned reel_fuzz_enum(reel_fuzz_input *in, unsigned count)
{
    return count == 0 ? 0 : (unsigned)reel_fuzz_uint(in, 0, count - 1);
}

double reel_fuzz_probability(reel_fuzz_input *in)
{
    return (double)reel_fuzz_uint(in, 0, UINT32_MAX) / (double)UINT32_MAX;
}

double reel_fuzz_double(reel_fuzz_input *in, double min, double max)
{
    if (!(min < max))   /* also NaN */
        return min;
    double range, base = min;
    if (max > 0 && min < 0 && max > min + DBL_MAX) {
        /* max - min overflows: split the range in halves. */
        range = max / 2.0 - min / 2.0;
        if (reel_fuzz_bool(in))
            base += range;
    } else {
        range = max - min;
    }
    double v = base + range * reel_fuzz_probability(in);
    if (isnan(v))   /* an infinite bound */
        return min;
    return v > max ? max : v;
}

size_t reel_fuzz_bytes(reel_fuzz_input *in, size_t n, const uint8_t **out)
{
    if (n > in->size)
        n = in->size;
    *out = n ? in->data : NULL;
    in->data += n;
    in->size -= n;
    return n;
}

size_t reel_fuzz_bytes_some(reel_fuzz_input *in, size_t max_len, const uint8_t **out)
{
    return reel_fuzz_bytes(in, (size_t)reel_fuzz_uint(in, 0, max_len), out);
}

size_t reel_fuzz_bytes_rest(reel_fuzz_input *in, const uint8_t **out)
{
    return reel_fuzz_bytes(in, in->size, out);
}

size_t reel_fuzz_copy(reel_fuzz_input *in, void *dst, size_t n)
{
    const uint8_t *p;
    size_t k = reel_fuzz_bytes(in, n, &p);
    if (k)
        memcpy(dst, p, k);
    if (n > k)
        memset((uint8_t *)dst + k, 0, n - k);
    return k;
}
