/* replay/trace.c — the trace format: CRC32C, the record codec, the header,
 * the streaming writer and the reader (layout in replay/trace.h). The
 * reader trusts nothing: every length is checked against the limits and
 * the data present, and a block is used only once its checksum matched. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include "trace.h"

/* ------------------------------------------------------------- CRC32C */

static uint32_t crc_table[8][256];
static bool crc_hw;
/* Three-lane hardware CRC: lanes of crc_lane_bytes, joined by shifting a
 * lane's register over the next lane's bytes (a linear map: crc_shift). */
enum { crc_lane_bytes = 128, crc_short_lane_bytes = 64 };
static uint32_t crc_shift[4][256], crc_shift_short[4][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_ready; /* set (release) once crc_init ran: skips pthread_once */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* Folding with carry-less multiplies (VPCLMULQDQ on 256-bit registers)
 * for buffers of crc_fold_min bytes and more: 128 bytes per step, where
 * the crc32 instruction does 8 bytes per cycle at best. The same CRC32C
 * (the trace format is unchanged); crc_fold_k[i] = {x^(63+D), x^(D-1)}
 * mod P, bit-reflected, for folding distance D = 1024, 256, 128 bits. */
enum { crc_fold_min = 256 };
static bool crc_fold_hw;
static uint64_t crc_fold_k[3][2];

/* x^n mod P, reflected (bit i is the coefficient of x^(31-i)). */
static uint32_t crc_xpow(unsigned n)
{
    uint32_t v = 0x80000000u;
    while (n--)
        v = (v & 1) ? (v >> 1) ^ 0x82f63b78u : v >> 1;
    return v;
}
#endif

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++)
            crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^ crc_table[0][crc_table[k - 1][i] & 0xff];
    /* crc_shift[k][b]: the raw register (b << 8k) run over crc_lane_bytes
     * zero bytes. The register update is linear, so running any register
     * over those bytes is the XOR of its four bytes' entries. */
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t c = b << (8 * k);
            for (int i = 0; i < crc_short_lane_bytes; i++)
                c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_shift_short[k][b] = c;
            for (int i = crc_short_lane_bytes; i < crc_lane_bytes; i++)
                c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_shift[k][b] = c;
        }
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
    crc_fold_hw = crc_hw && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("vpclmulqdq") &&
                  __builtin_cpu_supports("pclmul");
    static const unsigned dist[3] = {1024, 256, 128};
    for (int i = 0; i < 3; i++) {
        /* A 64-bit reflected operand holds x^d at bit 63-d: the 32-bit
         * residue goes to the upper half. clmul of two reflected operands
         * gives x times their product, hence 63+D and D-1. */
        crc_fold_k[i][0] = (uint64_t)crc_xpow(63 + dist[i]) << 32;
        crc_fold_k[i][1] = (uint64_t)crc_xpow(dist[i] - 1) << 32;
    }
#endif
    __atomic_store_n(&crc_ready, 1, __ATOMIC_RELEASE);
}

static inline uint32_t crc_shift_by(uint32_t (*t)[256], uint32_t c)
{
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}
static inline uint32_t crc_shift_lane(uint32_t c) { return crc_shift_by(crc_shift, c); }

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        n--;
    }
    while (n >= 8) {
        uint32_t lo = c ^ rt_get_u32(p);
        uint32_t hi = rt_get_u32(p + 4);
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
            crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
            crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const uint8_t *p, size_t n)
{
    /* No alignment prologue: x86 loads 8 unaligned bytes at full speed,
     * and a byte-at-a-time prologue costs up to 7 dependent instructions
     * (3 cycles each) on every short record. */
    uint64_t c64 = c;
    /* The instruction takes 3 cycles but can start every cycle: three
     * independent lanes keep it busy. */
    while (n >= 3 * crc_lane_bytes) {
        uint64_t a = c64, b = 0, d = 0;
        for (int i = 0; i < crc_lane_bytes; i += 8) {
            uint64_t x, y, z;
            memcpy(&x, p + i, 8);
            memcpy(&y, p + crc_lane_bytes + i, 8);
            memcpy(&z, p + 2 * crc_lane_bytes + i, 8);
            a = __builtin_ia32_crc32di(a, x);
            b = __builtin_ia32_crc32di(b, y);
            d = __builtin_ia32_crc32di(d, z);
        }
        c64 = crc_shift_lane(crc_shift_lane((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
        p += 3 * crc_lane_bytes;
        n -= 3 * crc_lane_bytes;
    }
    /* What is left (< 384 bytes) would run one dependent chain: three
     * shorter lanes once more where there is room (a 256-byte payload
     * takes 2/3 of the time that way). */
    if (n >= 3 * crc_short_lane_bytes) {
        uint64_t a = c64, b = 0, d = 0;
        for (int i = 0; i < crc_short_lane_bytes; i += 8) {
            uint64_t x, y, z;
            memcpy(&x, p + i, 8);
            memcpy(&y, p + crc_short_lane_bytes + i, 8);
            memcpy(&z, p + 2 * crc_short_lane_bytes + i, 8);
            a = __builtin_ia32_crc32di(a, x);
            b = __builtin_ia32_crc32di(b, y);
            d = __builtin_ia32_crc32di(d, z);
        }
        c64 = crc_shift_by(crc_shift_short, crc_shift_by(crc_shift_short, (uint32_t)a) ^ (uint32_t)b) ^
              (uint32_t)d;
        p += 3 * crc_short_lane_bytes;
        n -= 3 * crc_short_lane_bytes;
    }
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    if (n & 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        c = __builtin_ia32_crc32si(c, v);
        p += 4;
    }
    if (n & 2) {
        uint16_t v;
        memcpy(&v, p, 2);
        c = __builtin_ia32_crc32hi(c, v);
        p += 2;
    }
    if (n & 1)
        c = __builtin_ia32_crc32qi(c, *p);
    return c;
}

/* 16-byte lanes: x.lo (the first 8 bytes, the higher powers) times k[0],
 * x.hi times k[1], XORed with what lies D bits further on. 256-bit
 * registers: 512-bit multiplies may lower the core's clock for everything
 * else it runs (the kernel's TCP work included). */
__attribute__((target("avx2,vpclmulqdq,pclmul,sse4.2"))) static inline __m256i
crc_fold256(__m256i x, __m256i k, __m256i next)
{
    return _mm256_xor_si256(_mm256_xor_si256(_mm256_clmulepi64_epi128(x, k, 0x00), _mm256_clmulepi64_epi128(x, k, 0x11)),
                            next);
}

__attribute__((target("avx2,vpclmulqdq,pclmul,sse4.2"))) static inline __m128i
crc_fold128(__m128i x, __m128i k, __m128i next)
{
    return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next);
}

/* n >= crc_fold_min. The register c enters as the first 4 bytes XORed in
 * (the update is linear); the bytes are folded down to 16 bytes that are
 * congruent to all of them modulo P, which the crc32 instruction then
 * finishes, followed by the tail of fewer than 32 bytes. */
__attribute__((target("avx2,vpclmulqdq,pclmul,sse4.2"))) static uint32_t crc_fold(uint32_t c, const uint8_t *p,
                                                                                    size_t n)
{
    __m256i x0 = _mm256_loadu_si256((const void *)p), x1 = _mm256_loadu_si256((const void *)(p + 32)),
            x2 = _mm256_loadu_si256((const void *)(p + 64)), x3 = _mm256_loadu_si256((const void *)(p + 96));
    x0 = _mm256_xor_si256(x0, _mm256_set_epi32(0, 0, 0, 0, 0, 0, 0, (int)c));
    p += 128;
    n -= 128;
    const __m256i k1024 = _mm256_broadcastsi128_si256(_mm_set_epi64x((long long)crc_fold_k[0][1], (long long)crc_fold_k[0][0]));
    while (n >= 128) {
        x0 = crc_fold256(x0, k1024, _mm256_loadu_si256((const void *)p));
        x1 = crc_fold256(x1, k1024, _mm256_loadu_si256((const void *)(p + 32)));
        x2 = crc_fold256(x2, k1024, _mm256_loadu_si256((const void *)(p + 64)));
        x3 = crc_fold256(x3, k1024, _mm256_loadu_si256((const void *)(p + 96)));
        p += 128;
        n -= 128;
    }
    const __m256i k256 = _mm256_broadcastsi128_si256(_mm_set_epi64x((long long)crc_fold_k[1][1], (long long)crc_fold_k[1][0]));
    __m256i x = crc_fold256(crc_fold256(crc_fold256(x0, k256, x1), k256, x2), k256, x3);
    while (n >= 32) {
        x = crc_fold256(x, k256, _mm256_loadu_si256((const void *)p));
        p += 32;
        n -= 32;
    }
    const __m128i k128 = _mm_set_epi64x((long long)crc_fold_k[2][1], (long long)crc_fold_k[2][0]);
    __m128i y = crc_fold128(_mm256_castsi256_si128(x), k128, _mm256_extracti128_si256(x, 1));
    uint64_t lo = (uint64_t)_mm_cvtsi128_si64(y), hi = (uint64_t)_mm_extract_epi64(y, 1);
    /* Leave no dirty upper register halves behind: legacy-SSE code run
     * after it (the compiler's struct copies elsewhere in the loop, libc)
     * would pay a transition on every instruction. perf: eb_poll's samples
     * rose 5 -> 45 in the recorded 1 KiB echo without this. */
    _mm256_zeroupper();
    return crc_sse42((uint32_t)__builtin_ia32_crc32di(__builtin_ia32_crc32di(0, lo), hi), p, n);
}
#endif

uint32_t rt_crc32c_portable(uint32_t crc, const void *data, size_t len)
{
    if (__builtin_expect(!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE), 0))
        pthread_once(&crc_once, crc_init);
    return ~crc_sw(~crc, data, len);
}

uint32_t rt_crc32c(uint32_t crc, const void *data, size_t len)
{
    if (__builtin_expect(!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE), 0))
        pthread_once(&crc_once, crc_init);
    uint32_t c = ~crc;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (crc_fold_hw && len >= crc_fold_min)
        return ~crc_fold(c, data, len);
    if (crc_hw)
        return ~crc_sse42(c, data, len);
#endif
    return ~crc_sw(c, data, len);
}

