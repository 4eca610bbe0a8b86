/* sim/internal.h — the simulated world's private structures, shared by
 * sim/world.c (world, hosts, scheduler, faults, determinism check) and
 * sim/net.c (the simulated backend: descriptors, TCP, UDP, Unix, pipes). */
#ifndef REEL_SIM_INTERNAL_H
#define REEL_SIM_INTERNAL_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "reel/backend.h"
#include "reel/sim.h"

/* Limits, with units in their names. */
enum {
    sim_hosts_max = 4096,
    sim_fds_per_host_max = 1 << 20,
    sim_events_per_poll_max = 256,
    sim_rounds_without_progress_max = 1000 * 1000,     /* livelock guard (default) */
    sim_history_events_max = 16 * 1000 * 1000,          /* check mode */
    sim_name_bytes = 64,
    sim_names_max = 4096,
    sim_pending_done_max = 65536,
    sim_faults_max = 100000,                            /* timed faults per run */
    sim_schedule_file_max_bytes = 16 * 1024 * 1024,
    sim_ephemeral_port_first = 32768,
    sim_mark_fds_max = 4,                               /* sim_world_mark: kept listeners */
};
#define SIM_INF UINT64_MAX
#define SIM_RETRANSMIT_NS 200000000ull   /* stream segment retry across a partition */
#define SIM_SYN_RETRY_NS 1000000000ull   /* connection attempt retry */
#define sim_decisions_max 1000000    /* per-operation decisions in a schedule file */
#define sim_buggify_site_on 0.5          /* a site is enabled for a run */
#define sim_buggify_fire 0.25            /* an enabled site fires per call */
#define sim_swarm_quiet_default_ns 10000000000ull /* swarm: faults stop at 10 s */

/* The swarm's rate multiplier (reel_sim_config.swarm_scale): 1 unless
 * set in (0, 1). */
static inline double sim_swarm_scale(const reel_sim_config *c)
{
    return c->swarm_scale > 0 && c->swarm_scale < 1 ? c->swarm_scale : 1.0;
}

/* ------------------------------------------------------------------ PRNG */

typedef struct sim_rng {
    uint64_t s[4];
    /* Schedule fuzzing: draw k takes bytes[k] while k < nbytes (s[] steps
     * anyway), then s[]. Not owned (the world owns the copy). */
    const uint8_t *bytes;
    size_t nbytes, pos;
} sim_rng;

void sim_rng_seed(sim_rng *r, uint64_t seed);
/* The xoshiro of `seed`, with its first n draws replaced by `bytes`. */
void sim_rng_seed_bytes(sim_rng *r, uint64_t seed, const uint8_t *bytes, size_t n);
/* The seed of a world given schedule bytes and no seed. */
uint64_t sim_rng_bytes_hash(const uint8_t *bytes, size_t n);
uint64_t sim_rng_next(sim_rng *r);
/* Uniform in [0, n); 0 when n == 0. */
uint64_t sim_rng_below(sim_rng *r, uint64_t n);
/* True with probability p. */
bool sim_rng_chance(sim_rng *r, double p);

/* splitmix64's output function of x + golden ratio: folds a value into the
 * world hash. Inline: the hash takes four per noted event, three events per
 * idle wake-up, and the calls were ~18% of the hash's instructions. */
