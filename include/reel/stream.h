/* reel/stream.h — streams (asyncio StreamReader / StreamWriter).
 *
 * Byte views and owned byte strings used by the stream calls.
 */
#ifndef REEL_STREAM_H
#define REEL_STREAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Borrowed bytes: a separator for readuntil, a buffer for writelines. */
typedef struct reel_span {
    const void *data;
    size_t len;
} reel_span;
/* A span over a string literal, without its NUL: REEL_SPAN_LIT("\r\n"). */
#define REEL_SPAN_LIT(s) ((reel_span){(s), sizeof(s) - 1})

#ifdef __cplusplus
}
#endif
#endif