/* rt_crc32c for callers that already computed one (the tables are ready):
 * the writer, once per record. */
static inline uint32_t crc_update(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (crc_fold_hw && len >= crc_fold_min)
        return ~crc_fold(~crc, data, len);
    if (crc_hw)
        return ~crc_sse42(~crc, data, len);
#endif
    return ~crc_sw(~crc, data, len);
}

/* A record with data, at p (its place in the block being filled): the
 * block CRC is extended first over the records before p that it does not
 * cover yet (stored a while ago), then over the record's header from the
 * caller's stack and its data from the source, where it is hot in the
 * cache; only then are both copied in. The CRC stays the CRC of the
 * block's bytes in order (the value the per-iteration checkpoint gives),
 * and nothing just stored into the ring is read back: such loads waited
 * for the stores, whose ring lines are cold after each lap, to be owned
 * (rdtsc and a syscall-interleaved harness, docs/performance.md). Returns
 * the record's end. */
uint8_t *rt_writer_put_data(rt_writer *w, uint8_t *p, const uint8_t *hdr, size_t hlen, const void *src,
                            size_t n)
{
    uint8_t *base = w->blk + rt_block_header_bytes;
    size_t at = (size_t)(p - base);
    uint32_t crc = w->crc;
    if (at > w->crc_len) /* records since the last checkpoint, stored a while ago */
        crc = crc_update(crc, base + w->crc_len, at - w->crc_len);
    crc = crc_update(crc, hdr, hlen);
    w->crc = crc_update(crc, src, n);
    /* The header as a fixed-size copy (a few moves, not a call): the
     * bytes past hlen are then overwritten by the data, as n >=
     * rt_put_data_min >= rt_put_header_bytes. */
    memcpy(p, hdr, rt_put_header_bytes);
    memcpy(p + hlen, src, n);
    w->crc_len = at + hlen + n;
    return p + hlen + n;
}

/* ------------------------------------------------------------- varints */

static inline size_t put_varint(uint8_t *p, uint64_t v) { return rt_varint_put(p, v); }

size_t rt_put_varint(uint8_t *p, uint64_t v) { return put_varint(p, v); }

