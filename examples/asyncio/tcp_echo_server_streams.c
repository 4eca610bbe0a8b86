/* asyncio docs, Streams > "TCP echo server using streams".
 * Optional argument: the port (default 8888, as in the docs; 0 lets the
 * system choose, and "Serving on" shows the port it chose).
 *
 *   async def handle_echo(reader, writer):
 *       data = await reader.read(100)
 *       message = data.decode()
 *       addr = writer.get_extra_info('peername')
 *
 *       print(f"Received {message!r} from {addr!r}")
 *
 *       print(f"Send: {message!r}")
 *       writer.write(data)
 *       await writer.drain()
 *
 *       print("Close the connection")
 *       writer.close()
 *       await writer.wait_closed()
 *
 *   async def main():
 *       server = await asyncio.start_server(
 *           handle_echo, '127.0.0.1', 8888)
 *
 *       addrs = ', '.join(str(sock.getsockname()) for sock in server.sockets)
 *       print(f'Serving on {addrs}')
 *
 *       async with server:
 *           await server.serve_forever()
 *
 *   asyncio.run(main())
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <reel.h>

static int handle_echo(reel_stream *s, void *arg)
{
    (void)arg;
    reel_bytes data = REEL_BYTES_INIT;
    int rc = reel_stream_read(s, 100, &data);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    char addr[INET6_ADDRSTRLEN] = "?";
    if (reel_stream_get_peername(s, &ss, &len) == 0)
        inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof addr);
    printf("Received '%.*s' from ('%s', %d)\n", (int)data.len, (const char *)data.data, addr,
           ntohs(sin->sin_port));
    printf("Send: '%.*s'\n", (int)data.len, (const char *)data.data);
    reel_stream_write(s, data.data, data.len);
    if (rc == 0)
        rc = reel_stream_drain(s);
    puts("Close the connection");
    reel_stream_close(s);
    reel_stream_wait_closed(s);
    reel_bytes_free(&data);
    return rc;
}

static int main_task(void *arg, void **result)
{
    (void)result;
    reel_server_opts o = {.host = "127.0.0.1", .port = *(int *)arg};
    reel_server *server;
    int rc = reel_start_server(handle_echo, NULL, &o, 0, &server);
    if (rc < 0)
        return rc;
    struct sockaddr_storage ss;   /* server.sockets[0].getsockname() */
    socklen_t len = sizeof ss;
    if ((rc = reel_server_get_sockname(server, 0, &ss, &len)) < 0) {
        reel_server_release(server);
        return rc;
    }
    printf("Serving on ('127.0.0.1', %d)\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
    reel_future *forever;
    if ((rc = reel_server_serve_forever(server, &forever)) == 0)
        rc = reel_await_take(forever, NULL);
    reel_server_release(server);   /* async with server: closes it */
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int port = argc > 1 ? atoi(argv[1]) : 8888;
    int rc = reel_run(main_task, &port, NULL);
    fprintf(stderr, "%s\n", reel_strerror(rc));
    return rc < 0;
}
