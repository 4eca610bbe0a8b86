/* examples/lib/lineproto.c — see lineproto.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lineproto.h"

typedef struct lp_conn {
    reel_transport *t;
    reel_handle idle;
    size_t len;
    char line[lineproto_line_max_bytes];
} lp_conn;

static void lp_reply(lp_conn *c, const char *s) { reel_transport_write(c->t, s, strlen(s)); }

static void lp_idle(void *arg)
{
    lp_conn *c = arg;
    lp_reply(c, "-ERR idle\r\n");
    reel_transport_close(c->t);
}

static void lp_arm(lp_conn *c)
{
    reel_handle_cancel(c->idle);
    reel_loop_call_later(reel_transport_get_loop(c->t), LINEPROTO_IDLE_S, lp_idle, c, &c->idle);
}

static void lp_command(lp_conn *c, const char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (n == 4 && memcmp(s, "PING", 4) == 0) {
        lp_reply(c, "+PONG\r\n");
    } else if (n >= 5 && memcmp(s, "ECHO ", 5) == 0) {
        char head[32];
        snprintf(head, sizeof head, "$%zu\r\n", n - 5);
        lp_reply(c, head);
        reel_transport_write(c->t, s + 5, n - 5);
        lp_reply(c, "\r\n");
    } else if (n == 4 && memcmp(s, "QUIT", 4) == 0) {
        lp_reply(c, "+BYE\r\n");
        reel_transport_close(c->t);
    } else {
        lp_reply(c, "-ERR unknown command\r\n");
    }
}

static void lp_made(void *user, reel_transport *t)
{
    lp_conn *c = user;
    c->t = t;
    lp_arm(c);
}

static void lp_data(void *user, const void *data, size_t len)
{
    lp_conn *c = user;
    const char *p = data;
    lp_arm(c);
    for (size_t i = 0; i < len && !reel_transport_is_closing(c->t); i++) {
        if (p[i] == '\n') {
            lp_command(c, c->line, c->len);
            c->len = 0;
        } else if (c->len == sizeof c->line) {
            lp_reply(c, "-ERR line too long\r\n");
            reel_transport_close(c->t);
        } else {
            c->line[c->len++] = p[i];
        }
    }
}

static void lp_lost(void *user, int err)
{
    lp_conn *c = user;
    (void)err;
    reel_handle_cancel(c->idle);
    free(c);
}

int lineproto_factory(void *arg, reel_protocol *out)
{
    (void)arg;
    lp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    *out = (reel_protocol){.user = c, .connection_made = lp_made, .data_received = lp_data,
                           .connection_lost = lp_lost};
    return 0;
}

bool lineproto_replies_ok(const uint8_t *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const uint8_t *eol = memchr(buf + i, '\n', len - i);
        if (!eol || eol == buf + i || eol[-1] != '\r')
            return false;
        size_t n = (size_t)(eol - (buf + i)) + 1;
        if (buf[i] == '$') {   /* $<len>\r\n<len bytes>\r\n */
            size_t body = strtoul((const char *)buf + i + 1, NULL, 10);
            if (len - i - n < body + 2 || memcmp(buf + i + n + body, "\r\n", 2) != 0)
                return false;
            n += body + 2;
        } else if (buf[i] != '+' && buf[i] != '-') {
            return false;
        }
        i += n;
    }
    return true;
}
