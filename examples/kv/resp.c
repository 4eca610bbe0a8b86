/* examples/kv/resp.c — see resp.h. The parser is stateless: an incomplete
 * command is parsed again from its start when more bytes arrive. That
 * costs one pass over the headers (never over argument bytes: those are
 * skipped by their length), and *need lets the caller wait until a large
 * argument is all there instead of re-parsing on every chunk. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

static const char msg_mbulk_len[] = "Protocol error: invalid multibulk length";
static const char msg_bulk_len[] = "Protocol error: invalid bulk length";
static const char msg_mbulk_big[] = "Protocol error: too big mbulk count string";
static const char msg_bulk_big[] = "Protocol error: too big bulk count string";
static const char msg_inline_big[] = "Protocol error: too big inline request";
static const char msg_quotes[] = "Protocol error: unbalanced quotes in request";
static const char msg_expected_dollar[] = "Protocol error: expected '$'";
static const char msg_expected_crlf[] = "Protocol error: expected CRLF after bulk argument";
static const char msg_nomem[] = "OOM command not allowed when out of memory";

void kv_cmd_free(kv_cmd *cmd)
{
    free(cmd->argv);
    free(cmd->lens);
    memset(cmd, 0, sizeof *cmd);
}

static int cmd_push(kv_cmd *cmd, const uint8_t *p, size_t len)
{
    if (cmd->argc == cmd->cap) {
        size_t ncap = cmd->cap ? cmd->cap * 2 : 16;
        const uint8_t **nv = realloc(cmd->argv, ncap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        cmd->argv = nv;
        size_t *nl = realloc(cmd->lens, ncap * sizeof *nl);
        if (!nl)
            return -ENOMEM;
        cmd->lens = nl;
        cmd->cap = ncap;
    }
    cmd->argv[cmd->argc] = p;
    cmd->lens[cmd->argc] = len;
    cmd->argc++;
    return 0;
}

bool kv_parse_ll(const uint8_t *p, size_t len, long long *out)
{
    if (len == 0 || len > 20)
        return false;
    size_t i = 0;
    bool neg = false;
    if (p[0] == '-') {
        neg = true;
        i = 1;
        if (len == 1)
            return false;
    }
    if (p[i] == '0' && (len - i > 1 || neg))
        return false; /* no leading zeros, no "-0" (Redis's string2ll) */
    unsigned long long v = 0;
    /* Up to 19 digits cannot pass ULLONG_MAX (1.8e19 has 20), so only a
     * 20-digit number needs the overflow test and its division per digit
     * (every length and count in a request goes through here). */
    bool check = len - i > 19;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        unsigned d = (unsigned)(p[i] - '0');
        if (check && v > (ULLONG_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return false;
        *out = (long long)(0 - v);
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return false;
        *out = (long long)v;
    }
    return true;
}

/* Find the "\r\n" that ends a header line starting at buf[pos]. Returns
 * the offset of '\r', 0 when it is not there yet (more bytes may bring
 * it), or -1 when the line is longer than KV_INLINE_MAX_BYTES. */
static long header_end(const uint8_t *buf, size_t len, size_t pos)
{
    size_t avail = len - pos;
    size_t scan = avail < KV_INLINE_MAX_BYTES ? avail : KV_INLINE_MAX_BYTES;
    const uint8_t *cr = memchr(buf + pos, '\r', scan);
    if (!cr)
        return avail > KV_INLINE_MAX_BYTES ? -1 : 0;
    size_t at = (size_t)(cr - buf);
    if (at + 1 >= len)
        return 0;
    return (long)at;
}

