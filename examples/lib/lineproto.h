/* examples/lib/lineproto.h — a small line protocol, the "user's parser"
 * that examples/fuzz_lines.c fuzzes. Commands, one per line ("\n" or
 * "\r\n"), at most lineproto_line_max_bytes each:
 *   PING          -> +PONG
 *   ECHO <text>   -> $<len>\r\n<text>
 *   QUIT          -> +BYE, then the server closes
 *   anything else -> -ERR unknown command
 * Every reply ends in "\r\n". A longer line gets "-ERR line too long" and
 * the connection is closed; 30 s without a line closes it too. */
#ifndef REEL_EXAMPLE_LINEPROTO_H
#define REEL_EXAMPLE_LINEPROTO_H

#include "reel.h"

enum { lineproto_line_max_bytes = 256 };
#define LINEPROTO_IDLE_S 30.0

/* A protocol factory for reel_loop_create_server (arg unused): each
 * connection gets its own state, freed in connection_lost. */
int lineproto_factory(void *arg, reel_protocol *out);

/* True if buf[0..len) is a sequence of well-formed replies. */
bool lineproto_replies_ok(const uint8_t *buf, size_t len);

#endif
