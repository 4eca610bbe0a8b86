/* tests/helpers/net.h — helpers for the networking tests: a recording
 * stream/datagram peer protocol, an echo server, data patterns with
 * checksums, and waiting on futures with a safety-net timeout.
 *
 * Networking scenarios (tests/helpers/scenarios_*.c) take a reel_loop and
 * drive it themselves, using only reel calls on loopback addresses, so the
 * same scenario runs on the epoll backend (tests/test_tcp.c, ...) and,
 * later, on the simulated network. th_net_scenarios lists them. */
#ifndef REEL_TEST_NET_H
#define REEL_TEST_NET_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "helpers.h"

/* Generous safety nets (seconds of loop time), never timing windows. */
#define TH_NET_TIMEOUT_S 60.0

/* Run until fut is done (or the safety net fires, which fails the test).
 * Returns the future's outcome code (0 for a result). */
int th_wait(reel_loop *loop, reel_future *fut);
/* th_wait, then release the future; *result gets the result (NULL ok). */
int th_wait_release(reel_loop *loop, reel_future *fut, void **result);
/* Run until *flag becomes true (checked every millisecond of loop time). */
void th_wait_flag(reel_loop *loop, const bool *flag);
/* Run until *count >= want. */
void th_wait_count(reel_loop *loop, const size_t *count, size_t want);
/* Run n loop iterations. */
void th_spin(reel_loop *loop, int iterations);

/* ------------------------------------------------------ data patterns */

/* Byte i of the deterministic test stream `seed`. */
uint8_t th_pattern_byte(uint64_t seed, uint64_t i);
/* Fill buf with stream bytes [offset, offset + len). */
void th_pattern_fill(uint64_t seed, uint64_t offset, void *buf, size_t len);

/* A running checksum that does not depend on how the bytes were split. */
typedef struct th_sum {
    uint64_t h;
    uint64_t bytes;
    uint64_t word;
    unsigned nword;
} th_sum;
void th_sum_init(th_sum *s);
void th_sum_add(th_sum *s, const void *data, size_t len);
uint64_t th_sum_final(const th_sum *s);

/* -------------------------------------------------------- the peer */

/* A protocol that records what happens to it. Futures complete on
 * connection_made / eof_received / connection_lost, and when `target`
 * bytes have been received. */
typedef struct th_peer {
    reel_loop *loop;
    reel_transport *t;       /* set in connection_made (a reference) */
    reel_protocol proto;     /* the table, user = this peer */
    reel_future *made, *eof, *lost, *got; /* owned */
    int lost_err;
    uint64_t received;
    th_sum sum;
    uint8_t *keep;           /* first keep_cap received bytes */
    size_t keep_cap, keep_len;
    uint64_t target;
    bool keep_open;          /* eof_received returns this */
    bool echo;               /* write back what arrives */
    size_t echo_slice;       /* echo: in writes of this many bytes (0: one write) */
    bool echo_flow;          /* echo: pause reading while writing is paused */
    bool close_on_eof;       /* after eof: write_eof / close */
    size_t pauses, resumes;  /* pause_writing / resume_writing calls */
    size_t buffer_at_pause, buffer_at_resume;
    /* buffered protocol mode */
    bool buffered;
    uint8_t bufspace[4096];
    /* datagrams */
    size_t datagrams;
    int errors_received;
    int last_error;
    uint8_t last_dgram[2048];
    size_t last_dgram_len;
    struct sockaddr_storage last_from;
    socklen_t last_fromlen;
    bool dgram_echo;
    /* writer: send `to_send` bytes of pattern seed with flow control */
    uint64_t to_send, sent, send_seed;
    th_sum sent_sum;
    bool eof_after_send;
    size_t write_chunk;
} th_peer;

/* Initialise a stream peer (plain protocol) or a buffered one. */
void th_peer_init(th_peer *p, reel_loop *loop);
void th_peer_init_buffered(th_peer *p, reel_loop *loop);
void th_peer_init_datagram(th_peer *p, reel_loop *loop);
/* Release the futures and the transport reference. */
void th_peer_fini(th_peer *p);
/* Start writing p->to_send pattern bytes (continues on resume_writing). */
void th_peer_start_sending(th_peer *p);

/* --------------------------------------------------------- servers */

/* A server whose factory hands out peers from a fixed array. */
typedef struct th_server {
    reel_loop *loop;
    reel_server *server;     /* a reference */
    th_peer *peers;
    size_t npeers, made;
    th_peer tmpl;            /* flags copied into each new peer */
    bool refuse;             /* factory fails */
} th_server;

