/* asyncio docs, Streams > "TCP echo client using streams".
 * Optional argument: the port (default 8888, as in the docs).
 *
 *   async def tcp_echo_client(message):
 *       reader, writer = await asyncio.open_connection(
 *           '127.0.0.1', 8888)
 *
 *       print(f'Send: {message!r}')
 *       writer.write(message.encode())
 *       await writer.drain()
 *
 *       data = await reader.read(100)
 *       print(f'Received: {data.decode()!r}')
 *
 *       print('Close the connection')
 *       writer.close()
 *       await writer.wait_closed()
 *
 *   asyncio.run(tcp_echo_client('Hello World!'))
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <reel.h>

static int tcp_echo_client(void *arg, void **result)
{
    (void)result;
    const char *message = "Hello World!";
    reel_connection_opts o = {.host = "127.0.0.1", .port = *(int *)arg};
    reel_stream *s;
    int rc = reel_open_connection(&o, 0, &s);
    if (rc < 0)
        return rc;
    printf("Send: '%s'\n", message);
    reel_stream_write(s, message, strlen(message));
    rc = reel_stream_drain(s);
    reel_bytes data = REEL_BYTES_INIT;
    if (rc == 0 && (rc = reel_stream_read(s, 100, &data)) == 0)
        printf("Received: '%.*s'\n", (int)data.len, (const char *)data.data);
    reel_bytes_free(&data);
    puts("Close the connection");
    reel_stream_close(s);
    reel_stream_wait_closed(s);
    reel_stream_release(s);
    return rc;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 8888;
    int rc = reel_run(tcp_echo_client, &port, NULL);
    if (rc < 0)
        fprintf(stderr, "%s\n", reel_last_error()->message ? reel_last_error()->message
                                                            : reel_strerror(rc));
    return rc < 0;
}
