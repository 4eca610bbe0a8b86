/* stream_echo — asyncio's streams echo example, in C.
 *
 * The Python it mirrors (docs: "TCP echo client and server using streams"):
 *
 *     async def handle_echo(reader, writer):
 *         data = await reader.readline()
 *         writer.write(data)
 *         await writer.drain()
 *         writer.close()
 *         await writer.wait_closed()
 *
 *     async def main():
 *         server = await asyncio.start_server(handle_echo, '127.0.0.1', 0)
 *         reader, writer = await asyncio.open_connection('127.0.0.1', port)
 *         writer.write(b'Hello World!\n')
 *         print(await reader.readline())
 *         writer.close(); await writer.wait_closed()
 *         server.close(); await server.wait_closed()
 *
 *     asyncio.run(main())
 *
 * Exit status 0 means the line came back.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "reel.h"

static int handle_echo(reel_stream *s, void *arg)
{
    (void)arg;
    reel_bytes line = REEL_BYTES_INIT;
    int rc = reel_stream_readline(s, &line);         /* await reader.readline() */
    if (rc == 0) {
        reel_stream_write(s, line.data, line.len);   /* writer.write(data) */
        rc = reel_stream_drain(s);                   /* await writer.drain() */
    }
    reel_bytes_free(&line);
    reel_stream_close(s);                            /* writer.close() */
    reel_stream_wait_closed(s);                      /* await writer.wait_closed() */
    return rc;
}

/* port = server.sockets[0].getsockname()[1]: asked through the loop's
 * backend, so a recorded run replays (getsockname(2) on the fd would not). */
static int server_port(reel_server *srv)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (reel_server_get_sockname(srv, 0, &ss, &len) < 0 || ss.ss_family != AF_INET)
        return -1;
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int main_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    reel_server_opts so = {.host = "127.0.0.1"};
    reel_server *srv;
    int rc = reel_start_server(handle_echo, NULL, &so, REEL_STREAM_LIMIT_DEFAULT, &srv);
    if (rc < 0)
        return rc;
    reel_connection_opts co = {.host = "127.0.0.1", .port = server_port(srv)};
    reel_stream *s;
    rc = reel_open_connection(&co, REEL_STREAM_LIMIT_DEFAULT, &s);
    if (rc == 0) {
        reel_stream_write(s, "Hello World!\n", 13);
        reel_bytes line = REEL_BYTES_INIT;
        rc = reel_stream_readline(s, &line);
        if (rc == 0)
            printf("Received: %.*s", (int)line.len, (const char *)line.data);
        if (rc == 0 && (line.len != 13 || memcmp(line.data, "Hello World!\n", 13) != 0))
            rc = -1;
        reel_bytes_free(&line);
        reel_stream_close(s);
        reel_stream_wait_closed(s);
        reel_stream_release(s);
    }
    reel_server_close(srv);
    reel_future *closed;
    if (reel_server_wait_closed(srv, &closed) == 0)
        reel_await_take(closed, NULL);
    reel_server_release(srv);
    return rc;
}

int main(void)
{
    int rc = reel_run(main_task, NULL, NULL);       /* asyncio.run(main()) */
    if (rc < 0)
        fprintf(stderr, "stream_echo: %s\n", reel_strerror(rc));
    return rc < 0 ? 1 : 0;
}
