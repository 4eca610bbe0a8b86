/* asyncio docs, Transports and Protocols > "UDP Echo Client".
 * Optional argument: the port (default 9999, as in the docs).
 *
 *   class EchoClientProtocol:
 *       def __init__(self, message, on_con_lost):
 *           self.message = message
 *           self.on_con_lost = on_con_lost
 *           self.transport = None
 *
 *       def connection_made(self, transport):
 *           self.transport = transport
 *           print('Send:', self.message)
 *           self.transport.sendto(self.message.encode())
 *
 *       def datagram_received(self, data, addr):
 *           print("Received:", data.decode())
 *           print("Close the socket")
 *           self.transport.close()
 *
 *       def error_received(self, exc):
 *           print('Error received:', exc)
 *
 *       def connection_lost(self, exc):
 *           print("Connection closed")
 *           self.on_con_lost.set_result(True)
 *
 *   async def main():
 *       loop = asyncio.get_running_loop()
 *       on_con_lost = loop.create_future()
 *       message = "Hello World!"
 *       transport, protocol = await loop.create_datagram_endpoint(
 *           lambda: EchoClientProtocol(message, on_con_lost),
 *           remote_addr=('127.0.0.1', 9999))
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
    reel_transport *transport;
} client;

static void connection_made(void *self, reel_transport *t)
{
    client *c = self;
    c->transport = t;
    printf("Send: %s\n", c->message);
    reel_transport_sendto(t, c->message, strlen(c->message), NULL, 0);
}

static void datagram_received(void *self, const void *data, size_t len,
                              const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addr; (void)addrlen;
    printf("Received: %.*s\n", (int)len, (const char *)data);
    puts("Close the socket");
    reel_transport_close(((client *)self)->transport);
}

static void error_received(void *self, int err)
{
    (void)self;
    printf("Error received: %s\n", reel_strerror(err));
}

static void connection_lost(void *self, int err)
{
    (void)err;
    puts("Connection closed");
    reel_future_set_result(((client *)self)->on_con_lost, NULL);
}

static int main_task(void *arg, void **result)
{
    (void)result;
    reel_loop *loop = reel_get_running_loop();
    client c = {.message = "Hello World!"};
    reel_loop_create_future(loop, &c.on_con_lost);
    reel_protocol p = {.user = &c, .connection_made = connection_made,
                       .datagram_received = datagram_received,
                       .error_received = error_received, .connection_lost = connection_lost};
    reel_datagram_opts o = {.remote_host = "127.0.0.1", .remote_port = *(int *)arg};
    reel_future *f;
    int rc = reel_loop_create_datagram_endpoint(loop, &p, &o, &f);
    if (rc == 0 && (rc = reel_await(f, NULL)) == 0) {
        rc = reel_await(c.on_con_lost, NULL);
        reel_transport_close(c.transport);   /* finally: */
    }
    reel_future_release(f);
    reel_future_release(c.on_con_lost);
    return rc;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 9999;
    int rc = reel_run(main_task, &port, NULL);
    if (rc < 0)
        fprintf(stderr, "%s\n", reel_strerror(rc));
    return rc < 0;
}
