/* sim/net_internal.h — what the files of the simulated backend share
 * (sim/net.c, stream.c, dgram.c, local.c). World-level structures are in
 * sim/internal.h. */
#ifndef REEL_SIM_NET_INTERNAL_H
#define REEL_SIM_NET_INTERNAL_H

#include "internal.h"

#define HOST(b) (((sim_backend *)(b))->host)

/* net.c: descriptors, addressing, helpers */
sim_sock *sim_sock_get(sim_host *h, int fd);
int sim_fd_install(sim_host *h, sim_sock *s);
sim_sock *sim_sock_new(sim_host *h, int domain, uint8_t kind);
void sim_op_note(sim_host *h, uint32_t op, int64_t fd, int64_t result);
static inline uint64_t sim_window_bytes(sim_world *w) { return w->cfg.stream_window_bytes; }
int sim_io_fault(sim_world *w, sim_host *h);
size_t sim_short_io(sim_world *w, sim_host *h, size_t n, bool write);
void sim_mark_dirty(sim_host *h);
int sim_addr_port(const struct sockaddr_storage *a);
int sim_ephemeral_port(sim_host *h, uint8_t kind);
void sim_set_inet(struct sockaddr_storage *ss, socklen_t *len, struct in_addr a, int port);
int sim_to_inet(const struct sockaddr *addr, socklen_t len, sim_host *self, struct in_addr *ip, int *port);
sim_host *sim_route(sim_world *w, sim_host *self, struct in_addr ip);
bool sim_local_matches(const sim_sock *s, struct in_addr dst, sim_host *dst_host);
sim_sock *sim_find_listener(sim_world *w, sim_host *h, struct in_addr ip, int port);
void sim_copy_addr(const struct sockaddr_storage *src, socklen_t srclen, struct sockaddr *addr,
                   socklen_t *len);

/* stream.c: stream connections */
sim_conn *sim_conn_new(sim_world *w);
void sim_dir_clear(sim_dir *d);
void sim_conn_unref(sim_conn *c);
int sim_dir_send(sim_world *w, sim_conn *c, int d, const void *data, size_t len, bool fin, bool rst);
void sim_conn_send_rst(sim_world *w, sim_conn *c, int d);
void sim_rx_discard(sim_sock *s);
static inline size_t sim_rx_avail(const sim_sock *s) { return s->rx_len - s->rx_off; }
void sim_deliver_seg(sim_world *w, sim_conn *c, int d);
sim_sock *sim_server_end(sim_world *w, sim_conn *c, sim_sock *l, const struct sockaddr *dst,
                         socklen_t dstlen);
void sim_ev_syn(sim_world *w, sim_ev *ev);
int sim_sb_accept(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len);
int sim_sb_connect(reel_backend *b, int fd, const struct sockaddr *addr, socklen_t len);
int sim_sb_shutdown(reel_backend *b, int fd, int how);
ssize_t sim_stream_read(sim_host *h, sim_sock *s, const struct iovec *iov, int iovcnt);
ssize_t sim_stream_write(sim_host *h, sim_sock *s, const struct iovec *iov, int iovcnt);

/* dgram.c: datagrams */
sim_sock *sim_dgram_target(sim_host *h, const struct sockaddr *addr, socklen_t len);
void sim_dgram_clear(sim_sock *s);
ssize_t sim_dgram_recv(sim_host *h, sim_sock *s, void *buf, size_t len, struct sockaddr *addr,
                       socklen_t *alen);
ssize_t sim_dgram_send(sim_host *h, sim_sock *s, const void *buf, size_t len,
                       const struct sockaddr *addr, socklen_t alen);
ssize_t sim_sb_recvfrom(reel_backend *b, int fd, void *buf, size_t len, int flags,
                        struct sockaddr *addr, socklen_t *addrlen);
ssize_t sim_sb_sendto(reel_backend *b, int fd, const void *buf, size_t len, int flags,
                      const struct sockaddr *addr, socklen_t addrlen);

/* local.c: Unix paths, socketpairs, pipes */
int sim_sb_socketpair(reel_backend *b, int domain, int type, int protocol, int fds[2]);
int sim_sb_pipe(reel_backend *b, int fds[2]);
int sim_unix_path_find(sim_host *h, const char *path, size_t len);
int sim_unix_path_of(const struct sockaddr *addr, socklen_t len, char out[108], size_t *n);
int sim_connect_unix(sim_host *h, sim_sock *s, const struct sockaddr *addr, socklen_t len);

#endif