size_t rt_get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < 10; i++) {
        if (p + i >= end)
            return 0;
        uint8_t b = p[i];
        if (i == 9 && b > 1)
            return 0; /* more than 64 bits */
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ op table */

#define F(x) RT_F_##x
#define ARGS6 (F(A0) | F(A1) | F(A2) | F(A3) | F(A4) | F(A5))
static const rt_op_desc op_table[REEL_TRACE_OP_COUNT] = {
    [REEL_TRACE_NOW] = {"now", F(RESULT), 0, 0, RT_D_NONE, {0}, NULL},
    [REEL_TRACE_RANDOM] = {"random", F(A0) | F(RESULT) | F(DATA), F(A0), 0, RT_D_BYTES, {"len"}, NULL},
    [REEL_TRACE_WATCH] = {"watch", F(FD) | F(A0) | F(A1) | F(RESULT), F(FD) | F(A0) | F(A1), 0,
                          RT_D_NONE, {"old", "new"}, "fd"},
    [REEL_TRACE_POLL] = {"poll", F(A0) | F(A1) | F(A2) | F(RESULT) | F(TIME), F(A0) | F(A1),
                         F(A2) | F(TIME), RT_D_NONE, {"max", "timeout_ns", "waited_ns"}, NULL},
    [REEL_TRACE_EVENT] = {"event", ARGS6 | F(RESULT) | F(DATA), 0, 0, RT_D_BYTES,
                          {"kind", "events", "id", "value", "tag", "req_kind"}, NULL},
    [REEL_TRACE_ADMIT] = {"admit_posted", F(A0) | F(RESULT), 0, 0, RT_D_NONE, {"queued"}, NULL},
    [REEL_TRACE_SOCKET] = {"socket", F(A0) | F(A1) | F(A2) | F(RESULT), F(A0) | F(A1) | F(A2), 0,
                           RT_D_NONE, {"domain", "type", "protocol"}, NULL},
    [REEL_TRACE_SOCKETPAIR] = {"socketpair", F(A0) | F(A1) | F(A2) | F(A3) | F(FD) | F(RESULT),
                               F(A0) | F(A1) | F(A2), 0, RT_D_NONE,
                               {"domain", "type", "protocol", "fd1"}, "fd0"},
    [REEL_TRACE_PIPE] = {"pipe", F(FD) | F(A0) | F(RESULT), 0, 0, RT_D_NONE, {"fd1"}, "fd0"},
    [REEL_TRACE_CLOSE] = {"close", F(FD) | F(RESULT), F(FD), 0, RT_D_NONE, {0}, "fd"},
    [REEL_TRACE_ADOPT] = {"adopt", F(FD) | F(RESULT), F(FD), 0, RT_D_NONE, {0}, "fd"},
    [REEL_TRACE_BIND] = {"bind", F(FD) | F(ADDR) | F(RESULT), F(FD) | F(ADDR), 0, RT_D_NONE, {0}, "fd"},
    [REEL_TRACE_LISTEN] = {"listen", F(FD) | F(A0) | F(RESULT), F(FD) | F(A0), 0, RT_D_NONE,
                           {"backlog"}, "fd"},
    [REEL_TRACE_ACCEPT] = {"accept", F(FD) | F(A0) | F(A1) | F(A2) | F(RESULT) | F(ADDR),
                           F(FD) | F(A0) | F(A1), 0, RT_D_NONE, {"want_addr", "addrlen", "addrlen_out"}, "fd"},
    [REEL_TRACE_CONNECT] = {"connect", F(FD) | F(ADDR) | F(RESULT), F(FD) | F(ADDR), 0, RT_D_NONE,
                            {0}, "fd"},
    [REEL_TRACE_SHUTDOWN] = {"shutdown", F(FD) | F(A0) | F(RESULT), F(FD) | F(A0), 0, RT_D_NONE,
                             {"how"}, "fd"},
    [REEL_TRACE_READ] = {"read", F(FD) | F(A0) | F(RESULT) | F(DATA), F(FD) | F(A0), 0, RT_D_BYTES,
                         {"len"}, "fd"},
    [REEL_TRACE_WRITE] = {"write", F(FD) | F(A0) | F(A1) | F(RESULT) | F(DATA), F(FD) | F(A0) | F(A1),
                          0, RT_D_PREVIEW, {"len", "crc"}, "fd"},
    [REEL_TRACE_READV] = {"readv", F(FD) | F(A0) | F(A1) | F(RESULT) | F(DATA), F(FD) | F(A0) | F(A1),
                          0, RT_D_BYTES, {"iovcnt", "len"}, "fd"},
    [REEL_TRACE_WRITEV] = {"writev", F(FD) | F(A0) | F(A1) | F(A2) | F(RESULT) | F(DATA),
                           F(FD) | F(A0) | F(A1) | F(A2), 0, RT_D_PREVIEW, {"iovcnt", "len", "crc"}, "fd"},
    [REEL_TRACE_RECVFROM] = {"recvfrom",
                             F(FD) | F(A0) | F(A1) | F(A2) | F(A3) | F(A4) | F(RESULT) | F(DATA) | F(ADDR),
                             F(FD) | F(A0) | F(A1) | F(A2) | F(A3), 0, RT_D_BYTES,
                             {"len", "flags", "want_addr", "addrlen", "addrlen_out"}, "fd"},
    [REEL_TRACE_SENDTO] = {"sendto", F(FD) | F(A0) | F(A1) | F(A2) | F(ADDR) | F(RESULT) | F(DATA),
                           F(FD) | F(A0) | F(A1) | F(A2) | F(ADDR), 0, RT_D_PREVIEW,
                           {"len", "flags", "crc"}, "fd"},
    [REEL_TRACE_SENDFILE] = {"sendfile", F(FD) | F(A0) | F(A1) | F(A2) | F(A3) | F(RESULT),
                             F(FD) | F(A0) | F(A1) | F(A2), 0, RT_D_NONE,
                             {"in_fd", "offset", "count", "offset_out"}, "out_fd"},
    [REEL_TRACE_GETSOCKNAME] = {"getsockname", F(FD) | F(A0) | F(A1) | F(RESULT) | F(ADDR), F(FD) | F(A0),
                                0, RT_D_NONE, {"addrlen", "addrlen_out"}, "fd"},
    [REEL_TRACE_GETPEERNAME] = {"getpeername", F(FD) | F(A0) | F(A1) | F(RESULT) | F(ADDR), F(FD) | F(A0),
                                0, RT_D_NONE, {"addrlen", "addrlen_out"}, "fd"},
    [REEL_TRACE_SETSOCKOPT] = {"setsockopt", F(FD) | F(A0) | F(A1) | F(DATA) | F(RESULT),
                               F(FD) | F(A0) | F(A1) | F(DATA), 0, RT_D_BYTES, {"level", "name"}, "fd"},
    [REEL_TRACE_GETSOCKOPT] = {"getsockopt", F(FD) | F(A0) | F(A1) | F(A2) | F(RESULT) | F(DATA),
                               F(FD) | F(A0) | F(A1) | F(A2), 0, RT_D_BYTES,
                               {"level", "name", "optlen"}, "fd"},
    [REEL_TRACE_UNLINK] = {"unlink", F(DATA) | F(RESULT), F(DATA), 0, RT_D_TEXT, {0}, NULL},
    [REEL_TRACE_SUBMIT] = {"submit", ARGS6 | F(DATA) | F(ADDR) | F(RESULT), ARGS6 | F(DATA) | F(ADDR), 0,
                           RT_D_TEXT, {"kind", "id", "family", "socktype", "protocol", "flags"}, NULL},
    [REEL_TRACE_SPAWN] = {"spawn", F(DATA) | F(RESULT) | F(A0) | F(A1) | F(A2) | F(A3) | F(A4),
                          F(DATA) | F(A1) | F(A2) | F(A3) | F(A4), 0, RT_D_TEXT,
                          {"pid", "stdin", "stdout", "stderr", "new_session"}, NULL},
    [REEL_TRACE_KILL] = {"kill", F(A0) | F(A1) | F(RESULT), F(A0) | F(A1), 0, RT_D_NONE, {"pid", "sig"}, NULL},
    [REEL_TRACE_SIGNAL_WATCH] = {"signal_watch", F(A0) | F(A1) | F(RESULT), F(A0) | F(A1), 0, RT_D_NONE,
                                 {"signo", "on"}, NULL},
    [REEL_TRACE_CALLBACK] = {"callback", F(A0) | F(TIME), 0, F(TIME), RT_D_NONE, {"site"}, NULL},
    [REEL_TRACE_SITE] = {"site", F(A0) | F(A1) | F(DATA), 0, 0, RT_D_TEXT, {"id", "line"}, NULL},
    [REEL_TRACE_END] = {"end", F(A0) | F(A1), 0, 0, RT_D_NONE, {"callbacks", "callback_hash"}, NULL},
    [REEL_TRACE_EXIT] = {"exit", F(A0) | F(A1), 0, 0, RT_D_NONE, {"callbacks", "callback_hash"}, NULL},
    [REEL_TRACE_PREAD] = {"pread", F(FD) | F(A0) | F(A1) | F(RESULT) | F(DATA), F(FD) | F(A0) | F(A1), 0,
                          RT_D_BYTES, {"len", "offset"}, "fd"},
    [REEL_TRACE_STAT] = {"stat", F(DATA) | F(RESULT) | F(A0) | F(A1), F(DATA), 0, RT_D_TEXT,
                         {"mode", "ino"}, NULL},
};
#undef ARGS6

const rt_op_desc *rt_op(uint32_t op)
{
    if (op == 0 || op >= REEL_TRACE_OP_COUNT)
        return NULL;
    return &op_table[op];
}

const char *reel_trace_op_name(uint32_t op)
{
    const rt_op_desc *d = rt_op(op);
    return d ? d->name : "?";
}

#define OFF(f) offsetof(reel_backend_ops, f)
const size_t rt_ops_offsets[] = {
    OFF(destroy), OFF(now_ns), OFF(random), OFF(watch), OFF(poll), OFF(wake), OFF(admit_posted),
    OFF(socket), OFF(socketpair), OFF(pipe), OFF(close), OFF(adopt), OFF(bind), OFF(listen),
    OFF(accept), OFF(connect), OFF(shutdown), OFF(read), OFF(write), OFF(readv), OFF(writev),
    OFF(recvfrom), OFF(sendto), OFF(sendfile), OFF(getsockname), OFF(getpeername),
    OFF(setsockopt), OFF(getsockopt), OFF(unlink), OFF(submit), OFF(freeaddrinfo), OFF(spawn),
    OFF(kill), OFF(signal_watch), OFF(log), OFF(posted), OFF(callback), OFF(pread), OFF(stat),
};
#undef OFF
const size_t rt_ops_count = sizeof rt_ops_offsets / sizeof rt_ops_offsets[0];

uint64_t rt_ops_mask_of(const reel_backend_ops *ops)
{
    uint64_t mask = 0;
    for (size_t i = 0; i < rt_ops_count; i++) {
        void (*fp)(void);
        memcpy(&fp, (const char *)ops + rt_ops_offsets[i], sizeof fp);
        if (fp)
            mask |= 1ull << i;
    }
    return mask;
}

/* --------------------------------------------------------------- codec */

size_t rt_encode(uint8_t *p0, const reel_trace_record *rec, rt_delta *d)
{
    bool is_now = rec->op == REEL_TRACE_NOW;
    /* Branch-free: this runs for every record the loop thread writes. */
    uint32_t mask = (uint32_t)(rec->fd != -1) * RT_F_FD | (uint32_t)(rec->result != 0 || is_now) * RT_F_RESULT |
                    (uint32_t)(rec->arg[0] != 0) * RT_F_A0 | (uint32_t)(rec->arg[1] != 0) * RT_F_A1 |
                    (uint32_t)(rec->arg[2] != 0) * RT_F_A2 | (uint32_t)(rec->arg[3] != 0) * RT_F_A3 |
                    (uint32_t)(rec->arg[4] != 0) * RT_F_A4 | (uint32_t)(rec->arg[5] != 0) * RT_F_A5 |
                    (uint32_t)(rec->data_len != 0) * RT_F_DATA | (uint32_t)(rec->addr_len != 0) * RT_F_ADDR |
                    (uint32_t)(rec->time_ns != 0) * RT_F_TIME;

    uint8_t *p = p0;
    *p++ = (uint8_t)rec->op;
    p += put_varint(p, mask);
    if (mask & RT_F_FD)
        p += put_varint(p, rt_zigzag(rec->fd));
    if (mask & RT_F_RESULT) {
        if (is_now) {
            uint64_t now = (uint64_t)rec->result;
            p += put_varint(p, rt_zigzag((int64_t)(now - d->prev_now)));
            d->prev_now = now;
        } else {
            p += put_varint(p, rt_zigzag(rec->result));
        }
    }
    if (mask & RT_F_A0)
        p += put_varint(p, rt_zigzag(rec->arg[0]));
    if (mask & RT_F_A1)
        p += put_varint(p, rt_zigzag(rec->arg[1]));
    if (mask & RT_F_DATA) {
        p += put_varint(p, rec->data_len);
        memcpy(p, rec->data, rec->data_len);
        p += rec->data_len;
    }
    if (mask & RT_F_TIME) {
        p += put_varint(p, rt_zigzag((int64_t)(rec->time_ns - d->prev_time)));
        d->prev_time = rec->time_ns;
    }
    if (mask & RT_F_A2)
        p += put_varint(p, rt_zigzag(rec->arg[2]));
    if (mask & RT_F_ADDR) {
        p += put_varint(p, rec->addr_len);
        memcpy(p, rec->addr, rec->addr_len);
        p += rec->addr_len;
    }
    if (__builtin_expect(mask & (RT_F_A3 | RT_F_A4 | RT_F_A5), 0))
        for (int i = 3; i < 6; i++)
            if (mask & rt_arg_bit(i))
                p += put_varint(p, rt_zigzag(rec->arg[i]));
    return (size_t)(p - p0);
}

static bool get_i64(const uint8_t **p, const uint8_t *end, int64_t *v)
{
    uint64_t u;
    size_t n = rt_get_varint(*p, end, &u);
    if (!n)
        return false;
    *p += n;
    *v = rt_unzigzag(u);
    return true;
}

static bool get_bytes(const uint8_t **p, const uint8_t *end, size_t max, const uint8_t **out,
                      uint32_t *len, const char **why)
{
    uint64_t n;
    size_t k = rt_get_varint(*p, end, &n);
    if (!k) {
        *why = "malformed length";
        return false;
    }
    *p += k;
    if (n > max) {
        *why = "field longer than the limit";
        return false;
    }
    if (n > (uint64_t)(end - *p)) {
        *why = "field runs past the end of its block";
        return false;
    }
    *out = *p;
    *len = (uint32_t)n;
    *p += n;
    return true;
}

size_t rt_decode(const uint8_t *p0, const uint8_t *end, reel_trace_record *rec, rt_delta *d,
                 const char **why)
{
    const uint8_t *p = p0;
    memset(rec, 0, sizeof *rec);
    rec->fd = -1;
    if (p >= end) {
        *why = "empty record";
        return 0;
    }
    rec->op = *p++;
    if (rec->op == 0) {
        *why = "operation 0";
        return 0;
    }
    uint64_t mask;
    size_t k = rt_get_varint(p, end, &mask);
    if (!k) {
        *why = "malformed field mask";
        return 0;
    }
    p += k;
    if (mask & ~(uint64_t)RT_F_ALL) {
        *why = "unknown field bits";
        return 0;
    }
    bool is_now = rec->op == REEL_TRACE_NOW;
    int64_t v;
#define GET(dst)                           \
    do {                                   \
        if (!get_i64(&p, end, &v)) {       \
            *why = "malformed integer";    \
            return 0;                      \
        }                                  \
        dst = v;                           \
    } while (0)
    if (mask & RT_F_FD) {
        GET(v);
        if (v < INT32_MIN || v > INT32_MAX) { /* any int the program passed, -5 included */
            *why = "descriptor out of range";
            return 0;
        }
        rec->fd = (int32_t)v;
    }
    if (mask & RT_F_RESULT) {
        GET(v);
        if (is_now) {
            d->prev_now += (uint64_t)v;
            rec->result = (int64_t)d->prev_now;
        } else {
            rec->result = v;
        }
    } else if (is_now) {
        rec->result = (int64_t)d->prev_now;
    }
    if (mask & RT_F_A0)
        GET(rec->arg[0]);
    if (mask & RT_F_A1)
        GET(rec->arg[1]);
    if ((mask & RT_F_DATA) &&
        !get_bytes(&p, end, rt_data_bytes_max, &rec->data, &rec->data_len, why))
        return 0;
    if (mask & RT_F_TIME) {
        GET(v);
        d->prev_time += (uint64_t)v;
        rec->time_ns = d->prev_time;
    }
    if (mask & RT_F_A2)
        GET(rec->arg[2]);
    if ((mask & RT_F_ADDR) &&
        !get_bytes(&p, end, rt_addr_bytes_max, &rec->addr, &rec->addr_len, why))
        return 0;
    for (int i = 3; i < 6; i++)
        if (mask & rt_arg_bit(i))
            GET(rec->arg[i]);
#undef GET
    return (size_t)(p - p0);
}

/* -------------------------------------------------------------- header */

static void put_str(uint8_t *dst, size_t cap, const char *s)
{
    memset(dst, 0, cap);
    size_t n = s ? strnlen(s, cap - 1) : 0;
    rt_copy(dst, s, n);
}

void rt_header_encode(uint8_t h[rt_header_bytes], const reel_trace_info *info)
{
    memset(h, 0, rt_header_bytes);
    memcpy(h, RT_MAGIC, 8);
    rt_put_u16(h + 8, REEL_TRACE_VERSION);
    rt_put_u16(h + 10, rt_header_bytes);
    rt_put_u32(h + 12, info->flags);
    rt_put_u64(h + 16, info->start_realtime_ns);
    rt_put_u64(h + 24, info->start_monotonic_ns);
    rt_put_u64(h + 32, info->ops_mask);
    rt_put_u32(h + 40, (uint32_t)info->pid);
    put_str(h + 48, 32, info->backend);
    put_str(h + 80, 32, info->program);
    put_str(h + 112, 64, info->host);
    rt_put_u32(h + rt_header_bytes - 4, rt_crc32c(0, h, rt_header_bytes - 4));
    /* After the CRC, which takes both words as 0: a writer changes them in place. */
    rt_put_u32(h + rt_header_signal_at, rt_signal_word(0));
    rt_put_u64(h + rt_header_layout_at, rt_layout_word(rt_header_bytes, 0)); /* no ring */
}

static void get_str(char *dst, size_t cap, const uint8_t *src)
{
    memcpy(dst, src, cap);
    dst[cap - 1] = '\0';
}

/* -------------------------------------------------------------- writer */

/* Two ways to get records to the kernel (trace.h, "Crash safety"):
 *
 * mapped (a regular file): records are encoded into a ring, a shared
 * mapping of the file's first rt_header_bytes + rt_ring_bytes that is
 * reused in place, and committed by one 8-byte store of the block's
 * (length, CRC): the bytes are in the page cache the moment the store
 * retires, so a killed process leaves every committed record behind. The
 * ring's pages were allocated once, at open; the loop thread makes no
 * system call per record, and per 256 KiB of blocks one hand-off to the
 * flusher thread, which copies sealed blocks to the block stream
 * after the ring with pwrite(2) (a page-cache copy: cheaper than mapping
 * fresh pages, which is what writing the stream through the mapping cost).
 *
 * buffered (a pipe, a terminal, anything that cannot be mapped): one block
 * in memory, written whole with write(2) when full, before the loop
 * blocks, and from a fatal-signal handler (rt_writer_on_signal). */

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno ? -errno : -EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno ? -errno : -EIO;
        }
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static inline size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Publish (len, crc) with one 8-byte store: a reader of the page cache
 * sees the old pair or the new one, never half of each. */