static int parse_multibulk(const uint8_t *buf, size_t len, kv_cmd *cmd, size_t *consumed,
                           size_t *need, const char **errmsg)
{
    long cr = header_end(buf, len, 0);
    if (cr < 0) {
        *errmsg = msg_mbulk_big;
        return -EPROTO;
    }
    if (cr == 0)
        return 0;
    long long argc;
    if (buf[cr + 1] != '\n' || !kv_parse_ll(buf + 1, (size_t)cr - 1, &argc) ||
        argc > (long long)KV_ARGS_MAX) {
        *errmsg = msg_mbulk_len;
        return -EPROTO;
    }
    size_t pos = (size_t)cr + 2;
    if (argc <= 0) {
        *consumed = pos;
        return 2;
    }
    for (long long i = 0; i < argc; i++) {
        if (pos >= len)
            return 0;
        if (buf[pos] != '$') {
            *errmsg = msg_expected_dollar;
            return -EPROTO;
        }
        cr = header_end(buf, len, pos);
        if (cr < 0) {
            *errmsg = msg_bulk_big;
            return -EPROTO;
        }
        if (cr == 0)
            return 0;
        long long blen;
        if (buf[cr + 1] != '\n' || !kv_parse_ll(buf + pos + 1, (size_t)cr - pos - 1, &blen) ||
            blen < 0 || blen > (long long)KV_BULK_MAX_BYTES) {
            *errmsg = msg_bulk_len;
            return -EPROTO;
        }
        pos = (size_t)cr + 2;
        if (len - pos < (size_t)blen + 2) {
            *need = pos + (size_t)blen + 2;
            return 0;
        }
        if (buf[pos + blen] != '\r' || buf[pos + blen + 1] != '\n') {
            *errmsg = msg_expected_crlf;
            return -EPROTO;
        }
        if (cmd_push(cmd, buf + pos, (size_t)blen) < 0) {
            *errmsg = msg_nomem;
            return -ENOMEM;
        }
        pos += (size_t)blen + 2;
    }
    *consumed = pos;
    return 1;
}

static bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r'; }

static int parse_inline(const uint8_t *buf, size_t len, kv_cmd *cmd, size_t *consumed,
                        const char **errmsg)
{
    size_t scan = len < KV_INLINE_MAX_BYTES ? len : KV_INLINE_MAX_BYTES;
    const uint8_t *nl = memchr(buf, '\n', scan);
    if (!nl) {
        if (len >= KV_INLINE_MAX_BYTES) {
            *errmsg = msg_inline_big;
            return -EPROTO;
        }
        return 0;
    }
    size_t end = (size_t)(nl - buf);
    size_t i = 0;
    while (i < end) {
        while (i < end && is_space(buf[i]))
            i++;
        if (i == end)
            break;
        if (buf[i] == '"' || buf[i] == '\'') {
            uint8_t q = buf[i++];
            const uint8_t *close = memchr(buf + i, q, end - i);
            if (!close) {
                *errmsg = msg_quotes;
                return -EPROTO;
            }
            size_t at = (size_t)(close - buf);
            if (at + 1 < end && !is_space(buf[at + 1])) {
                *errmsg = msg_quotes;
                return -EPROTO;
            }
            if (cmd_push(cmd, buf + i, at - i) < 0) {
                *errmsg = msg_nomem;
                return -ENOMEM;
            }
            i = at + 1;
        } else {
            size_t start = i;
            while (i < end && !is_space(buf[i]))
                i++;
            if (cmd_push(cmd, buf + start, i - start) < 0) {
                *errmsg = msg_nomem;
                return -ENOMEM;
            }
        }
    }
    *consumed = end + 1;
    return cmd->argc ? 1 : 2;
}

int kv_resp_parse(const uint8_t *buf, size_t len, kv_cmd *cmd, size_t *consumed, size_t *need,
                  const char **errmsg)
{
    cmd->argc = 0;
    *consumed = 0;
    *need = 0;
    *errmsg = NULL;
    if (len == 0)
        return 0;
    int rc = buf[0] == '*' ? parse_multibulk(buf, len, cmd, consumed, need, errmsg)
                           : parse_inline(buf, len, cmd, consumed, errmsg);
    if (rc <= 0)
        cmd->argc = 0;
    if (rc != 0)
        *need = 0;
    return rc;
}

long kv_resp_reply_len(const uint8_t *buf, size_t len)
{
    size_t pos = 0;
    unsigned long long pending = 1, seen = 0;
    while (pending > 0) {
        if (pos >= len)
            return 0;
        uint8_t type = buf[pos];
        if (type != '+' && type != '-' && type != ':' && type != '$' && type != '*')
            return -EPROTO;
        const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl)
            return len - pos > KV_INLINE_MAX_BYTES ? -EPROTO : 0;
        size_t end = (size_t)(nl - buf);
        if (end == pos || buf[end - 1] != '\r')
            return -EPROTO;
        const uint8_t *num = buf + pos + 1;
        size_t numlen = end - 1 - (pos + 1);
        pos = end + 1;
        pending--;
        if (++seen > KV_ARGS_MAX)
            return -EPROTO;
        long long n = 0;
        if (type == '$' || type == '*') {
            if (!kv_parse_ll(num, numlen, &n) || n < -1)
                return -EPROTO;
        } else if (type == ':' && !kv_parse_ll(num, numlen, &n)) {
            return -EPROTO;
        }
        if (type == '$' && n >= 0) {
            if (n > (long long)KV_BULK_MAX_BYTES * 64)
                return -EPROTO;
            if (len - pos < (size_t)n + 2)
                return 0;
            if (buf[pos + n] != '\r' || buf[pos + n + 1] != '\n')
                return -EPROTO;
            pos += (size_t)n + 2;
        } else if (type == '*' && n > 0) {
            if ((unsigned long long)n > KV_ARGS_MAX)
                return -EPROTO;
            pending += (unsigned long long)n;
        }
    }
    return (long)pos;
}

