/* asyncio docs, Transports and Protocols > "UDP Echo Server".
 * Optional argument: the port (default 9999, as in the docs; 0 lets the
 * system choose). Unlike the Python, it then prints the bound address
 * (transport.get_extra_info('sockname')), so a caller can learn the port.
 *
 *   class EchoServerProtocol:
 *       def connection_made(self, transport):
 *           self.transport = transport
 *
 *       def datagram_received(self, data, addr):
 *           message = data.decode()
 *           print('Received %r from %s' % (message, addr))
 *           print('Send %r to %s' % (message, addr))
 *           self.transport.sendto(data, addr)
 *
 *   async def main():
 *       print("Starting UDP server")
 *       loop = asyncio.get_running_loop()
 *       transport, protocol = await loop.create_datagram_endpoint(
 *           lambda: EchoServerProtocol(),
 *           local_addr=('127.0.0.1', 9999))
 *       try:
 *           await asyncio.sleep(3600)  # Serve for 1 hour.
 *       finally:
 *           transport.close()
 *
 *   asyncio.run(main())
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <reel.h>

static void connection_made(void *self, reel_transport *t) { *(reel_transport **)self = t; }

static void datagram_received(void *self, const void *data, size_t len,
                              const struct sockaddr *addr, socklen_t addrlen)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
    char host[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    printf("Received '%.*s' from ('%s', %d)\n", (int)len, (const char *)data, host,
           ntohs(sin->sin_port));
    printf("Send '%.*s' to ('%s', %d)\n", (int)len, (const char *)data, host,
           ntohs(sin->sin_port));
    reel_transport_sendto(*(reel_transport **)self, data, len, addr, addrlen);
}

static int main_task(void *arg, void **result)
{
    (void)result;
    puts("Starting UDP server");
    reel_transport *transport = NULL;
    reel_protocol p = {.user = &transport, .connection_made = connection_made,
                       .datagram_received = datagram_received};
    reel_datagram_opts o = {.local_host = "127.0.0.1", .local_port = *(int *)arg};
    reel_future *f;
    int rc = reel_loop_create_datagram_endpoint(reel_get_running_loop(), &p, &o, &f);
    if (rc == 0 && (rc = reel_await(f, NULL)) == 0) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (reel_transport_get_sockname(transport, &ss, &len) == 0)
            printf("Listening on ('127.0.0.1', %d)\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
        rc = reel_sleep(3600);   /* Serve for 1 hour. */
        reel_transport_close(transport);
    }
    reel_future_release(f);
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int port = argc > 1 ? atoi(argv[1]) : 9999;
    int rc = reel_run(main_task, &port, NULL);
    fprintf(stderr, "%s\n", reel_strerror(rc));
    return rc < 0;
}