static inline void commit(rt_writer *w) { rt_writer_commit(w); }

static inline void set_state(uint8_t *blk, uint32_t state)
{
    uint8_t b[4];
    rt_put_u32(b, state);
    uint32_t v;
    memcpy(&v, b, 4);
    __atomic_store_n((uint32_t *)(void *)(blk + 4), v, __ATOMIC_RELEASE);
}

/* Start an empty block at blk (which holds zeros or stale bytes): every
 * field first, the magic last, so a block is either absent or whole. */
static void block_start(rt_writer *w, uint8_t *blk)
{
    w->blk = blk;
    w->len = 0;
    w->first = w->records;
    w->delta = (rt_delta){0, 0};
    rt_put_u64(blk + 8, w->first);
    w->crc = rt_crc32c(0, blk + 8, 8);
    w->crc_len = 0;
    commit(w);
    set_state(blk, 0);
    uint8_t b[4];
    rt_put_u32(b, RT_BLOCK_MAGIC);
    uint32_t v;
    memcpy(&v, b, 4);
    __atomic_store_n((uint32_t *)(void *)blk, v, __ATOMIC_RELEASE);
}

/* Extend the block's CRC over the records committed since the last
 * checkpoint (one pass over a run of records instead of one per record)
 * and commit it with the length (trace.h, "Version 4"). */
static inline void checkpoint(rt_writer *w)
{
    if (w->crc_len == w->len)
        return;
    w->crc = crc_update(w->crc, w->blk + rt_block_header_bytes + w->crc_len, w->len - w->crc_len);
    w->crc_len = w->len;
    commit(w);
}

uint64_t rt_layout_word(uint32_t blocks_off, uint32_t ring_bytes)
{
    uint8_t b[6];
    rt_put_u32(b, blocks_off);
    rt_put_u16(b + 4, (uint16_t)(ring_bytes >> 12));
    uint64_t check = rt_crc32c(0, b, 6) & 0xffff;
    return (uint64_t)blocks_off | (uint64_t)(ring_bytes >> 12) << 32 | check << 48;
}

bool rt_layout_decode(uint64_t word, uint32_t *blocks_off, uint32_t *ring_bytes)
{
    *blocks_off = (uint32_t)word;
    *ring_bytes = (uint32_t)(word >> 32 & 0xffff) << 12;
    return rt_layout_word(*blocks_off, *ring_bytes) == word;
}

/* Rewrite the mapped header's layout word with one 8-byte store. */
static void set_layout(rt_writer *w, uint32_t blocks_off, uint32_t ring_bytes)
{
    uint8_t b[8];
    rt_put_u64(b, rt_layout_word(blocks_off, ring_bytes));
    uint64_t v;
    memcpy(&v, b, 8);
    __atomic_store_n((uint64_t *)(void *)(w->map + rt_header_layout_at), v, __ATOMIC_RELEASE);
}

/* Make the file at least `len` bytes, with its blocks reserved where the
 * file system can (so a full disk is an error here, not a SIGBUS later). */