/* ------------------------------------------------------------ replies */

void kv_buf_free(kv_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

int kv_buf_reserve(kv_buf *b, size_t more)
{
    if (b->cap - b->len >= more)
        return 0;
    if (more > SIZE_MAX / 4 - b->len)
        return -ENOMEM;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap - b->len < more)
        ncap *= 2;
    uint8_t *np = realloc(b->p, ncap);
    if (!np)
        return -ENOMEM;
    b->p = np;
    b->cap = ncap;
    return 0;
}

int kv_buf_add(kv_buf *b, const void *data, size_t len)
{
    if (kv_buf_reserve(b, len) < 0)
        return -ENOMEM;
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

void kv_buf_consume(kv_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

size_t kv_format_ll(char *out, long long v)
{
    char tmp[KV_LL_CHARS];
    int k = 0;
    unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t at = 0;
    if (v < 0)
        out[at++] = '-';
    while (k)
        out[at++] = tmp[--k];
    return at;
}

/* "<type><number>\r\n" */
static int add_header(kv_buf *b, char type, long long n)
{
    if (kv_buf_reserve(b, KV_LL_CHARS + 3) < 0)
        return -ENOMEM;
    char *o = (char *)b->p + b->len;
    o[0] = type;
    size_t at = 1 + kv_format_ll(o + 1, n);
    o[at++] = '\r';
    o[at++] = '\n';
    b->len += at;
    return 0;
}

static int add_line(kv_buf *b, char type, const char *s)
{
    size_t n = strlen(s);
    if (kv_buf_reserve(b, n + 3) < 0)
        return -ENOMEM;
    b->p[b->len++] = (uint8_t)type;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len++] = '\r';
    b->p[b->len++] = '\n';
    return 0;
}

int kv_reply_simple(kv_buf *b, const char *s) { return add_line(b, '+', s); }
int kv_reply_error(kv_buf *b, const char *s) { return add_line(b, '-', s); }
int kv_reply_int(kv_buf *b, long long v) { return add_header(b, ':', v); }
int kv_reply_array(kv_buf *b, size_t n) { return add_header(b, '*', (long long)n); }
int kv_reply_null(kv_buf *b) { return kv_buf_add(b, "$-1\r\n", 5); }
int kv_reply_null_array(kv_buf *b) { return kv_buf_add(b, "*-1\r\n", 5); }

/* One reservation for the whole reply, and a length under 10 written as
 * its digit: an LRANGE reply is mostly short bulks, and through
 * add_header (a second reservation, then kv_format_ll) each cost ~165
 * instructions per element, now ~60 (callgrind, LRANGE 0 99 of 3-byte
 * values; docs/kv.md). */
int kv_reply_bulk(kv_buf *b, const void *p, size_t len)
{
    if (b->cap - b->len < len + KV_LL_CHARS + 5 && kv_buf_reserve(b, len + KV_LL_CHARS + 5) < 0)
        return -ENOMEM;
    uint8_t *o = b->p + b->len;
    *o++ = '$';
    if (len < 10)
        *o++ = (uint8_t)('0' + len);
    else
        o += kv_format_ll((char *)o, (long long)len);
    *o++ = '\r';
    *o++ = '\n';
    memcpy(o, p, len);
    o += len;
    *o++ = '\r';
    *o++ = '\n';
    b->len = (size_t)(o - b->p);
    return 0;
}

int kv_reply_bulk_str(kv_buf *b, const char *s) { return kv_reply_bulk(b, s, strlen(s)); }

int kv_write_command(kv_buf *b, size_t argc, const uint8_t *const *argv, const size_t *lens)
{
    size_t start = b->len;
    if (add_header(b, '*', (long long)argc) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < argc; i++) {
        if (kv_reply_bulk(b, argv[i], lens[i]) < 0) {
            b->len = start;
            return -ENOMEM;
        }
    }
    return 0;
}
