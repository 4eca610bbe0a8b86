/* replay/format.c — records as text: one human-readable line (dump,
 * divergence reports) or one JSON object (json lines). Every byte of a
 * record may be hostile (the fuzz harness formats what it decodes), so
 * nothing here trusts a length or a string it did not bound itself. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "trace.h"

/* A bounded string builder that remembers how long the result wanted to be. */
typedef struct sb {
    char *buf;
    size_t cap, len;
} sb;

__attribute__((format(printf, 2, 3)))
static void sb_printf(sb *s, const char *fmt, ...)
{
    char *at = s->len < s->cap ? s->buf + s->len : NULL;
    size_t room = s->len < s->cap ? s->cap - s->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(at, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        s->len += (size_t)n;
}

static void sb_putc(sb *s, char c)
{
    if (s->len + 1 < s->cap)
        s->buf[s->len] = c;
    s->len++;
}

static size_t sb_done(sb *s)
{
    if (s->cap)
        s->buf[s->len < s->cap ? s->len : s->cap - 1] = '\0';
    return s->len;
}

/* ------------------------------------------------------------ helpers */

const char *rt_errno_name(int64_t code)
{
    static const struct { int e; const char *name; } names[] = {
        {EAGAIN, "EAGAIN"}, {EINPROGRESS, "EINPROGRESS"}, {ECONNRESET, "ECONNRESET"},
        {ECONNREFUSED, "ECONNREFUSED"}, {ECONNABORTED, "ECONNABORTED"}, {EPIPE, "EPIPE"},
        {EBADF, "EBADF"}, {EINVAL, "EINVAL"}, {ENOENT, "ENOENT"}, {EINTR, "EINTR"},
        {ENOSYS, "ENOSYS"}, {EADDRINUSE, "EADDRINUSE"}, {EADDRNOTAVAIL, "EADDRNOTAVAIL"},
        {ETIMEDOUT, "ETIMEDOUT"}, {ENOTCONN, "ENOTCONN"}, {EISCONN, "EISCONN"},
        {EALREADY, "EALREADY"}, {EACCES, "EACCES"}, {EPERM, "EPERM"}, {ENOMEM, "ENOMEM"},
        {EMSGSIZE, "EMSGSIZE"}, {ENOBUFS, "ENOBUFS"}, {EHOSTUNREACH, "EHOSTUNREACH"},
        {ENETUNREACH, "ENETUNREACH"}, {EMFILE, "EMFILE"}, {ENFILE, "ENFILE"},
        {ENOTSOCK, "ENOTSOCK"}, {EOPNOTSUPP, "EOPNOTSUPP"}, {EAFNOSUPPORT, "EAFNOSUPPORT"},
        {ESRCH, "ESRCH"}, {ECHILD, "ECHILD"}, {EEXIST, "EEXIST"}, {EIO, "EIO"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (code == -names[i].e)
            return names[i].name;
    return NULL;
}

size_t rt_format_addr(const uint8_t *addr, uint32_t len, char *buf, size_t cap)
{
    sb s = {buf, cap, 0};
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (len)
        memcpy(&ss, addr, len < sizeof ss ? len : sizeof ss);
    char host[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        sb_printf(&s, "%s:%u", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        sb_printf(&s, "[%s]:%u", host, ntohs(a->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t n = len > off ? len - off : 0;
        const char *p = ((const struct sockaddr_un *)&ss)->sun_path;
        if (n > sizeof ((struct sockaddr_un *)0)->sun_path)
            n = sizeof ((struct sockaddr_un *)0)->sun_path;
        bool abstract = n > 0 && p[0] == '\0';
        sb_printf(&s, abstract ? "unix:@" : "unix:");
        for (size_t i = abstract ? 1 : 0; i < n && (abstract || p[i]); i++)
            sb_putc(&s, p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?');
        if (n == 0)
            sb_printf(&s, "(unnamed)");
    } else {
        sb_printf(&s, "family=%u/len=%u", (unsigned)ss.ss_family, len);
    }
    return sb_done(&s);
}

/* Quoted, C-escaped, at most `show` bytes. */
static void put_quoted(sb *s, const uint8_t *p, size_t n, size_t show)
{
    sb_putc(s, '"');
    for (size_t i = 0; i < n && i < show; i++) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\')
            sb_printf(s, "\\%c", c);
        else if (c == '\n')
            sb_printf(s, "\\n");
        else if (c == '\r')
            sb_printf(s, "\\r");
        else if (c == '\t')
            sb_printf(s, "\\t");
        else if (c >= 0x20 && c < 0x7f)
            sb_putc(s, (char)c);
        else
            sb_printf(s, "\\x%02x", c);
    }
    sb_putc(s, '"');
    if (n > show)
        sb_printf(s, "...");
}

/* NUL-separated strings, each quoted. */
static void put_strings(sb *s, const uint8_t *p, size_t n)
{
    size_t i = 0;
    int k = 0;
    while (i < n && k < 16) {
        const uint8_t *z = memchr(p + i, 0, n - i);
        size_t len = z ? (size_t)(z - (p + i)) : n - i;
        if (k++)
            sb_putc(s, ' ');
        put_quoted(s, p + i, len, 96);
        i += len + 1;
    }
    if (i < n)
        sb_printf(s, " ...");
}

static bool is_hex_arg(const char *name)
{
    return name && (strcmp(name, "crc") == 0 || strcmp(name, "callback_hash") == 0);
}

static void put_result(sb *s, int64_t v)
{
    sb_printf(s, " = %" PRId64, v);
    const char *e = v < 0 ? rt_errno_name(v) : NULL;
    if (e)
        sb_printf(s, " %s", e);
    else if (v < 0 && v >= INT32_MIN)
        sb_printf(s, " (%s)", reel_strerror((int)v));
}

static const char *event_kind_name(int64_t kind)
{
    switch (kind) {
    case REEL_EV_IO: return "io";
    case REEL_EV_WAKE: return "wake";
    case REEL_EV_SIGNAL: return "signal";
    case REEL_EV_CHILD: return "child";
    case REEL_EV_DONE: return "done";
    default: return "?";
    }
}

static const char *req_kind_name(int64_t kind)
{
    switch (kind) {
    case REEL_REQ_GETADDRINFO: return "getaddrinfo";
    case REEL_REQ_GETNAMEINFO: return "getnameinfo";
    case REEL_REQ_JOB: return "job";
    default: return "?";
    }
}

/* A getaddrinfo answer, walked without allocating. */
static void put_addrinfo(sb *s, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    uint64_t count, v;
    size_t k = rt_get_varint(p, end, &count);
    if (!k) {
        sb_printf(s, " <malformed answer>");
        return;
    }
    p += k;
    sb_printf(s, " %" PRIu64 " address%s", count, count == 1 ? "" : "es");
    for (uint64_t i = 0; i < count && i < 8; i++) {
        for (int j = 0; j < 4; j++) {
            if (!(k = rt_get_varint(p, end, &v)))
                goto bad;
            p += k;
        }
        if (!(k = rt_get_varint(p, end, &v)) || v > rt_addr_bytes_max || v > (uint64_t)(end - p - k))
            goto bad;
        p += k;
        char a[160];
        rt_format_addr(p, (uint32_t)v, a, sizeof a);
        sb_printf(s, "%s%s", i ? ", " : ": ", a);
        p += v;
        if (!(k = rt_get_varint(p, end, &v)) || v > (uint64_t)(end - p - k))
            goto bad;
        p += k + v;
    }
    return;
bad:
    sb_printf(s, " <malformed answer>");
}

static void format_event(sb *s, const reel_trace_record *r)
{
    int64_t kind = r->arg[0];
    sb_printf(s, "event %s", event_kind_name(kind));
    switch (kind) {
    case REEL_EV_IO:
        sb_printf(s, " fd=%" PRId64 " ", r->arg[2]);
        if (r->arg[1] & REEL_IO_READ) sb_printf(s, "R");
        if (r->arg[1] & REEL_IO_WRITE) sb_printf(s, "W");
        if (r->arg[1] & REEL_IO_ERROR) sb_printf(s, "E");
        if (r->arg[1] & REEL_IO_HUP) sb_printf(s, "H");
        if (!(r->arg[1] & 15)) sb_printf(s, "-");
        break;
    case REEL_EV_WAKE:
        sb_printf(s, " posted=%" PRId64, r->arg[4]);
        break;
    case REEL_EV_SIGNAL:
        sb_printf(s, " signo=%" PRId64 " count=%" PRId64, r->arg[2], r->arg[3]);
        break;
    case REEL_EV_CHILD:
        sb_printf(s, " pid=%" PRId64 " status=%" PRId64, r->arg[2], r->arg[3]);
        break;
    case REEL_EV_DONE:
        sb_printf(s, " req=%" PRId64 " (%s)", r->arg[4], req_kind_name(r->arg[5]));
        put_result(s, r->result);
        if (r->arg[5] == REEL_REQ_GETADDRINFO && r->data_len)
            put_addrinfo(s, r->data, r->data_len);
        else if (r->data_len) {
            sb_putc(s, ' ');
            put_strings(s, r->data, r->data_len);
        }
        break;
    default:
        for (int i = 1; i < 6; i++)
            if (r->arg[i])
                sb_printf(s, " a%d=%" PRId64, i, r->arg[i]);
        break;
    }
}

static void put_field_value(sb *s, const char *name, int64_t v)
{
    if (is_hex_arg(name))
        sb_printf(s, "%s=0x%" PRIx64, name, (uint64_t)v);
    else
        sb_printf(s, "%s=%" PRId64, name, v);
}

/* ------------------------------------------------------------- text */

/* answer: false formats a call as made (inputs and the written bytes, no
 * result): the "actual" side of a divergence report. */
size_t rt_format_call(const reel_trace_record *r, char *buf, size_t cap, bool answer)
{
    sb s = {buf, cap, 0};
    if (answer)
        sb_printf(&s, "#%" PRIu64 " ", r->index);
    const rt_op_desc *d = rt_op(r->op);
    if (!d) {
        sb_printf(&s, "op%u(fd=%d, a=[%" PRId64 ", %" PRId64 ", %" PRId64 "]) = %" PRId64
                  " data=%u addr=%u", r->op, r->fd, r->arg[0], r->arg[1], r->arg[2], r->result,
                  r->data_len, r->addr_len);
        return sb_done(&s);
    }
    switch (r->op) {
    case REEL_TRACE_EVENT:
        format_event(&s, r);
        return sb_done(&s);
    case REEL_TRACE_CALLBACK:
        sb_printf(&s, "callback %s() at %s:%d", r->func ? r->func : "?", r->file ? r->file : "?", r->line);
        return sb_done(&s);
    case REEL_TRACE_SITE:
        sb_printf(&s, "site %" PRId64 " = ", r->arg[0]);
        put_strings(&s, r->data, r->data_len);
        sb_printf(&s, " line %" PRId64, r->arg[1]);
        return sb_done(&s);
    case REEL_TRACE_NOW:
        sb_printf(&s, "now() = %" PRIu64 " ns", (uint64_t)r->result);
        return sb_done(&s);
    default:
        break;
    }
    /* name(inputs) = result outputs data */
    sb_printf(&s, "%s(", d->name);
    int k = 0;
    if ((d->inputs & RT_F_FD)) {
        sb_printf(&s, "%s=%d", d->fd_name ? d->fd_name : "fd", r->fd);
        k++;
    }
    for (int i = 0; i < 6; i++)
        if (d->inputs & rt_arg_bit(i)) {
            if (k++)
                sb_printf(&s, ", ");
            put_field_value(&s, d->arg[i] ? d->arg[i] : "a", r->arg[i]);
        }
    if ((d->inputs & RT_F_ADDR)) {
        char a[160];
        rt_format_addr(r->addr, r->addr_len, a, sizeof a);
        sb_printf(&s, "%saddr=%s", k++ ? ", " : "", r->addr_len ? a : "none");
    }
    if ((d->inputs & RT_F_DATA) && (r->data_len || d->data != RT_D_TEXT)) {
        sb_printf(&s, "%s", k++ ? ", " : "");
        if (d->data == RT_D_TEXT)
            put_strings(&s, r->data, r->data_len);
        else
            put_quoted(&s, r->data, r->data_len, 48);
    }
    sb_putc(&s, ')');
    /* A preview is the start of a longer write (a0 = its length). */
    bool cut = d->data == RT_D_PREVIEW && r->arg[0] > (int64_t)r->data_len;
    if (!answer) {
        if (d->data == RT_D_PREVIEW && r->data_len) {
            sb_putc(&s, ' ');
            put_quoted(&s, r->data, r->data_len, 48);
            if (cut)
                sb_printf(&s, "...");
        }
        return sb_done(&s);
    }
    if (d->fields & RT_F_RESULT)
        put_result(&s, r->result);
    /* outputs and annotations */
    uint16_t outs = (uint16_t)(d->fields & ~d->inputs & ~RT_F_RESULT);
    if ((outs & RT_F_FD))
        sb_printf(&s, " %s=%d", d->fd_name ? d->fd_name : "fd", r->fd);
    for (int i = 0; i < 6; i++)
        if (outs & rt_arg_bit(i)) {
            sb_putc(&s, ' ');
            put_field_value(&s, d->arg[i] ? d->arg[i] : "a", r->arg[i]);
        }
    if ((outs & RT_F_ADDR) && r->addr_len) {
        char a[160];
        rt_format_addr(r->addr, r->addr_len, a, sizeof a);
        sb_printf(&s, " addr=%s", a);
    }
    if ((outs & RT_F_DATA) && r->data_len) {
        sb_putc(&s, ' ');
        put_quoted(&s, r->data, r->data_len, 48);
        if (cut)
            sb_printf(&s, "...");
        if (r->data_len > 48)
            sb_printf(&s, " (%u bytes)", r->data_len);
    }
    return sb_done(&s);
}

size_t reel_trace_format(const reel_trace_record *r, char *buf, size_t cap)
{
    return rt_format_call(r, buf, cap, true);
}

/* ------------------------------------------------------------- JSON */

static void json_str(sb *s, const char *p, size_t n)
{
    sb_putc(s, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\')
            sb_printf(s, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            sb_putc(s, (char)c);
        else
            sb_printf(s, "\\u%04x", c);
    }
    sb_putc(s, '"');
}

static void json_hex(sb *s, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sb_putc(s, '"');
    for (size_t i = 0; i < n; i++) {
        sb_putc(s, hex[p[i] >> 4]);
        sb_putc(s, hex[p[i] & 15]);
    }
    sb_putc(s, '"');
}

size_t reel_trace_format_json(const reel_trace_record *r, char *buf, size_t cap)
{
    sb s = {buf, cap, 0};
    const rt_op_desc *d = rt_op(r->op);
    sb_printf(&s, "{\"i\":%" PRIu64 ",\"off\":%" PRIu64 ",\"op\":", r->index, r->offset);
    if (d)
        json_str(&s, d->name, strlen(d->name));
    else
        sb_printf(&s, "%u", r->op);
    if (r->fd != -1)
        sb_printf(&s, ",\"%s\":%d", d && d->fd_name ? d->fd_name : "fd", r->fd);
    for (int i = 0; i < 6; i++) {
        if (!r->arg[i] && !(d && (d->fields & rt_arg_bit(i)) && (d->inputs & rt_arg_bit(i))))
            continue;
        const char *name = d && d->arg[i] ? d->arg[i] : NULL;
        if (r->op == REEL_TRACE_EVENT && i == 0) {
            sb_printf(&s, ",\"kind\":\"%s\"", event_kind_name(r->arg[0]));
            continue;
        }
        if (r->op == REEL_TRACE_EVENT && i == 4)
            name = r->arg[0] == REEL_EV_WAKE ? "posted" : "req";
        if (r->op == REEL_TRACE_EVENT && i == 5) {
            sb_printf(&s, ",\"req_kind\":\"%s\"", req_kind_name(r->arg[5]));
            continue;
        }
        if (name)
            sb_printf(&s, ",\"%s\":%" PRId64, name, r->arg[i]);
        else
            sb_printf(&s, ",\"a%d\":%" PRId64, i, r->arg[i]);
    }
    if (!d || (d->fields & RT_F_RESULT)) {
        sb_printf(&s, ",\"result\":%" PRId64, r->result);
        const char *e = r->result < 0 ? rt_errno_name(r->result) : NULL;
        if (e)
            sb_printf(&s, ",\"errno\":\"%s\"", e);
    }
    if (r->time_ns)
        sb_printf(&s, ",\"time_ns\":%" PRIu64, r->time_ns);
    if (r->func) {
        sb_printf(&s, ",\"func\":");
        json_str(&s, r->func, strlen(r->func));
        sb_printf(&s, ",\"file\":");
        json_str(&s, r->file ? r->file : "?", strlen(r->file ? r->file : "?"));
        sb_printf(&s, ",\"line\":%d", r->line);
    }
    if (r->data_len) {
        sb_printf(&s, ",\"data_len\":%u,\"data\":", r->data_len);
        json_hex(&s, r->data, r->data_len);
    }
    if (r->addr_len) {
        char a[160];
        rt_format_addr(r->addr, r->addr_len, a, sizeof a);
        sb_printf(&s, ",\"addr\":");
        json_str(&s, a, strlen(a));
    }
    sb_putc(&s, '}');
    return sb_done(&s);
}