static int grow_file(int fd, uint64_t len)
{
    int rc = posix_fallocate(fd, 0, (off_t)len);
    if (rc == EOPNOTSUPP || rc == EINVAL || rc == ENOSYS) {
        if (ftruncate(fd, (off_t)len) < 0)
            return -errno;
    } else if (rc) {
        return -rc;
    }
    return 0;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Copy the sealed blocks from ring position `pos` (trace offset `from`)
 * up to trace offset `upto` to the file, as one pwrite per run that does
 * not wrap. Returns 0 with the new position and offset, or an error. */
static int flush_run(rt_writer *w, uint64_t *from, uint64_t *pos, uint64_t upto)
{
    uint64_t p = *pos, off = *from, n = 0;
    while (off + n < upto) {
        uint64_t bytes = rt_block_header_bytes + rt_get_u32(w->ring + p + n + 16);
        uint64_t next = rt_ring_next(p + n, bytes, rt_ring_bytes);
        n += align8((size_t)bytes);
        if (next != p + n)
            break; /* the next block is at the ring's start */
    }
    int rc = pwrite_all(w->fd, w->ring + p, (size_t)n, w->blocks_off + (off - rt_header_bytes));
    if (rc < 0)
        return rc;
    uint64_t last = p + n; /* where the run ended; the next block is there or at 0 */
    *pos = last + rt_ring_room_bytes > rt_ring_bytes ? 0 : last;
    *from = off + n;
    return 0;
}

/* Blocks are handed to the flusher this many bytes at a time: one wake-up
 * (a futex call on each side) per 256 KiB instead of per block. What is
 * not handed over yet is in the ring, so nothing is less crash-safe. */
enum { flush_batch_bytes = 256 * 1024 };

/* Whether [pos, pos + rt_ring_room_bytes) of the ring holds no block the
 * flusher has not copied: the uncopied blocks run from flush_pos to the
 * block being sealed (at blk_off), just before pos (under mu). */
static bool ring_room(const rt_writer *w, uint64_t pos)
{
    return w->flushed == w->blk_off ? true
           : w->flush_pos < pos    ? true
                                   : pos + rt_ring_room_bytes <= w->flush_pos;
}

static void *flusher_main(void *arg)
{
    rt_writer *w = arg;
    /* SCHED_BATCH: same weight as the program's threads (no starving on a
     * busy machine, unlike SCHED_IDLE), but a woken batch thread never
     * preempts the running one. As SCHED_OTHER the flusher, woken at a
     * hand-off onto the loop thread's CPU, preempted the loop thread and
     * copied its 256 KiB there: 7-13 involuntary switches of the loop
     * thread per 1,000 recorded 1 KiB round trips, 14-198 at 16 KiB, where
     * unrecorded runs have 0.2-0.4 (bench_replay's note, load 2.5-4); as
     * SCHED_BATCH 0.1-1.7. Refused (a seccomp filter, say): it stays as is. */
    struct sched_param sp = {0};
    (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->flushed == w->sealed || (w->hold && !w->loop_waiting && !w->stop)) {
            if (w->stop)
                break;
            pthread_cond_wait(&w->to_flusher, &w->mu);
        }
        if (w->flushed == w->sealed || (w->stop && !w->drain))
            break;
        uint64_t from = w->flushed, pos = w->flush_pos, upto = w->sealed;
        w->copying = true;
        pthread_mutex_unlock(&w->mu);
        int rc = flush_run(w, &from, &pos, upto);
        pthread_mutex_lock(&w->mu);
        w->copying = false;
        if (w->hold)
            pthread_cond_broadcast(&w->to_loop); /* rt_writer_hold_flusher waits for the copy */
        if (rc < 0) {
            w->flush_err = rc;
            pthread_cond_signal(&w->to_loop);
            break;
        }
        w->flushed = from;
        w->flush_pos = pos;
        if (w->loop_waiting)
            pthread_cond_signal(&w->to_loop);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Wait until the block about to start at ring position `pos` overwrites
 * nothing uncopied (the flusher copies it; without a flusher, copy here). */
static int wait_ring_room(rt_writer *w, uint64_t pos)
{
    if (!w->flusher_on) {
        while (!ring_room(w, pos)) {
            int rc = flush_run(w, &w->flushed, &w->flush_pos, w->blk_off);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    pthread_mutex_lock(&w->mu);
    while (!ring_room(w, pos) && !w->flush_err) {
        w->sealed = w->blk_off; /* hand over every sealed block */
        w->loop_waiting = true;
        pthread_cond_signal(&w->to_flusher); /* held back (tests): copy what makes room */
        pthread_cond_wait(&w->to_loop, &w->mu);
    }
    w->loop_waiting = false;
    int rc = w->flush_err;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Mapped: seal the block being filled and start the next one after it in
 * the ring. */
static int roll_mapped(rt_writer *w)
{
    checkpoint(w); /* a sealed block's CRC covers all of it */
    uint64_t bytes = rt_block_header_bytes + w->len;
    uint64_t off = w->blk_off + align8((size_t)bytes);
    uint64_t pos = rt_ring_next(w->blk_pos, bytes, rt_ring_bytes);
    uint8_t *prev = w->blk;
    int rc = wait_ring_room(w, pos);
    if (rc < 0)
        return rc;
    if (pos < w->blk_pos)
        w->laps++;
    block_start(w, w->ring + pos);
    w->blk_off = off;
    w->blk_pos = pos;
    /* Sealed only once the next block exists: a reader that finds a sealed
     * block can rely on one after it. */
    set_state(prev, RT_BLOCK_SEALED);
    if (w->flusher_on && off - w->sealed >= flush_batch_bytes) { /* only this thread writes sealed */
        pthread_mutex_lock(&w->mu);
        w->sealed = off;
        pthread_cond_signal(&w->to_flusher);
        pthread_mutex_unlock(&w->mu);
    }
    return 0;
}

/* Buffered: write the block being filled (sealed: another follows). */
static int flush_buffered(rt_writer *w, bool sealed)
{
    checkpoint(w);
    size_t n = align8(rt_block_header_bytes + w->len);
    memset(w->blk + rt_block_header_bytes + w->len, 0, n - rt_block_header_bytes - w->len);
    set_state(w->blk, sealed ? RT_BLOCK_SEALED : 0);
    int rc = write_all(w->fd, w->blk, sealed ? n : rt_block_header_bytes + w->len);
    if (rc < 0)
        return rc;
    w->bytes += n;
    block_start(w, w->blk);
    return 0;
}

/* Map the header and the ring of a regular file; false if it cannot be. */
static int open_mapped(rt_writer *w, const uint8_t *h)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pg = page > 0 ? (size_t)page : 4096;
    size_t len = (rt_header_bytes + rt_ring_bytes + pg - 1) & ~(pg - 1);
    int rc = grow_file(w->fd, len);
    if (rc < 0)
        return rc;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, 0);
    if (m == MAP_FAILED)
        return -errno;
    (void)madvise(m, len, MADV_POPULATE_WRITE); /* kernels before 5.14: faults on demand */
    w->map = m;
    w->map_len = len;
    w->ring = w->map + rt_header_bytes;
    w->blocks_off = rt_header_bytes + rt_ring_bytes;
    memcpy(w->map, h, rt_header_bytes);
    set_layout(w, (uint32_t)w->blocks_off, rt_ring_bytes);
    w->mapped = true;
    w->blk_off = w->sealed = w->flushed = rt_header_bytes;
    block_start(w, w->ring);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->to_flusher, NULL);
    pthread_cond_init(&w->to_loop, NULL);
    w->flusher_on = pthread_create(&w->flusher, NULL, flusher_main, w) == 0;
    return 0;
}

int rt_writer_open(rt_writer **out, const char *path, const reel_trace_info *info)
{
    *out = NULL;
    rt_writer *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int rc = -errno;
        free(w);
        return rc;
    }
    uint8_t h[rt_header_bytes];
    rt_header_encode(h, info);
    struct stat st;
    int rc = 0;
    if (fstat(w->fd, &st) == 0 && S_ISREG(st.st_mode) && open_mapped(w, h) < 0)
        rc = ftruncate(w->fd, 0) < 0 ? -errno : 0; /* not mappable after all: write it instead */
    if (!w->mapped && rc == 0) {
        w->buf = malloc(rt_block_header_bytes + rt_block_bytes_max + 8);
        rc = w->buf ? write_all(w->fd, h, sizeof h) : -ENOMEM;
        if (rc == 0) {
            w->bytes = w->blk_off = sizeof h;
            block_start(w, w->buf);
        }
    }
    if (rc < 0) {
        rt_writer_abandon(w);
        return rc;
    }
    *out = w;
    return 0;
}

void rt_writer_checkpoint(rt_writer *w)
{
    if (!w->err && !w->ended)
        checkpoint(w);
}

int rt_writer_flush(rt_writer *w)
{
    if (w->err)
        return w->err;
    if (w->mapped || !w->len)
        return 0; /* mapped: every committed record is in the page cache */
    int rc = flush_buffered(w, true);
    if (rc < 0)
        w->err = rc;
    return rc;
}

int rt_writer_append(rt_writer *w, const reel_trace_record *rec)
{
    if (__builtin_expect(w->err || w->ended, 0))
        return w->err ? w->err : -EPIPE; /* after the end, the ring may be cut from the file */
    if (rec->data_len > rt_data_bytes_max || rec->addr_len > rt_addr_bytes_max)
        return -EMSGSIZE;
    size_t bound = rt_record_fixed_bytes_max + rec->data_len + 5 + rec->addr_len + 5;
    if (w->len && w->len + bound > rt_block_target_bytes) {
        int rc = w->mapped ? roll_mapped(w) : flush_buffered(w, true);
        if (rc < 0) {
            w->err = rc;
            return rc;
        }
    }
    uint8_t *p = w->blk + rt_block_header_bytes + w->len;
    size_t n = rt_encode(p, rec, &w->delta);
    w->len += n;
    w->records++;
    commit(w); /* the length only: the CRC catches up at the next checkpoint */
    return 0;
}

/* The fast paths' slow side (trace.h): close the block and start the
 * next, or write the buffered one out. */
int rt_writer_roll(rt_writer *w)
{
    int e = w->mapped ? roll_mapped(w) : flush_buffered(w, true);
    if (e < 0)
        w->err = e;
    return e;
}

bool rt_writer_pending(const rt_writer *w) { return !w->mapped && w->len != 0; }
uint64_t rt_writer_records(const rt_writer *w) { return w->records; }
uint64_t rt_writer_bytes(const rt_writer *w) { return w->blk_off + rt_block_header_bytes + w->len; }
size_t rt_writer_buffer_bytes(const rt_writer *w)
{
    return w->mapped ? w->map_len : rt_block_header_bytes + rt_block_bytes_max + 8;
}
bool rt_writer_mapped(const rt_writer *w) { return w->mapped; }
uint64_t rt_writer_ring_laps(const rt_writer *w) { return w->laps; }

void rt_writer_hold_flusher(rt_writer *w, bool hold)
{
    if (!w->flusher_on)
        return;
    pthread_mutex_lock(&w->mu);
    w->hold = hold;
    pthread_cond_signal(&w->to_flusher);
    while (hold && w->copying)
        pthread_cond_wait(&w->to_loop, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

void rt_writer_on_signal(rt_writer *w, int signo)
{
    /* Only async-signal-safe steps: stores into the mapping, pwrite(2). */
    uint8_t b[4];
    rt_put_u32(b, rt_signal_word(signo));
    if (w->mapped) {
        uint32_t v;
        memcpy(&v, b, 4);
        __atomic_store_n((uint32_t *)(void *)(w->map + rt_header_signal_at), v, __ATOMIC_RELEASE);
        return;
    }
    /* The header is already out: a regular file takes the signal word in
     * place; a pipe cannot (pwrite fails with ESPIPE, harmlessly). */
    ssize_t k = pwrite(w->fd, b, 4, rt_header_signal_at);
    if (w->len && !w->err) { /* the committed part of the block, whole under its CRC, appended */
        uint32_t crc = crc_update(crc_update(0, w->blk + 8, 8), w->blk + rt_block_header_bytes, w->len);
        rt_put_u32(w->blk + 16, (uint32_t)w->len);
        rt_put_u32(w->blk + 20, crc);
        k = write(w->fd, w->blk, rt_block_header_bytes + w->len);
    }
    (void)k;
}

/* Stop the flusher: after it copied every sealed block (drain), or at
 * once. */
static void stop_flusher(rt_writer *w, bool drain)
{
    if (!w->flusher_on)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    w->drain = drain;
    if (drain)
        w->sealed = w->blk_off;
    pthread_cond_signal(&w->to_flusher);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->flusher, NULL);
    w->flusher_on = false;
    if (w->flush_err && !w->err)
        w->err = w->flush_err;
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->to_flusher);
    pthread_cond_destroy(&w->to_loop);
}

void rt_writer_abandon(rt_writer *w)
{
    if (!w)
        return;
    /* After fork() the flusher thread is not in this process: forget it.
     * The parent's blocks are the parent's to write: unmap, write nothing. */
    if (w->map)
        munmap(w->map, w->map_len);
    close(w->fd);
    free(w->buf);
    free(w);
}

int rt_writer_end(rt_writer *w)
{
    if (w->err || w->ended)
        return w->err;
    if (!w->mapped)
        return rt_writer_flush(w);
    checkpoint(w); /* a clean end leaves every block whole under its CRC */
    w->ended = true;
    uint64_t end = rt_writer_bytes(w);
    if (!w->laps) {
        /* The ring's first lap is the block stream itself, at the offsets a
         * file without a ring has it: cut the file there, then drop the
         * ring. Killed in between, a reader finds no block after the ring
         * and takes them all from the ring. */
        stop_flusher(w, false);
        if (ftruncate(w->fd, (off_t)end) < 0)
            return w->err = -errno;
        set_layout(w, rt_header_bytes, 0);
        return 0;
    }
    /* Every sealed block to the file, then the last one; the file is cut
     * after it; then the ring leaves the layout and its range is freed. */
    stop_flusher(w, true);
    if (w->err)
        return w->err;
    if (w->flushed != w->blk_off)
        w->err = flush_run(w, &w->flushed, &w->flush_pos, w->blk_off); /* no flusher thread */
    uint64_t at = w->blocks_off + (w->blk_off - rt_header_bytes);
    if (!w->err)
        w->err = pwrite_all(w->fd, w->blk, rt_block_header_bytes + w->len, at);
    if (!w->err && ftruncate(w->fd, (off_t)(at + rt_block_header_bytes + w->len)) < 0)
        w->err = -errno;
    if (w->err)
        return w->err;
    set_layout(w, (uint32_t)w->blocks_off, 0);
#ifdef FALLOC_FL_PUNCH_HOLE
    (void)fallocate(w->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, rt_header_bytes, rt_ring_bytes);
#endif
    return 0;
}

int rt_writer_close(rt_writer *w, bool sync)
{
    if (!w)
        return 0;
    int rc = w->err;
    if (w->mapped) {
        rc = rt_writer_end(w);
        stop_flusher(w, false); /* after an error: the ring keeps what the file lacks */
    } else if (rc == 0 && w->len) {
        rc = write_all(w->fd, w->blk, rt_block_header_bytes + w->len);
    }
    if (sync && fsync(w->fd) < 0 && rc == 0 && errno != EINVAL && errno != EROFS)
        rc = -errno;
    rt_writer_abandon(w);
    return rc;
}

/* -------------------------------------------------------------- reader */

typedef struct rt_site {
    char *func, *file;
    int line;
} rt_site;

struct reel_trace_reader {
    int fd;                     /* -1: reading from memory */
    const uint8_t *mem;
    size_t mem_len;
    bool seq;                   /* fd cannot seek (a pipe): read in order */
    uint64_t pos;               /* seq: offset of the next unread byte */
    reel_trace_info info;
    uint32_t hbytes;            /* header bytes: the ring starts here */
    uint32_t blocks_off;        /* file offset of the block stream */
    uint32_t ring_bytes;        /* 0: no ring */
    uint8_t *buf;               /* block payload */
    size_t blk_len, cur;
    uint64_t blk_off;           /* file offset of the current block's header */
    bool blk_sealed;            /* another block follows the current one */
    size_t blk_verified;        /* payload bytes under the block's CRC (version 4: the
                                 * last, unsealed block may hold more, committed after
                                 * its last checkpoint) */
    bool started;               /* a block was loaded */
    uint64_t next_l;            /* stream offset of the next block */
    uint64_t next_ring;         /* its ring position */
    uint64_t consumed;          /* header + stream bytes up to the current block's end */
    char ring_why[160];         /* why the ring did not hold the block looked for */
    uint64_t next_index;
    rt_delta delta;
    bool ended;
    bool unfinished;            /* reached the end of a recording that did not finish */
    int err;
    uint64_t err_index, err_offset;  /* where the error is */
    char msg[512];
    rt_site *sites;
    uint32_t nsites, sites_cap;
};

/* Read up to n bytes at offset `off` of the source; returns the count
 * (short only at the end) or -errno. A pipe is read in order (skipping
 * forward); going back in one is -ESPIPE. */
static ssize_t src_read(reel_trace_reader *r, uint64_t off, void *dst, size_t n)
{
    if (r->fd < 0) {
        size_t left = off < r->mem_len ? r->mem_len - (size_t)off : 0;
        if (n > left)
            n = left;
        rt_copy(dst, r->mem + off, n);
        return (ssize_t)n;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t k;
        if (!r->seq) {
            k = pread(r->fd, (uint8_t *)dst + got, n - got, (off_t)(off + got));
            if (k < 0 && errno == ESPIPE && off + got == 0) {
                r->seq = true;
                continue;
            }
        } else if (off + got < r->pos) {
            return -ESPIPE;
        } else if (off + got > r->pos) { /* skip forward */
            uint8_t skip[4096];
            uint64_t want = off + got - r->pos;
            k = read(r->fd, skip, want < sizeof skip ? (size_t)want : sizeof skip);
            if (k > 0) {
                r->pos += (uint64_t)k;
                continue;
            }
        } else {
            k = read(r->fd, (uint8_t *)dst + got, n - got);
            if (k > 0)
                r->pos += (uint64_t)k;
        }
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return errno ? -errno : -EIO;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

__attribute__((format(printf, 3, 4)))
static int fail(reel_trace_reader *r, int code, const char *fmt, ...)
{
    if (!r->err) {
        r->err_index = r->next_index;
        r->err_offset = r->blk_len && r->cur < r->blk_len ? r->blk_off + rt_block_header_bytes + r->cur
                                                          : r->blk_off;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->err = code;
    return code;
}

static int parse_header(reel_trace_reader *r)
{
    uint8_t h[rt_header_bytes_max];
    ssize_t n = src_read(r, 0, h, 12);
    if (n < 0)
        return fail(r, (int)n, "cannot read the trace: %s", reel_strerror((int)n));
    if (n < 8 || memcmp(h, RT_MAGIC, 8) != 0)
        return fail(r, REEL_ECORRUPT, "not a reel trace: no %s magic at byte offset 0", RT_MAGIC);
    if (n < 12)
        return fail(r, REEL_ECORRUPT, "trace truncated in its header (%zd of %d bytes)", n,
                    (int)rt_header_bytes);
    uint16_t version = rt_get_u16(h + 8);
    uint16_t hbytes = rt_get_u16(h + 10);
    if (version == 0)
        return fail(r, REEL_ECORRUPT, "trace header corrupt: version 0");
    if (version > REEL_TRACE_VERSION)
        return fail(r, -ENOTSUP, "trace format version %u is newer than this reader (version %d)",
                    version, REEL_TRACE_VERSION);
    if (version < 2)
        return fail(r, -ENOTSUP, "trace format version %u is older than this reader reads (versions 2 "
                    "to %d): record the run again with this build", version, REEL_TRACE_VERSION);
    if (hbytes < rt_header_bytes || hbytes > rt_header_bytes_max)
        return fail(r, REEL_ECORRUPT, "trace header corrupt: header size %u out of range", hbytes);
    n = src_read(r, 12, h + 12, hbytes - 12u);
    if (n < 0)
        return fail(r, (int)n, "cannot read the trace: %s", reel_strerror((int)n));
    if ((size_t)n < hbytes - 12u)
        return fail(r, REEL_ECORRUPT, "trace truncated in its header (%zd of %u bytes)", n + 12, hbytes);
    /* The signal word is written after the header (by a fatal-signal
     * handler): the checksum takes it as 0. */
    uint32_t sigword = rt_get_u32(h + rt_header_signal_at);
    memset(h + rt_header_signal_at, 0, 4);
    if ((sigword >> 16) != (~sigword & 0xffff))
        return fail(r, REEL_ECORRUPT, "trace header corrupt: signal word %08x is not a value and its "
                    "complement", sigword);
    uint32_t signo = sigword & 0xffff;
    /* Version 3: the layout word, also outside the CRC, checks itself. */
    uint32_t blocks_off = hbytes, ring = 0;
    if (version >= 3) {
        uint64_t word = rt_get_u64(h + rt_header_layout_at);
        memset(h + rt_header_layout_at, 0, 8);
        if (!rt_layout_decode(word, &blocks_off, &ring))
            return fail(r, REEL_ECORRUPT, "trace header corrupt: layout word %016llx fails its check",
                        (unsigned long long)word);
        if (blocks_off < hbytes + (uint64_t)ring || blocks_off > hbytes + (uint64_t)rt_ring_bytes_max ||
            blocks_off % 8 || ring > rt_ring_bytes_max || (ring && ring < rt_ring_room_bytes))
            return fail(r, REEL_ECORRUPT, "trace header corrupt: blocks at byte offset %u with a ring of "
                        "%u bytes (header %u bytes; ring at most %d, at least %d)", blocks_off, ring, hbytes,
                        (int)rt_ring_bytes_max, (int)rt_ring_room_bytes);
    }
    uint32_t stored = rt_get_u32(h + hbytes - 4);
    uint32_t crc = rt_crc32c(0, h, hbytes - 4u);
    if (stored != crc)
        return fail(r, REEL_ECORRUPT,
                    "trace header corrupt: checksum mismatch (stored %08x, computed %08x)", stored, crc);
    reel_trace_info *in = &r->info;
    in->version = version;
    in->flags = rt_get_u32(h + 12);
    in->start_realtime_ns = rt_get_u64(h + 16);
    in->start_monotonic_ns = rt_get_u64(h + 24);
    in->ops_mask = rt_get_u64(h + 32);
    in->pid = (int32_t)rt_get_u32(h + 40);
    get_str(in->backend, sizeof in->backend, h + 48);
    get_str(in->program, sizeof in->program, h + 80);
    get_str(in->host, sizeof in->host, h + 112);
    in->killed_by_signal = (int32_t)signo;
    r->hbytes = hbytes;
    r->blocks_off = blocks_off;
    r->ring_bytes = ring;
    r->consumed = hbytes;
    return 0;
}

static int reader_new(reel_trace_reader **out, int fd, const void *mem, size_t len, char *err,
                      size_t err_cap)
{
    *out = NULL;
    reel_trace_reader *r = calloc(1, sizeof *r);
    if (!r) {
        if (fd >= 0)
            close(fd);
        if (err && err_cap)
            snprintf(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    r->fd = fd;
    r->mem = mem;
    r->mem_len = len;
    r->buf = malloc(rt_block_bytes_max);
    int rc = r->buf ? parse_header(r) : fail(r, -ENOMEM, "out of memory");
    if (rc < 0) {
        if (err && err_cap)
            snprintf(err, err_cap, "%s", r->msg);
        reel_trace_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

int reel_trace_open(reel_trace_reader **out, const char *path, char *err, size_t err_cap)
{
    if (out)
        *out = NULL;
    if (!out || !path)
        return -EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        if (err && err_cap)
            snprintf(err, err_cap, "cannot open %s: %s", path, reel_strerror(rc));
        return rc;
    }
    return reader_new(out, fd, NULL, 0, err, err_cap);
}

int reel_trace_open_memory(reel_trace_reader **out, const void *data, size_t len, char *err,
                           size_t err_cap)
{
    if (out)
        *out = NULL;
    if (!out || (!data && len))
        return -EINVAL;
    return reader_new(out, -1, data ? data : "", len, err, err_cap);
}

const reel_trace_info *reel_trace_get_info(const reel_trace_reader *r) { return r ? &r->info : NULL; }
const char *reel_trace_error(const reel_trace_reader *r) { return r && r->err ? r->msg : ""; }
uint64_t reel_trace_records_read(const reel_trace_reader *r) { return r ? r->next_index : 0; }
uint64_t reel_trace_bytes_read(const reel_trace_reader *r) { return r ? r->consumed : 0; }

void reel_trace_close(reel_trace_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    for (uint32_t i = 0; i < r->nsites; i++) {
        free(r->sites[i].func);
        free(r->sites[i].file);
    }
    free(r->sites);
    free(r->buf);
    free(r);
}

bool reel_trace_unfinished(const reel_trace_reader *r, int *signo)
{
    if (signo)
        *signo = r && r->unfinished ? r->info.killed_by_signal : 0;
    return r && r->unfinished;
}

void rt_reader_error_pos(const reel_trace_reader *r, uint64_t *index, uint64_t *offset)
{
    *index = r->err_index;
    *offset = r->err_offset;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Version 4: the CRC of an unsealed block may cover only the records up
 * to its last checkpoint. Find that record boundary: 1 with it in
 * *verified, 0 if no boundary's CRC matches (damage). */
static int crc_prefix(const uint8_t *buf, uint32_t len, uint32_t crc0, uint32_t stored, uint32_t *verified)
{
    uint32_t c = crc0, at = 0;
    rt_delta d = {0, 0};
    reel_trace_record rec;
    for (;;) {
        if (c == stored) {
            *verified = at;
            return 1;
        }
        const char *why;
        size_t n = at < len ? rt_decode(buf + at, buf + len, &rec, &d, &why) : 0;
        if (!n)
            return 0;
        c = rt_crc32c(c, buf + at, n);
        at += (uint32_t)n;
    }
}

/* Read the block at file offset `off` into r->buf: 1 if it is whole and
 * the block expected next, 0 if there is none (the end of the source, or
 * zeros), else a negative code with the reason in why (trunc: the bytes
 * end inside it). `room` bounds its size (a ring slot). r->err is left
 * alone: the caller decides which reason to report. *verified_out: the
 * payload bytes its CRC covers (crc_prefix). */
static int read_block(reel_trace_reader *r, uint64_t off, uint64_t room, uint32_t *len_out,
                      uint32_t *state_out, uint32_t *verified_out, char *why, size_t why_cap, bool *trunc)
{
    uint8_t h[rt_block_header_bytes];
    *trunc = false;
    ssize_t n = src_read(r, off, h, sizeof h);
    if (n < 0) {
        snprintf(why, why_cap, "cannot read: %s", reel_strerror((int)n));
        return (int)n;
    }
    if (all_zero(h, (size_t)n))
        return 0;
    if (n < (ssize_t)sizeof h) {
        *trunc = true;
        snprintf(why, why_cap, "block header has %zd of %d bytes", n, (int)rt_block_header_bytes);
        return REEL_ECORRUPT;
    }
    if (rt_get_u32(h) != RT_BLOCK_MAGIC) {
        snprintf(why, why_cap, "bad block magic");
        return REEL_ECORRUPT;
    }
    uint32_t state = rt_get_u32(h + 4);
    uint64_t first = rt_get_u64(h + 8);
    uint32_t len = rt_get_u32(h + 16);
    uint32_t stored = rt_get_u32(h + 20);
    if (len > rt_block_bytes_max || (state & ~(uint32_t)RT_BLOCK_SEALED) ||
        rt_block_header_bytes + (uint64_t)len > room) {
        snprintf(why, why_cap, "block claims %u payload bytes (limit %d%s), state %#x", len,
                 (int)rt_block_bytes_max, rt_block_header_bytes + (uint64_t)len > room ? ", past the ring's end" : "",
                 state);
        return REEL_ECORRUPT;
    }
    n = src_read(r, off + rt_block_header_bytes, r->buf, len);
    if (n < 0) {
        snprintf(why, why_cap, "cannot read: %s", reel_strerror((int)n));
        return (int)n;
    }
    if ((size_t)n < len) {
        *trunc = true;
        snprintf(why, why_cap, "block holds %zd of its %u payload bytes", n, len);
        return REEL_ECORRUPT;
    }
    uint32_t crc0 = rt_crc32c(0, h + 8, 8);
    uint32_t crc = rt_crc32c(crc0, r->buf, len);
    *verified_out = len;
    if (crc != stored &&
        (r->info.version < 4 || (state & RT_BLOCK_SEALED) || !crc_prefix(r->buf, len, crc0, stored, verified_out))) {
        snprintf(why, why_cap, "block checksum mismatch (stored %08x, computed %08x)", stored, crc);
        return REEL_ECORRUPT;
    }
    if (first != r->next_index) {
        snprintf(why, why_cap, "block starts at record %llu", (unsigned long long)first);
        return REEL_ECORRUPT;
    }
    if ((state & RT_BLOCK_SEALED) && len == 0) {
        snprintf(why, why_cap, "sealed empty block");
        return REEL_ECORRUPT;
    }
    *len_out = len;
    *state_out = state;
    return 1;
}

/* Load the next block: from the block stream in the file, or, where the
 * file does not hold it whole, from the ring (trace.h, "Crash safety").
 * Returns 1, 0 if there is none, or an error. */
static int load_block(reel_trace_reader *r)
{
    uint64_t l = r->next_l, pos = r->next_ring;
    uint64_t off = r->blocks_off + l;
    r->blk_off = off;
    r->blk_len = 0;
    r->cur = 0;
    r->ring_why[0] = '\0';
    char why[160];
    bool trunc;
    uint32_t len = 0, state = 0, verified = 0;
    int rc = read_block(r, off, UINT64_MAX, &len, &state, &verified, why, sizeof why, &trunc);
    if (rc != 1 && r->ring_bytes) {
        char rwhy[160];
        bool rtrunc;
        int rrc = read_block(r, r->hbytes + pos, r->ring_bytes - pos, &len, &state, &verified, rwhy, sizeof rwhy,
                             &rtrunc);
        if (rrc == 1) {
            off = r->blk_off = r->hbytes + pos;
            rc = 1;
        } else if (rrc < 0 && rrc != REEL_ECORRUPT) { /* not a stale slot: the ring cannot be read */
            return fail(r, rrc, "cannot read the trace's ring at byte offset %llu: %s%s",
                        (unsigned long long)(r->hbytes + pos), rwhy,
                        rrc == -ESPIPE ? " (a trace that holds a ring is read from its file, not a pipe)" : "");
        } else if (rrc < 0) {
            snprintf(r->ring_why, sizeof r->ring_why, "%s", rwhy);
        }
    }
    if (rc == 0)
        return 0;
    unsigned long long idx = (unsigned long long)r->next_index, at = (unsigned long long)off;
    if (rc < 0 && rc != REEL_ECORRUPT)
        return fail(r, rc, "cannot read the trace at byte offset %llu: %s", at, why);
    if (rc < 0)
        return fail(r, REEL_ECORRUPT, "trace %s at record %llu (byte offset %llu): %s",
                    trunc ? "truncated" : "corrupt", idx, at, why);
    r->blk_len = len;
    r->blk_verified = verified;
    r->blk_sealed = state & RT_BLOCK_SEALED;
    r->delta = (rt_delta){0, 0};
    r->consumed = r->hbytes + l + rt_block_header_bytes + len;
    r->next_l = l + align8(rt_block_header_bytes + len);
    r->next_ring = r->ring_bytes ? rt_ring_next(pos, rt_block_header_bytes + len, r->ring_bytes) : 0;
    return 1;
}

/* The records of an unsealed block without an end record are the last
 * the recording committed: the run did not finish (it was killed, crashed
 * or is still going). Anything that looks like the next block after it is
 * damage (a cleared seal bit), not a crash. */
static int reached_unfinished_end(reel_trace_reader *r)
{
    reel_trace_reader keep = *r;
    if (load_block(r) == 1)
        return fail(r, REEL_ECORRUPT, "trace corrupt at record %llu (byte offset %llu): a block follows "
                    "the block the recording ended in", (unsigned long long)r->next_index,
                    (unsigned long long)r->blk_off);
    /* A damaged stray block after the end is stale bytes. */
    r->err = 0;
    r->msg[0] = '\0';
    r->next_index = keep.next_index;
    r->blk_off = keep.blk_off;
    r->blk_len = r->cur = 0;
    r->next_l = keep.next_l;
    r->next_ring = keep.next_ring;
    r->consumed = keep.consumed;
    r->unfinished = true;
    return 0;
}

/* SITE: remember func/file for later CALLBACK records. */
static int add_site(reel_trace_reader *r, reel_trace_record *rec)
{
    unsigned long long idx = (unsigned long long)rec->index, at = (unsigned long long)rec->offset;
    if (rec->arg[0] != (int64_t)r->nsites + 1 || r->nsites >= rt_sites_max)
        return fail(r, REEL_ECORRUPT, "trace corrupt at record %llu (byte offset %llu): site id %lld "
                    "out of sequence", idx, at, (long long)rec->arg[0]);
    const char *d = (const char *)rec->data;
    size_t n = rec->data_len;
    const char *z1 = n ? memchr(d, 0, n) : NULL;
    const char *z2 = z1 ? memchr(z1 + 1, 0, n - (size_t)(z1 + 1 - d)) : NULL;
    if (!z2 || n > rt_site_text_bytes || rec->arg[1] < 0 || rec->arg[1] > INT32_MAX)
        return fail(r, REEL_ECORRUPT, "trace corrupt at record %llu (byte offset %llu): malformed site",
                    idx, at);
    if (r->nsites == r->sites_cap) {
        uint32_t cap = r->sites_cap ? r->sites_cap * 2 : 64;
        rt_site *s = realloc(r->sites, cap * sizeof *s);
        if (!s)
            return fail(r, -ENOMEM, "out of memory");
        r->sites = s;
        r->sites_cap = cap;
    }
    rt_site *s = &r->sites[r->nsites];
    s->func = strdup(d);
    s->file = strdup(z1 + 1);
    s->line = (int)rec->arg[1];
    if (!s->func || !s->file) {
        free(s->func);
        free(s->file);
        return fail(r, -ENOMEM, "out of memory");
    }
    r->nsites++;
    rec->func = s->func;
    rec->file = s->file;
    rec->line = s->line;
    return 0;
}

int reel_trace_next(reel_trace_reader *r, reel_trace_record *rec)
{
    if (!r || !rec)
        return -EINVAL;
    if (r->err)
        return r->err;
    if (r->unfinished)
        return 0;
    if (r->ended) {
        uint8_t probe;
        bool in_file = r->blk_off >= r->blocks_off; /* not the ring: its slots hold stale bytes */
        if (r->cur < r->blk_len ||
            (in_file && src_read(r, r->blk_off + rt_block_header_bytes + r->blk_len, &probe, 1) > 0))
            return fail(r, REEL_ECORRUPT, "trace corrupt after record %llu: data after the end record",
                        (unsigned long long)(r->next_index - 1));
        return 0;
    }
    while (r->cur >= r->blk_len) {
        if (r->started && !r->blk_sealed)
            return reached_unfinished_end(r);
        int rc = load_block(r);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            if (r->started)
                return fail(r, REEL_ECORRUPT, "trace truncated at record %llu (byte offset %llu): the "
                            "block before says another follows%s%s%s", (unsigned long long)r->next_index,
                            (unsigned long long)r->blk_off, r->ring_why[0] ? " (the ring's slot: " : "",
                            r->ring_why, r->ring_why[0] ? ")" : "");
            r->unfinished = true; /* stopped before its first block */
            return 0;
        }
        r->started = true;
    }
    unsigned long long idx = (unsigned long long)r->next_index;
    unsigned long long at = (unsigned long long)(r->blk_off + rt_block_header_bytes + r->cur);
    const char *why = "malformed record";
    size_t used = rt_decode(r->buf + r->cur, r->buf + r->blk_len, rec, &r->delta, &why);
    if (!used)
        return fail(r, REEL_ECORRUPT, "trace corrupt at record %llu (byte offset %llu): %s", idx, at, why);
    rec->index = r->next_index;
    rec->offset = at;
    switch (rec->op) {
    case REEL_TRACE_SITE: {
        int rc = add_site(r, rec);
        if (rc < 0)
            return rc;
        break;
    }
    case REEL_TRACE_CALLBACK:
        if (rec->arg[0] == 0) {
            rec->func = rec->file = "?";
        } else if (rec->arg[0] > 0 && rec->arg[0] <= (int64_t)r->nsites) {
            const rt_site *s = &r->sites[rec->arg[0] - 1];
            rec->func = s->func;
            rec->file = s->file;
            rec->line = s->line;
        } else {
            return fail(r, REEL_ECORRUPT, "trace corrupt at record %llu (byte offset %llu): callback "
                        "names unknown site %lld", idx, at, (long long)rec->arg[0]);
        }
        break;
    case REEL_TRACE_END:
    case REEL_TRACE_EXIT:
        if (r->blk_sealed) /* the writer never seals the block it ends in */
            return fail(r, REEL_ECORRUPT, "trace corrupt at record %llu (byte offset %llu): the end record "
                        "is in a block that says another follows", idx, at);
        if (r->cur + used > r->blk_verified) /* a clean end checkpoints the CRC over it */
            return fail(r, REEL_ECORRUPT, "trace corrupt at record %llu (byte offset %llu): the end record "
                        "is not under its block's checksum", idx, at);
        r->ended = true;
        break;
    default:
        break;
    }
    r->next_index++;
    r->cur += used;
    return 1;
}

/* ------------------------------------------------- getaddrinfo answers */

/* Encoding: varint count, then per entry varints flags, family, socktype,
 * protocol, then addr (varint len + bytes) and canonname (varint len +
 * bytes). */
int rt_encode_addrinfo(const struct addrinfo *ai, uint8_t *buf, size_t cap)
{
    size_t count = 0, need = 10;
    for (const struct addrinfo *a = ai; a; a = a->ai_next) {
        count++;
        size_t canon = a->ai_canonname ? strlen(a->ai_canonname) : 0;
        if (a->ai_addrlen > rt_addr_bytes_max || canon > 1024)
            return -EMSGSIZE;
        need += 4 * 10 + 5 + a->ai_addrlen + 5 + canon;
    }
    if (need > cap)
        return -EMSGSIZE;
    uint8_t *p = buf;
    p += rt_put_varint(p, count);
    for (const struct addrinfo *a = ai; a; a = a->ai_next) {
        p += rt_put_varint(p, rt_zigzag(a->ai_flags));
        p += rt_put_varint(p, rt_zigzag(a->ai_family));
        p += rt_put_varint(p, rt_zigzag(a->ai_socktype));
        p += rt_put_varint(p, rt_zigzag(a->ai_protocol));
        p += rt_put_varint(p, a->ai_addrlen);
        rt_copy(p, a->ai_addr, a->ai_addrlen);
        p += a->ai_addrlen;
        size_t canon = a->ai_canonname ? strlen(a->ai_canonname) : 0;
        p += rt_put_varint(p, canon);
        memcpy(p, a->ai_canonname ? a->ai_canonname : "", canon);
        p += canon;
    }
    return (int)(p - buf);
}

void rt_free_addrinfo(struct addrinfo *ai)
{
    while (ai) {
        struct addrinfo *next = ai->ai_next;
        free(ai->ai_canonname);
        free(ai->ai_addr);
        free(ai);
        ai = next;
    }
}

int rt_decode_addrinfo(const uint8_t *p, size_t len, struct addrinfo **out)
{
    const uint8_t *end = p + len;
    *out = NULL;
    uint64_t count;
    size_t k = rt_get_varint(p, end, &count);
    if (!k || count > len)
        return REEL_ECORRUPT;
    p += k;
    struct addrinfo *head = NULL, **tail = &head;
    const char *why;
    for (uint64_t i = 0; i < count; i++) {
        int64_t f[4];
        for (int j = 0; j < 4; j++)
            if (!get_i64(&p, end, &f[j]) || f[j] < INT32_MIN || f[j] > INT32_MAX)
                goto bad;
        const uint8_t *addr, *canon;
        uint32_t alen, clen;
        if (!get_bytes(&p, end, rt_addr_bytes_max, &addr, &alen, &why) ||
            !get_bytes(&p, end, 1024, &canon, &clen, &why))
            goto bad;
        struct addrinfo *a = calloc(1, sizeof *a);
        if (!a) {
            rt_free_addrinfo(head);
            return -ENOMEM;
        }
        *tail = a;
        tail = &a->ai_next;
        a->ai_flags = (int)f[0];
        a->ai_family = (int)f[1];
        a->ai_socktype = (int)f[2];
        a->ai_protocol = (int)f[3];
        a->ai_addrlen = alen;
        a->ai_addr = calloc(1, alen ? alen : 1);
        if (!a->ai_addr) {
            rt_free_addrinfo(head);
            return -ENOMEM;
        }
        memcpy(a->ai_addr, addr, alen);
        if (clen) {
            a->ai_canonname = strndup((const char *)canon, clen);
            if (!a->ai_canonname) {
                rt_free_addrinfo(head);
                return -ENOMEM;
            }
        }
    }
    *out = head;
    return 0;
bad:
    rt_free_addrinfo(head);
    return REEL_ECORRUPT;
}

/* ------------------------------------------ structured call arguments */

/* Append a string and its NUL (NULL is written as the one-byte "\1" so it
 * differs from ""); returns the new length, or cap+1 when full. */
static size_t put_text(uint8_t *buf, size_t len, size_t cap, const char *str)
{
    const char *s = str ? str : "\1";
    size_t n = strlen(s) + 1;
    if (len > cap || n > cap - len)
        return cap + 1;
    memcpy(buf + len, s, n);
    return len + n;
}

void rt_submit_fields(const reel_backend_req *req, reel_trace_record *rec, uint8_t *buf, size_t cap)
{
    rec->op = REEL_TRACE_SUBMIT;
    rec->arg[0] = req->kind;
    rec->arg[1] = (int64_t)req->id;
    size_t len = 0;
    switch (req->kind) {
    case REEL_REQ_GETADDRINFO:
        rec->arg[2] = req->family;
        rec->arg[3] = req->socktype;
        rec->arg[4] = req->protocol;
        rec->arg[5] = req->flags;
        len = put_text(buf, len, cap, req->host);
        len = put_text(buf, len, cap, req->service);
        break;
    case REEL_REQ_GETNAMEINFO:
        rec->arg[5] = req->flags;
        rec->addr = (const uint8_t *)&req->addr;
        rec->addr_len = req->addrlen <= rt_addr_bytes_max ? (uint32_t)req->addrlen : rt_addr_bytes_max;
        break;
    default:
        break;
    }
    rec->data = buf;
    rec->data_len = len <= cap ? (uint32_t)len : 0;
}

void rt_spawn_fields(const reel_spawn_opts *o, reel_trace_record *rec, uint8_t *buf, size_t cap)
{
    rec->op = REEL_TRACE_SPAWN;
    rec->arg[1] = o->stdio[0];
    rec->arg[2] = o->stdio[1];
    rec->arg[3] = o->stdio[2];
    rec->arg[4] = o->new_session;
    size_t len = put_text(buf, 0, cap, o->file);
    for (size_t i = 0; o->argv && o->argv[i] && i < 4096; i++)
        len = put_text(buf, len, cap, o->argv[i]);
    rec->data = buf;
    rec->data_len = len <= cap ? (uint32_t)len : (uint32_t)cap;
}

int rt_done_answer(const reel_backend_req *req, uint8_t *buf, size_t cap)
{
    if (req->result < 0)
        return 0;
    switch (req->kind) {
    case REEL_REQ_GETADDRINFO:
        return rt_encode_addrinfo(req->addrinfo, buf, cap);
    case REEL_REQ_GETNAMEINFO: {
        size_t h = strnlen(req->hostname, sizeof req->hostname - 1);
        size_t s = strnlen(req->servname, sizeof req->servname - 1);
        if (h + s + 2 > cap)
            return -EMSGSIZE;
        memcpy(buf, req->hostname, h);
        buf[h] = 0;
        memcpy(buf + h + 1, req->servname, s);
        buf[h + 1 + s] = 0;
        return (int)(h + s + 2);
    }
    default:
        return 0;
    }
}

size_t rt_iov_total(const struct iovec *iov, int iovcnt)
{
    size_t t = 0;
    for (int i = 0; i < iovcnt; i++)
        t += iov[i].iov_len;
    return t;
}

uint32_t rt_iov_crc(const struct iovec *iov, int iovcnt, size_t n, uint8_t *preview, uint32_t *plen)
{
    uint32_t crc = 0;
    *plen = 0;
    for (int i = 0; i < iovcnt; i++) {
        size_t k = iov[i].iov_len;
        if (*plen < rt_write_preview_bytes) {
            size_t p = k < rt_write_preview_bytes - *plen ? k : rt_write_preview_bytes - *plen;
            rt_copy(preview + *plen, iov[i].iov_base, p);
            *plen += (uint32_t)p;
        }
        size_t c = k < n ? k : n;
        crc = rt_crc32c(crc, iov[i].iov_base, c);
        n -= c;
    }
    return crc;
}