static inline uint64_t sim_mix(uint64_t x)
{
    uint64_t z = x + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ------------------------------------------------------------- sockets */

typedef struct reel_sim_host sim_host;
typedef struct sim_sock sim_sock;
typedef struct reel_sim sim_world;

/* A segment travelling one direction of a stream connection. */
typedef struct sim_seg {
    struct sim_seg *next;
    uint64_t arrive_ns;
    uint64_t sent_ns;            /* for the log's message flows */
    uint32_t len;
    uint8_t fin;
    uint8_t rst;
    uint8_t data[];
} sim_seg;

/* One direction of a stream: from ends[d] to ends[1 - d]. */
typedef struct sim_dir {
    sim_seg *head, *tail;
    uint64_t last_arrive_ns;   /* keeps arrivals in order */
    uint64_t unread_bytes;     /* written but not yet read: the window */
    bool event_pending;        /* an EV_SEG for the head is scheduled */
    bool fin_sent;
} sim_dir;

/* A stream connection (TCP, Unix, socketpair, pipe). */
typedef struct sim_conn {
    uint64_t id;
    sim_sock *ends[2];
    sim_host *hosts[2];         /* hosts of the ends (stay set after close) */
    bool silent[2];             /* end vanished without a reset (crash) */
    sim_dir dir[2];
    uint32_t refs;              /* ends alive + events pending */
    bool local;                 /* both ends on one host */
} sim_conn;

typedef struct sim_dgram {
    struct sim_dgram *next;
    struct sockaddr_storage from;
    socklen_t fromlen;
    uint32_t len;
    uint8_t data[];
} sim_dgram;

enum sim_sock_state {
    SS_NEW = 0,
    SS_LISTENING,
    SS_CONNECTING,
    SS_CONNECTED,
    SS_CLOSED_ERR,   /* connect failed or reset */
};

enum sim_sock_kind { SK_STREAM = 1, SK_DGRAM, SK_PIPE_R, SK_PIPE_W };

struct sim_sock {
    int fd;
    sim_host *host;
    int domain;
    uint8_t kind;
    uint8_t state;
    uint32_t interest;           /* REEL_IO_READ | REEL_IO_WRITE */
    struct sockaddr_storage local, peer;
    socklen_t local_len, peer_len;
    bool bound, has_peer;
    /* stream */
    sim_conn *conn;
    int side;                    /* this socket is conn->ends[side] */
    uint8_t *rx;                 /* received, unread bytes */
    size_t rx_off, rx_len, rx_cap;
    bool rx_fin, rd_shut, wr_shut, reset;
    int so_error;
    uint64_t connect_deadline_ns;
    /* listener */
    int backlog;
    sim_sock **acceptq;          /* established, not yet accepted */
    int acceptq_len, acceptq_cap;
    sim_sock *listener;          /* while waiting in a listener's queue */
    /* datagram */
    sim_dgram *dq_head, *dq_tail;
    uint32_t dq_len;
    /* options */
    bool reuseaddr, reuseport, broadcast, linger0, nodelay, keepalive;
    int sndbuf, rcvbuf;
};

/* A Unix socket "file": its path and inode number. */
typedef struct sim_upath {
    char path[108];
    uint64_t ino;
} sim_upath;

/* A completed async request / signal waiting for the host's poll. */
typedef struct sim_note {
    struct sim_note *next;
    uint32_t kind;               /* REEL_EV_DONE / REEL_EV_SIGNAL */
    int64_t id, value;
    void *ptr;
} sim_note;

/* The backend instance of one host. */
typedef struct sim_backend {
    reel_backend base;
    sim_host *host;
} sim_backend;

struct reel_sim_host {
    sim_world *world;
    uint32_t id;
    /* The first two of the four mixes sim_note_event makes of this host's
     * W_STEP (always a = b = 0) and W_POLL (a = k; k = 0, and the first
     * mix alone for other k): they depend on the id only. */
    uint64_t note_step_pre, note_poll_pre0, note_poll_mix1;
    char name[sim_name_bytes];
    struct in_addr addr;
    bool up;
    reel_loop *loop;
    sim_backend *backend;
    /* program */
    reel_sim_boot_fn boot;
    reel_sim_shutdown_fn shutdown;
    void *prog_arg;
    /* clock: host = base_host + (world - base_world) * (1e6 + ppm) / 1e6 */
    uint64_t clock_base_world, clock_base_host;
    int32_t drift_ppm;
    /* descriptors */
    sim_sock **fds;
    int nfds;
    int fd_hi;                   /* one past the highest fd ever installed */
    int nwatched;                /* sockets with interest */
    uint16_t next_port;
    /* pending notes for poll */
    sim_note *notes_head, *notes_tail;
    uint32_t nnotes;
    atomic_int woken;            /* wake(): thread-safe flag */
    bool dirty;                  /* readiness may have changed */
    bool crashing;               /* closes vanish instead of sending FIN */
    uint32_t incarnation;        /* bumped by each boot */
    struct sim_upath *unix_paths; /* bound Unix socket paths ("files") */
    int nunix_paths;
    uint64_t next_ino;
    uint8_t signals_watched[65]; /* by signal number */
    bool protect;                /* the swarm leaves it alone */
    uint64_t paused_until_ns;    /* world time its process resumes (0: running) */
    uint64_t late_ns;            /* perturbation: how late its next timer wakes it */
    bool swarm_crashed;          /* down because of a swarm crash: restarts */
    bool swarm_drift;            /* drifting because of a swarm clock fault */
    uint32_t dec_calls[16];      /* per decision kind (DK_*): calls so far, fired or not */
    uint64_t mark_clock_host;    /* sim_world_mark: its clock then, */
    uint64_t mark_next_ino;      /* ... and these */
    uint32_t mark_incarnation;
    uint16_t mark_next_port;
    /* ... and its listening sockets, kept open across a rewind (at most
     * sim_mark_fds_max; mark_fds_ok false: something else was open) */
    bool mark_fds_ok;
    int mark_nfds, mark_nwatched;
    sim_sock *mark_socks[sim_mark_fds_max];
    uint32_t mark_interest[sim_mark_fds_max];
};

/* A name in the resolver table. */
typedef struct sim_name {
    char name[sim_name_bytes];
    struct in_addr addr;
} sim_name;

/* Per-pair link shape and faults. */
typedef struct sim_link {
    uint32_t a, b;               /* directed: a -> b */
    bool has_shape;
    uint64_t latency_ns, jitter_ns, bandwidth_bytes_per_s;
    bool cut;                    /* partitioned */
    uint64_t clog_until_ns;
    uint64_t spike_ns, spike_until_ns; /* extra latency until then */
} sim_link;

enum sim_ev_kind {
    EV_SEG = 1,       /* deliver the head of conn->dir[d] */
    EV_SYN,           /* a connection attempt reaches its destination */
    EV_SYNACK,        /* ... and its answer reaches the client */
    EV_REFUSED,
    EV_CONNECT_TIMEOUT,
    EV_DGRAM,         /* a datagram reaches dst */
    EV_ICMP,          /* port unreachable reaches the sender (addr: its socket, dgram->from: the peer) */
    EV_NOTE,          /* a request completes / a signal arrives at a host */
    EV_JOB,           /* run an executor job, then complete it */
    EV_CALL,          /* scripted reel_sim_at callback */
    EV_FAULT,         /* the swarm's next timed fault of family d */
    EV_FAULT_END,     /* fault schedule entry `fault` ends */
    EV_QUIET,         /* the quiet phase begins */
    EV_FAULT_FILE,    /* entry `fault` of a schedule file starts */
    EV_FAULT_OVR,     /* override `fault` (a REEL_SIM_DEC_FAULT) starts */
};

typedef struct sim_ev {
    uint64_t when_ns;
    uint64_t seq;
    uint8_t kind;
    uint8_t d;
    uint32_t host;               /* destination host id */
    sim_conn *conn;
    sim_sock *sock;              /* EV_SYN: client socket; EV_CONNECT_TIMEOUT */
    uint64_t sock_gen;           /* guards sock against reuse */
    struct sockaddr_storage addr; /* EV_SYN / EV_DGRAM destination */
    socklen_t addrlen;
    uint32_t src;                /* EV_DGRAM: sending host (for ICMP errors) */
    sim_dgram *dgram;
    sim_note *note;
    reel_backend_req *req;
    reel_sim_fn fn;
    void *arg;
    uint32_t incarnation;        /* EV_NOTE / EV_JOB: the host's boot it is for */
    uint32_t fault;              /* EV_FAULT_END: index in the fault schedule */
} sim_ev;

/* One entry of the event history kept in check mode. */
typedef struct sim_hist {
    uint64_t when_ns;
    uint64_t hash;
    uint32_t what;
    uint32_t host;
    int64_t a, b;
} sim_hist;

/* Timed fault families of the swarm (the order of their draws). */
enum sim_family {
    FAM_PARTITION = 0, FAM_CLOG, FAM_SPIKE, FAM_RESET, FAM_CRASH, FAM_PAUSE, FAM_CLOCK,
    FAM_COUNT,
};

enum sim_fault_kind {
    FK_PARTITION = 1, FK_CLOG, FK_SPIKE, FK_RESET, FK_CRASH, FK_PAUSE, FK_CLOCK_JUMP,
    FK_CLOCK_DRIFT,
};

/* One entry of the fault schedule: what the swarm did, as data. */
typedef struct sim_fault {
    uint8_t kind;                /* enum sim_fault_kind */
    bool one_way;                /* partition: only side A -> side B */
    bool ended;
    uint64_t start_ns, dur_ns;   /* dur 0: instantaneous (reset, clock jump) */
    uint32_t a, b;               /* host ids: the host, or the link a -> b */
    uint64_t side_a;             /* partition: host ids (mod 64) on side A */
    uint64_t side_b;             /* ... and on side B */
    int64_t arg;                 /* spike ns, jump ns, drift ppm */
} sim_fault;

struct reel_sim {
    reel_sim_config cfg;
    uint64_t seed;
    sim_rng rng;
    uint64_t now_ns;
    uint64_t hash;
    uint64_t nevents;
    /* hosts */
    sim_host **hosts;
    uint32_t nhosts;
    sim_host *driver;            /* host whose loop drives the world, if any */
    sim_host *stepping;          /* host being stepped from the driver */
    /* events */
    sim_ev *heap;
    uint32_t heap_len, heap_cap;
    uint64_t ev_seq;
    /* names and links */
    sim_name *names;
    uint32_t nnames;
    sim_link *links;
    uint32_t nlinks;
    uint64_t next_conn_id;
    /* check mode */
    bool keep_history;
    sim_hist *history;
    uint64_t nhistory, history_cap;
    bool history_overflow;
    /* sockets are freed lazily: events may name them */
    uint64_t sock_gen;
    /* phases */
    uint64_t quiet_at_ns;        /* SIM_INF: no quiet phase */
    bool liveness_failed;
    char liveness_msg[256];
    /* REEL_BUGGIFY sites seen so far, and whether each is on */
    struct sim_buggify_site *bsites;
    uint32_t nbsites, bsites_cap;
    bool buggify_on;             /* swarm drew BUGGIFY for this run */
    /* the swarm's timed faults: per family, the mean time between two
     * faults (0: family off); the schedule of faults made so far */
    uint64_t fam_interval_ns[FAM_COUNT];
    sim_fault *sched;
    uint32_t nsched, sched_cap;
    /* perturbation inside asyncio's guarantees */
    bool perturb;
    uint64_t timer_late_max_ns;
    /* livelock guard: rounds without virtual time advancing */
    uint64_t livelock_rounds;
    uint64_t idle_rounds;        /* driver polls returned at the same time */
    uint64_t idle_rounds_at_ns;
    /* schedules as data: written (REEL_SIM_SCHEDULE_OUT), or read
     * (REEL_SIM_SCHEDULE) and then the only timed faults of the run */
    void *sched_out;
    struct sim_file_fault *file_faults;
    uint32_t nfile_faults;
    uint32_t file_next;          /* the first file fault that may not have fired */
    int schedule_error;          /* a schedule entry could not apply */
    bool from_file;              /* the timed faults come from a schedule file */
    struct sim_file_dec *file_decs; /* per-operation decisions of the file, sorted */
    uint32_t nfile_decs;
    bool decs_checked;           /* their hosts were checked (sim_schedule_check_hosts) */
    /* decisions addressed by identity (cfg.overrides, sorted, first of
     * each identity kept) and the decision hook (overrides or
     * cfg.on_decision): which DK_* kinds the config makes possible */
    reel_sim_decision *ovr;
    uint32_t novr;
    bool dec_hook;
    uint32_t dec_possible;       /* bit per DK_* */
    uint32_t fault_possible;     /* bit per FAM_* (REEL_SIM_DEC_FAULT) */
    /* the simulator log (REEL_SIM_LOG / cfg.log_path) */
    void *logf;                  /* reel_os_logfile_* */
    char *log_path;
    /* the program's kill gate (reel_sim_set_fault_gate), or NULL */
    reel_sim_fault_gate_fn gate;
    void *gate_arg;
    /* sim_world_mark: what sim_world_rewind goes back to */
    bool marked;
    sim_rng mark_rng;
    uint64_t mark_now_ns, mark_hash, mark_nevents, mark_ev_seq, mark_conn_id, mark_sock_gen;
    uint32_t mark_nhosts;
};

/* Many independent runs on one world (the fuzz kit's kept world): mark
 * an idle world (no faults, links or scripted events), run, and when the
 * run has closed everything, rewind to the mark — clock, PRNG, hash,
 * counters, BUGGIFY sites, each host's clock, ports and decisions, and
 * its loop (rl_loop_mark/rl_loop_rewind) — so the next run behaves exactly
 * as the first did on the fresh world. The mark may be taken with
 * listening servers open (at most sim_mark_fds_max sockets per host, all
 * listening, nothing queued): they are kept, and each run starts from
 * "server listening, nothing connected". Rewind returns -EBUSY and
 * changes nothing when something is open, pending or changed since the
 * mark (a host crashed, paused or drifted; a fault or link was set; a
 * marked socket closed or another still open; the mark could not keep
 * what was open); then free the world. */
void sim_world_mark(reel_sim *w);
int sim_world_rewind(reel_sim *w);

/* One line of a schedule file, hosts still by name. */
typedef struct sim_file_fault {
    sim_fault f;
    int line;
    bool fired;
    char a[sim_name_bytes], b[sim_name_bytes];
    char sides[2][512];          /* partition: comma-separated names */
} sim_file_fault;

typedef struct sim_buggify_site {
    uint64_t key;                /* hash of file name and line */
    bool on;
    uint32_t calls;              /* reached so far (the decision's op index) */
} sim_buggify_site;

/* Per-operation decisions (schedule files): each is identified by its kind,
 * its host and the index of the call among that host's calls of that
 * decision point (BUGGIFY: among the calls of that site), counted whether
 * the decision fired or not. */
enum {
    DK_SHORT_READ, DK_SHORT_WRITE, DK_EINTR, DK_EAGAIN, DK_UDP_LOSS, DK_UDP_DUP,
    DK_UDP_REORDER, DK_TIMER_LATE, DK_RESET, DK_BUGGIFY, DK_COUNT
};

typedef struct sim_file_dec {
    uint8_t kind;
    uint32_t index;
    uint64_t site;               /* BUGGIFY: sim_site_key */
    uint64_t amount;             /* bytes moved, or nanoseconds */
    int line;
    bool used;
    char host[sim_name_bytes];
} sim_file_dec;

/* Whether decision kind `kind` is reached even when the seed's mix turned
 * its family off: a decision hook is set and the config makes it possible. */
static inline bool sim_dec_reachable(const sim_world *w, int kind)
{
    return w->dec_hook && (w->dec_possible >> kind & 1);
}
/* Copy and sort cfg.overrides, work out dec_possible (before the swarm
 * draw changes the config). -EINVAL on a bad entry, -ENOMEM. */
int sim_overrides_open(sim_world *w, const reel_sim_config *c);
/* Schedule the timed faults the overrides add (EV_FAULT_OVR). */
void sim_overrides_schedule(sim_world *w);

/* The draw said `fired` (and *amount); write it to the schedule if it fired,
 * or, running from a schedule file, override both with the file's. */
bool sim_decide(sim_world *w, sim_host *h, int kind, uint32_t index, uint64_t site, const char *site_name,
                bool fired, uint64_t *amount);
uint64_t sim_site_key(const char *file, int line);
void sim_schedule_check_hosts(sim_world *w);

/* world.c */
uint64_t sim_host_now_drift(const sim_host *h); /* sim_host_now with drift */
uint64_t sim_world_from_host(sim_host *h, uint64_t host_ns);
/* Keeps an event for reel_sim_history (sim_note_event's cold half). */
void sim_note_history(sim_world *w, uint32_t what, uint32_t hid, int64_t a, int64_t b);
int sim_schedule(sim_world *w, const sim_ev *ev);
sim_link *sim_link_get(sim_world *w, uint32_t a, uint32_t b, bool create);
bool sim_link_blocked(sim_world *w, uint32_t a, uint32_t b, uint64_t *until_ns);
uint64_t sim_link_delay(sim_world *w, const sim_host *a, const sim_host *b, size_t bytes);
sim_host *sim_host_by_addr(sim_world *w, const struct in_addr *addr);
void sim_draw_late_slow(sim_world *w, sim_host *h, uint32_t index);
void sim_report_livelock(sim_world *w, sim_host *h, uint64_t rounds);
int sim_drive(sim_world *w, sim_host *driver, uint64_t deadline_ns, bool (*done)(void *), void *arg);
void sim_log(sim_world *w, const char *msg, size_t len);
bool sim_resolve_name(sim_world *w, const char *name, struct in_addr *out);
void sim_event_release(sim_ev *ev);
/* An event that can no longer change anything when it fires (a connect
 * timeout for a connection that is made, failed or gone): what
 * sim_world_rewind may drop. */
bool sim_event_is_stale(const sim_ev *ev);

/* fault.c */
void sim_swarm_draw_timed(sim_world *w);
void sim_fault_event(sim_world *w, sim_ev *ev);
int sim_log_open(sim_world *w);
int sim_schedule_open(sim_world *w);
void sim_log_close(sim_world *w);
void sim_trace(sim_world *w, const sim_host *h, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int sim_host_crash(sim_host *h);
int sim_host_boot(sim_host *h);

/* net.c */
int sim_backend_new(sim_host *h, sim_backend **out);
void sim_process_event(sim_world *w, sim_ev *ev);
void sim_host_drop_all(sim_host *h, bool crash);
bool sim_host_has_io(sim_host *h);
void sim_conn_reset_all(sim_host *h);

/* What sim_note_event records (for the hash and the history). */
enum sim_what {
    W_EV = 1,        /* a world event was processed: a = kind, b = detail */
    W_STEP,          /* a host loop iteration */
    W_POLL,          /* a host poll: a = events returned */
    W_OP,            /* a backend op: a = op id, b = result */
    W_FAULT,         /* a fault was applied */
    W_TIME,          /* world time advanced: a = new time */
};

/* The first two of sim_note_event's four mixes: they depend on the event's
 * kind, host and first argument only, so a host computes its W_STEP and
 * W_POLL ones once (note_step_pre, note_poll_pre0). */
static inline uint64_t sim_note_pre(uint32_t what, uint32_t hid, int64_t a)
{
    return sim_mix(sim_mix(((uint64_t)what << 32) ^ hid) ^ (uint64_t)a);
}

/* sim_note_event given its first two mixes (pre = sim_note_pre(what, hid, a)). */
static inline void sim_note_event_pre(sim_world *w, uint64_t pre, uint32_t what, uint32_t hid, int64_t a,
                                      int64_t b)
{
    uint64_t x = sim_mix(pre ^ (uint64_t)b ^ (w->now_ns * 0x9e3779b97f4a7c15ull));
    w->hash = sim_mix(w->hash ^ x);
    w->nevents++;
    if (__builtin_expect(w->keep_history, 0))
        sim_note_history(w, what, hid, a, b);
}

/* Folds one event into the world hash (and the history when kept). Inline:
 * every iteration notes two or three (an idle wake-up: W_STEP, W_POLL,
 * W_TIME), and at a call site with constant arguments the compiler folds
 * the first mixes. The value is the same as ever: recorded hashes stay. */
static inline void sim_note_event(sim_world *w, uint32_t what, const sim_host *h, int64_t a, int64_t b)
{
    uint32_t hid = h ? h->id : UINT32_MAX;
    sim_note_event_pre(w, sim_note_pre(what, hid, a), what, hid, a, b);
}

/* The host's clock (its monotonic time). Inline: the loop reads it twice
 * an iteration; without drift it is the world's clock plus an offset. */
static inline uint64_t sim_host_now(const sim_host *h)
{
    if (h->drift_ppm == 0)
        return h->clock_base_host + (h->world->now_ns - h->clock_base_world);
    return sim_host_now_drift(h);
}

/* Perturbation: how late (never early) the host's next timer wakes it.
 * Inline: drawn after every step and timed poll, and in a world without
 * perturbation or a schedule that could decide it, nothing is drawn. */
static inline void sim_draw_late(sim_world *w, sim_host *h)
{
    uint32_t index = h->dec_calls[DK_TIMER_LATE]++;
    if (!w->perturb && !w->from_file && !sim_dec_reachable(w, DK_TIMER_LATE)) {
        h->late_ns = 0; /* nothing drawn, nothing can fire: sim_decide would say no */
        return;
    }
    sim_draw_late_slow(w, h, index);
}

/* Backend op ids for W_OP (stable: they feed the hash). */
enum sim_op {
    OP_SOCKET = 1, OP_CLOSE, OP_BIND, OP_LISTEN, OP_ACCEPT, OP_CONNECT, OP_SHUTDOWN,
    OP_READ, OP_WRITE, OP_RECVFROM, OP_SENDTO, OP_PIPE, OP_SOCKETPAIR, OP_SUBMIT,
    OP_RANDOM, OP_WATCH, OP_GETSOCKOPT, OP_SETSOCKOPT, OP_BUGGIFY,
};

#endif
