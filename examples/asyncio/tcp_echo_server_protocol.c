/* asyncio docs, Transports and Protocols > "TCP Echo Server" (a protocol).
 * Optional argument: the port (default 8888, as in the docs; 0 lets the
 * system choose, and "Serving on" shows the port it chose).
 *
 *   class EchoServerProtocol(asyncio.Protocol):
 *       def connection_made(self, transport):
 *           peername = transport.get_extra_info('peername')
 *           print('Connection from {}'.format(peername))
 *           self.transport = transport
 *
 *       def data_received(self, data):
 *           message = data.decode()
 *           print('Data received: {!r}'.format(message))
 *           print('Send: {!r}'.format(message))
 *           self.transport.write(data)
 *           print('Close the client socket')
 *           self.transport.close()
 *
 *   async def main():
 *       loop = asyncio.get_running_loop()
 *       server = await loop.create_server(
 *           lambda: EchoServerProtocol(), '127.0.0.1', 8888)
 *       async with server:
 *           await server.serve_forever()
 *
 *   asyncio.run(main())
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <reel.h>

typedef struct echo { reel_transport *transport; } echo;

static void connection_made(void *self, reel_transport *t)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    if (reel_transport_get_peername(t, &ss, &len) == 0)
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    printf("Connection from ('%s', %d)\n", host, ntohs(sin->sin_port));
    ((echo *)self)->transport = t;
}

static void data_received(void *self, const void *data, size_t len)
{
    echo *e = self;
    printf("Data received: '%.*s'\nSend: '%.*s'\n", (int)len, (const char *)data, (int)len,
           (const char *)data);
    reel_transport_write(e->transport, data, len);
    puts("Close the client socket");
    reel_transport_close(e->transport);
}

static void connection_lost(void *self, int err) { (void)err; free(self); }

static int echo_server_protocol(void *arg, reel_protocol *p)   /* the lambda */
{
    (void)arg;
    *p = (reel_protocol){.user = calloc(1, sizeof(echo)), .connection_made = connection_made,
                         .data_received = data_received, .connection_lost = connection_lost};
    return p->user ? 0 : -ENOMEM;
}

static int main_task(void *arg, void **result)
{
    (void)result;
    reel_loop *loop = reel_get_running_loop();
    reel_server_opts o = {.host = "127.0.0.1", .port = *(int *)arg};
    reel_future *f;
    reel_server *server;
    int rc = reel_loop_create_server(loop, echo_server_protocol, NULL, &o, &f);
    if (rc < 0 || (rc = reel_await(f, (void **)&server)) < 0)
        return rc;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if ((rc = reel_server_get_sockname(server, 0, &ss, &len)) < 0) {
        reel_future_release(f);
        return rc;
    }
    printf("Serving on 127.0.0.1:%d\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
    reel_future *forever;
    if ((rc = reel_server_serve_forever(server, &forever)) == 0)
        rc = reel_await_take(forever, NULL);
    reel_future_release(f);   /* async with server: closes it */
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