/* factory for reel_loop_create_server(…, th_server_factory, srv, …) */
int th_server_factory(void *arg, reel_protocol *out);
void th_server_init(th_server *s, reel_loop *loop, size_t max_peers);
/* Start a TCP server on 127.0.0.1 (ephemeral port); returns the port. */
int th_server_start_tcp(th_server *s, const char *host);
/* Close the server, its clients, wait until closed, release the peers. */
void th_server_fini(th_server *s);
/* The bound port of a server's first socket. */
int th_server_port(reel_server *srv);

/* Connect a peer to host:port; returns the future's outcome. */
int th_connect(reel_loop *loop, th_peer *p, const char *host, int port);

/* ------------------------------------------------------- scenarios */

typedef struct th_net_scenario {
    const char *name;
    void (*run)(reel_loop *loop);
} th_net_scenario;

/* NULL-terminated list of every backend-independent scenario. */
extern const th_net_scenario th_net_scenarios[];

#define TH_SCENARIO(name) void name(reel_loop *loop)
/* scenarios_tcp.c */
TH_SCENARIO(sc_tcp_echo);
TH_SCENARIO(sc_tcp_large_transfer_checksummed);
TH_SCENARIO(sc_tcp_half_close);
TH_SCENARIO(sc_tcp_abort_drops_unsent_data);
TH_SCENARIO(sc_tcp_peer_reset_reported);
TH_SCENARIO(sc_tcp_connection_refused);
TH_SCENARIO(sc_tcp_flow_control_marks);
TH_SCENARIO(sc_tcp_buffered_protocol);
TH_SCENARIO(sc_tcp_pause_resume_reading);
TH_SCENARIO(sc_tcp_reader_served_while_a_task_spins_on_sleep0);
TH_SCENARIO(sc_tcp_write_after_close);
TH_SCENARIO(sc_tcp_writelines_vectored);
TH_SCENARIO(sc_tcp_writes_in_one_iteration_coalesce_keeping_order_and_eof);
TH_SCENARIO(sc_tcp_extra_info);
TH_SCENARIO(sc_tcp_protocol_tables_shared_users_own);
TH_SCENARIO(sc_tcp_close_flushes_buffer);
TH_SCENARIO(sc_tcp_set_protocol);
TH_SCENARIO(sc_tcp_peer_vanishes_mid_write);
TH_SCENARIO(sc_tcp_bad_input);
TH_SCENARIO(sc_tcp_local_addr);
TH_SCENARIO(sc_tcp_buffered_protocol_failure);
TH_SCENARIO(sc_tcp_echoed_slices_of_reads_in_one_iteration_keep_their_bytes);
/* scenarios_server.c */
TH_SCENARIO(sc_server_many_clients);
TH_SCENARIO(sc_server_close_clients);
TH_SCENARIO(sc_server_abort_clients);
TH_SCENARIO(sc_server_wait_closed_both_orders);
TH_SCENARIO(sc_server_serve_forever_cancel);
TH_SCENARIO(sc_server_start_serving_later);
TH_SCENARIO(sc_server_bind_in_use);
TH_SCENARIO(sc_server_factory_refuses);
TH_SCENARIO(sc_server_dual_stack_hosts);
/* scenarios_udp.c */
TH_SCENARIO(sc_udp_round_trip);
TH_SCENARIO(sc_udp_burst_in_order_and_pause_mid_batch);
TH_SCENARIO(sc_udp_connected_endpoint);
TH_SCENARIO(sc_udp_oversize_datagram);
TH_SCENARIO(sc_udp_refused_reported);
TH_SCENARIO(sc_udp_bad_input);
TH_SCENARIO(sc_udp_reuse_port_and_broadcast);
TH_SCENARIO(sc_udp_gathered_sends_in_order_errors_per_datagram);
/* scenarios_unix.c */
TH_SCENARIO(sc_unix_echo);
TH_SCENARIO(sc_unix_stale_socket_removed);
TH_SCENARIO(sc_unix_cleanup_on_close);
TH_SCENARIO(sc_unix_datagram);
/* scenarios_sock.c */
TH_SCENARIO(sc_sock_connect_accept_sendall_recv);
TH_SCENARIO(sc_sock_recvfrom_sendto);
TH_SCENARIO(sc_sock_cancel_recv);
TH_SCENARIO(sc_sock_bad_fds);
TH_SCENARIO(sc_sock_connect_refused);
TH_SCENARIO(sc_sock_wrap_existing_sockets);
/* scenarios_pipe.c */
TH_SCENARIO(sc_pipe_round_trip);
TH_SCENARIO(sc_pipe_reader_closed_detected);
TH_SCENARIO(sc_pipe_bad_input);

#endif
