/* asyncio docs, Transports and Protocols > "TCP Echo Client" (a protocol).
 * Optional argument: the port (default 8888, as in the docs).
 *
 *   class EchoClientProtocol(asyncio.Protocol):
 *       def __init__(self, message, on_con_lost):
 *           self.message = message
 *           self.on_con_lost = on_con_lost
 *
 *       def connection_made(self, transport):
 *           transport.write(self.message.encode())
 *           print('Data sent: {!r}'.format(self.message))
 *
 *       def data_received(self, data):
 *           print('Data received: {!r}'.format(data.decode()))
 *
 *       def connection_lost(self, exc):
 *           print('The server closed the connection')
 *           self.on_con_lost.set_result(True)
 *
 *   async def main():
 *       loop = asyncio.get_running_loop()
 *       on_con_lost = loop.create_future()
 *       message = 'Hello World!'
 *       transport, protocol = await loop.create_connection(
 *           lambda: EchoClientProtocol(message, on_con_lost),
 *           '127.0.0.1', 8888)
 *       try:
 *           await on_con_lost
 *       finally:
 *           transport.close()
 *
 *   asyncio.run(main())
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <reel.h>

typedef struct client {
    const char *message;
    reel_future *on_con_lost;
} client;

static void connection_made(void *self, reel_transport *t)
{
    client *c = self;
    reel_transport_write(t, c->message, strlen(c->message));
    printf("Data sent: '%s'\n", c->message);
}

static void data_received(void *self, const void *data, size_t len)
{
    (void)self;
    printf("Data received: '%.*s'\n", (int)len, (const char *)data);
}

static void connection_lost(void *self, int err)
{
    (void)err;
    puts("The server closed the connection");
    reel_future_set_result(((client *)self)->on_con_lost, NULL);
}

static int main_task(void *arg, void **result)
{
    (void)result;
    reel_loop *loop = reel_get_running_loop();
    client c = {.message = "Hello World!"};
    reel_loop_create_future(loop, &c.on_con_lost);
    reel_protocol p = {.user = &c, .connection_made = connection_made,
                       .data_received = data_received, .connection_lost = connection_lost};
    reel_connection_opts o = {.host = "127.0.0.1", .port = *(int *)arg};
    reel_future *f;
    reel_transport *transport;
    int rc = reel_loop_create_connection(loop, &p, &o, &f);
    if (rc == 0 && (rc = reel_await(f, (void **)&transport)) == 0) {
        rc = reel_await(c.on_con_lost, NULL);
        reel_transport_close(transport);   /* finally: */
    }
    reel_future_release(f);
    reel_future_release(c.on_con_lost);
    return rc;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 8888;
    int rc = reel_run(main_task, &port, NULL);
    if (rc < 0)
        fprintf(stderr, "%s\n", reel_last_error()->message ? reel_last_error()->message
                                                            : reel_strerror(rc));
    return rc < 0;
}
