/* sim/world.c — the simulated world: one virtual clock, one PRNG, hosts,
 * the event queue that drives them, scripted faults, and the determinism
 * check. The swarm's timed faults, the quiet phase and the log are in
 * sim/fault.c; the network in sim/net.c and its siblings.
 *
 * Driving: the loop of whichever host is run (or reel_sim_run) calls
 * sim_drive(), which repeatedly processes due network events, steps every
 * other host that has work by one loop iteration, and — when nothing is
 * runnable — jumps the clock to the next event or timer. Hosts are visited
 * in creation order and every choice comes from the world's PRNG, so a
 * seed fixes the whole history. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../loop/internal.h"
#include "internal.h"

/* ------------------------------------------------------------ PRNG, hash */

/* splitmix64: expands the seed into xoshiro256** state (and mixes hashes). */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sim_rng_seed(sim_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    r->bytes = NULL;
    r->nbytes = r->pos = 0;
}

uint64_t sim_rng_bytes_hash(const uint8_t *bytes, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ n; /* FNV-1a, then mixed */
    for (size_t i = 0; i < n; i++)
        h = (h ^ bytes[i]) * 0x100000001b3ull;
    return sim_mix(h);
}

void sim_rng_seed_bytes(sim_rng *r, uint64_t seed, const uint8_t *bytes, size_t n)
{
    sim_rng_seed(r, seed);
    r->bytes = bytes;
    r->nbytes = n;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256**, or the next schedule byte in its place. The generator
 * steps either way, so byte k replaces draw k of the seeded world and
 * nothing else: once the bytes run out the draws are the seed's own, and
 * a fuzzer's change to one byte changes one decision. A byte b becomes b
 * repeated over 64 bits, so one byte decides one draw across its whole
 * range: below(n) ~ b * n / 256 and chance(p) is true for b < 256 * p (0
 * always fires a fault that is possible at all). */
uint64_t sim_rng_next(sim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    if (r->pos < r->nbytes)
        return r->bytes[r->pos++] * 0x0101010101010101ull;
    return result;
}

uint64_t sim_rng_below(sim_rng *r, uint64_t n)
{
    if (n == 0)
        return 0;
    return (uint64_t)(((unsigned __int128)sim_rng_next(r) * n) >> 64);
}

bool sim_rng_chance(sim_rng *r, double p)
{
    if (p <= 0)
        return false;
    /* Always draw, so that turning a fault on does not shift later draws
     * only where it fires. */
    double u = (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
    return u < p;
}

/* --------------------------------------------------------------- history */

static __thread bool tls_keep_history;

void sim_note_history(sim_world *w, uint32_t what, uint32_t hid, int64_t a, int64_t b)
{
    if (w->nhistory == w->history_cap) {
        if (w->history_cap >= sim_history_events_max) {
            w->history_overflow = true;
            return;
        }
        uint64_t ncap = w->history_cap ? w->history_cap * 2 : 4096;
        sim_hist *nh = realloc(w->history, ncap * sizeof *nh);
        if (!nh) {
            w->history_overflow = true;
            return;
        }
        w->history = nh;
        w->history_cap = ncap;
    }
    w->history[w->nhistory++] = (sim_hist){w->now_ns, w->hash, what, hid, a, b};
}

/* ----------------------------------------------------------------- config */

void reel_sim_config_default(reel_sim_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->latency_ns = 1000000;
    cfg->local_latency_ns = 10000;
    cfg->stream_window_bytes = 256 * 1024;
    cfg->udp_max_bytes = 65507;
    cfg->udp_queue_max = 256;
    cfg->connect_timeout_ns = 10ull * 1000000000ull;
    cfg->iteration_ns = 1000;
}

static bool prob_ok(double p) { return p >= 0.0 && p <= 1.0; } /* false for NaN */

static int config_check(const reel_sim_config *c)
{
    if (!prob_ok(c->p_short_io) || !prob_ok(c->p_eagain) || !prob_ok(c->p_eintr) ||
        !prob_ok(c->p_udp_loss) || !prob_ok(c->p_udp_dup) || !prob_ok(c->p_udp_reorder) ||
        !prob_ok(c->p_reset) || !prob_ok(c->swarm_scale))
        return -EINVAL;
    if (c->stream_window_bytes == 0 || c->udp_max_bytes == 0 || c->udp_queue_max == 0)
        return -EINVAL;
    if (c->schedule_len > REEL_SIM_SCHEDULE_MAX_BYTES || (!c->schedule_bytes && c->schedule_len))
        return -EINVAL;
    return 0;
}

int reel_sim_seed_parse_env(uint64_t *seed, char *err, size_t errcap)
{
    const char *s = getenv("REEL_SEED");
    if (!s || !*s)
        return 1;
    /* Decimal only: "016" is sixteen, "0x10" and "08z" are mistakes, not
     * seeds in another base or a silent default. */
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            break;
        v = v * 10 + d;
    }
    if (*p || v == 0) {
        if (err && errcap)
            snprintf(err, errcap,
                     "reel sim: REEL_SEED=\"%.40s\" is not a seed: use a decimal number "
                     "from 1 to 18446744073709551615", s);
        return -EINVAL;
    }
    *seed = v;
    return 0;
}

uint64_t reel_sim_seed_from_env(uint64_t fallback)
{
    uint64_t v;
    char err[160];
    int rc = reel_sim_seed_parse_env(&v, err, sizeof err);
    if (rc == 0)
        return v;
    if (rc < 0)
        reel_os_log(err, strlen(err));
    return fallback;
}

/* Swarm testing: each seed picks its own mix of faults, so a sweep covers
 * runs with no faults, with one fault hammered, and with everything on. */
static void swarm_draw(sim_world *w)
{
    reel_sim_config *c = &w->cfg;
    uint32_t mask = c->swarm_faults ? c->swarm_faults : REEL_SIM_SWARM_ALL;
    static const double levels[] = {0.0, 0.0, 0.01, 0.05, 0.2};
    sim_rng *r = &w->rng;
    /* Every draw is made whatever the mask, so a seed's other choices do
     * not shift when a family is masked out. */
    double d[6];
    for (int i = 0; i < 6; i++)
        d[i] = levels[sim_rng_below(r, sizeof levels / sizeof levels[0])];
    static const uint64_t lat[] = {10000, 100000, 1000000, 20000000};
    uint64_t latency = lat[sim_rng_below(r, 4)];
    bool jitter = sim_rng_chance(r, 0.5);
    static const uint32_t win[] = {4096, 65536, 262144};
    uint32_t window = win[sim_rng_below(r, 3)];
    double k = sim_swarm_scale(c);
    for (int i = 0; i < 6; i++)
        d[i] *= k;
    if (mask & REEL_SIM_SWARM_IO) {
        c->p_short_io = d[0];
        c->p_eagain = d[1];
        c->p_eintr = d[2];
    }
    if (mask & REEL_SIM_SWARM_UDP) {
        c->p_udp_loss = d[3];
        c->p_udp_dup = d[4];
        c->p_udp_reorder = d[5];
    }
    if (mask & REEL_SIM_SWARM_LATENCY) {
        c->latency_ns = latency;
        c->jitter_ns = jitter ? latency / 2 : 0;
    }
    if (mask & REEL_SIM_SWARM_WINDOW)
        c->stream_window_bytes = window;
}

/* The log's first lines: what the seed drew. */
static void log_config(sim_world *w)
{
    static const char *const fam[FAM_COUNT] = {"partition", "clog", "spike", "reset",
                                               "crash", "pause", "clock"};
    const reel_sim_config *c = &w->cfg;
    sim_trace(w, NULL, "world seed=%llu swarm=%d latency=%.6f jitter=%.6f window=%u "
              "p_short_io=%g p_eagain=%g p_eintr=%g p_udp_loss=%g p_udp_dup=%g p_udp_reorder=%g "
              "perturb=%d buggify=%d quiet_at=%.6f",
              (unsigned long long)w->seed, c->swarm, (double)c->latency_ns / 1e9,
              (double)c->jitter_ns / 1e9, c->stream_window_bytes, c->p_short_io, c->p_eagain,
              c->p_eintr, c->p_udp_loss, c->p_udp_dup, c->p_udp_reorder, w->perturb, w->buggify_on,
              w->quiet_at_ns == SIM_INF ? -1.0 : (double)w->quiet_at_ns / 1e9);
    for (int f = 0; f < FAM_COUNT; f++)
        if (w->fam_interval_ns[f])
            sim_trace(w, NULL, "swarm family=%s mean_gap=%.6f", fam[f],
                      (double)w->fam_interval_ns[f] / 1e9);
}

int reel_sim_new(reel_sim **out, const reel_sim_config *cfg)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    reel_sim_config c;
    if (cfg)
        c = *cfg;
    else
        reel_sim_config_default(&c);
    int rc = config_check(&c);
    if (rc < 0)
        return rc;
    sim_world *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->cfg = c;
    if (c.schedule_bytes) {
        /* Schedule fuzzing: the bytes replace the first draws of the
         * config's seed, or of a seed hashed from them; REEL_SEED does not
         * apply, so the input file alone reproduces the run. */
        uint8_t *copy = malloc(c.schedule_len ? c.schedule_len : 1);
        if (!copy) {
            free(w);
            return -ENOMEM;
        }
        memcpy(copy, c.schedule_bytes, c.schedule_len);
        w->cfg.schedule_bytes = copy;
        w->seed = c.seed ? c.seed : sim_rng_bytes_hash(copy, c.schedule_len);
        sim_rng_seed_bytes(&w->rng, w->seed, copy, c.schedule_len);
    } else {
        /* REEL_SEED picks the seed of worlds that ask for it (seed 0) only: a
         * world created with its own seed keeps it, so one repro line never
         * changes the other worlds of the same program. */
        w->seed = c.seed;
        if (!w->seed) {
            char err[160];
            rc = reel_sim_seed_parse_env(&w->seed, err, sizeof err);
            if (rc < 0) {
                reel_os_log(err, strlen(err));
                free(w);
                return -EINVAL;
            }
            if (rc > 0)
                w->seed = 1;
        }
        sim_rng_seed(&w->rng, w->seed);
    }
    w->cfg.seed = w->seed;
    w->hash = sim_mix(w->seed);
    w->next_conn_id = 1;
    w->keep_history = tls_keep_history;
    w->quiet_at_ns = c.faults_until_ns ? c.faults_until_ns : c.swarm ? sim_swarm_quiet_default_ns : SIM_INF;
    w->livelock_rounds = c.livelock_rounds ? c.livelock_rounds : sim_rounds_without_progress_max;
    rc = sim_log_open(w);
    if (rc < 0) {
        char msg[300];
        int n = snprintf(msg, sizeof msg, "reel sim: cannot open the simulator log %s: %s",
                         c.log_path ? c.log_path : getenv("REEL_SIM_LOG"), strerror(-rc));
        reel_os_log(msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        free((void *)w->cfg.schedule_bytes);
        free(w);
        return rc;
    }
    rc = sim_overrides_open(w, &c);
    if (rc < 0) {
        sim_log_close(w);
        free((void *)w->cfg.schedule_bytes);
        free(w);
        return rc;
    }
    if (c.swarm) {
        swarm_draw(w);
        sim_swarm_draw_timed(w);
    }
    rc = sim_schedule_open(w);
    if (rc < 0) {
        sim_log_close(w);
        reel_os_logfile_close(w->sched_out);
        free(w->file_faults);
        free(w->file_decs);
        free(w->ovr);
        free((void *)w->cfg.schedule_bytes);
        while (w->heap_len)
            w->heap_len--; /* only fault events so far: nothing to release */
        free(w->heap);
        free(w);
        return rc;
    }
    if (rc == 1) {
        /* Running from a schedule file: its faults and nothing else. The
         * world still draws everything it would draw (sim_decide then
         * overrides the outcome), so non-fault choices stay seeded. */
        w->from_file = true;
    }
    if (w->quiet_at_ns != SIM_INF) {
        sim_ev ev = {.when_ns = w->quiet_at_ns, .kind = EV_QUIET, .host = UINT32_MAX};
        sim_schedule(w, &ev);
    }
    if (!w->from_file)
        sim_overrides_schedule(w);
    if (w->logf)
        log_config(w);
    *out = w;
    return 0;
}

uint64_t reel_sim_quiet_at_ns(const reel_sim *sim) { return sim ? sim->quiet_at_ns : SIM_INF; }

int reel_sim_fail_liveness(reel_sim *sim, const char *fmt, ...)
{
    if (!sim)
        return REEL_ELIVENESS;
    if (!sim->liveness_failed) {
        sim->liveness_failed = true;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sim->liveness_msg, sizeof sim->liveness_msg, fmt ? fmt : "?", ap);
        va_end(ap);
        char line[512];
        int n = snprintf(line, sizeof line, "reel sim: LIVENESS FAILURE at t=%.6f s: %s (rerun: REEL_SEED=%llu)",
                         (double)sim->now_ns / 1e9, sim->liveness_msg, (unsigned long long)sim->seed);
        sim_log(sim, line, n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        sim_note_event(sim, W_FAULT, NULL, 20, 0);
    }
    return REEL_ELIVENESS;
}

const char *reel_sim_liveness_failure(const reel_sim *sim)
{
    return sim && sim->liveness_failed ? sim->liveness_msg : NULL;
}

uint64_t reel_sim_seed(const reel_sim *sim) { return sim->seed; }
uint64_t reel_sim_now_ns(const reel_sim *sim) { return sim->now_ns; }
uint64_t reel_sim_hash(const reel_sim *sim) { return sim->hash; }
uint64_t reel_sim_event_count(const reel_sim *sim) { return sim->nevents; }
const reel_sim_config *reel_sim_get_config(const reel_sim *sim) { return &sim->cfg; }

int reel_sim_repro(const reel_sim *sim, const char *what, char *buf, size_t cap)
{
    /* A line to paste into a shell: it reruns the failure, and says how
     * to get the world's log (the comment is ignored by the shell). */
    int n;
    if (sim->log_path)
        n = snprintf(buf, cap, "REEL_SEED=%llu REEL_SIM_LOG=%s %s", (unsigned long long)sim->seed,
                     sim->log_path, what ? what : "");
    else
        n = snprintf(buf, cap, "REEL_SEED=%llu %s  # REEL_SIM_LOG=sim.log in front also logs what the world did",
                     (unsigned long long)sim->seed, what ? what : "");
    return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

void sim_log(sim_world *w, const char *msg, size_t len)
{
    if (w->cfg.log) {
        char buf[1024];
        size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
        memcpy(buf, msg, n);
        buf[n] = '\0';
        w->cfg.log(buf, w->cfg.log_arg);
        return;
    }
    reel_os_log(msg, len);
}

/* ------------------------------------------------------------------ clock */

/* A host without drift (every host the program or the swarm did not give
 * one) reads the world's clock plus an offset: the same answer the general
 * formula gives, without a 128-bit division on the simulator's hottest path
 * (every idle host is asked its time on every round). */
uint64_t sim_host_now_drift(const sim_host *h)
{
    uint64_t dw = h->world->now_ns - h->clock_base_world;
    __int128 d = (__int128)dw * (1000000 + h->drift_ppm) / 1000000;
    return h->clock_base_host + (uint64_t)d;
}

static inline uint64_t host_now(const sim_host *h) { return sim_host_now(h); }

static uint64_t world_from_host_drift(const sim_host *h, uint64_t host_ns)
{
    unsigned __int128 dh = host_ns - h->clock_base_host;
    unsigned __int128 dw = (dh * 1000000 + (uint64_t)(1000000 + h->drift_ppm) - 1) /
                           (uint64_t)(1000000 + h->drift_ppm); /* round up: never early */
    unsigned __int128 t = h->clock_base_world + dw;
    return t > SIM_INF ? SIM_INF : (uint64_t)t;
}

static inline uint64_t world_from_host(const sim_host *h, uint64_t host_ns)
{
    if (host_ns == SIM_INF)
        return SIM_INF;
    if (host_ns <= h->clock_base_host)
        return h->clock_base_world;
    if (h->drift_ppm != 0)
        return world_from_host_drift(h, host_ns);
    uint64_t t;
    if (__builtin_add_overflow(h->clock_base_world, host_ns - h->clock_base_host, &t))
        return SIM_INF;
    return t;
}

uint64_t sim_world_from_host(sim_host *h, uint64_t host_ns) { return world_from_host(h, host_ns); }

/* Rebase so a drift change or jump applies from now on. */
static void clock_rebase(sim_host *h)
{
    h->clock_base_host = sim_host_now(h);
    h->clock_base_world = h->world->now_ns;
}

/* ------------------------------------------------------------------ hosts */

static sim_host *host_find(sim_world *w, const char *name)
{
    if (!name)
        return NULL;
    for (uint32_t i = 0; i < w->nhosts; i++)
        if (strcmp(w->hosts[i]->name, name) == 0)
            return w->hosts[i];
    return NULL;
}

reel_sim_host *reel_sim_host_find(reel_sim *sim, const char *name) { return host_find(sim, name); }

int reel_sim_host_protect(reel_sim_host *host)
{
    if (!host)
        return -EINVAL;
    host->protect = true;
    return 0;
}

bool reel_sim_host_is_protected(const reel_sim_host *host) { return host && host->protect; }
reel_loop *reel_sim_host_loop(reel_sim_host *host) { return host && host->up ? host->loop : NULL; }
const char *reel_sim_host_name(const reel_sim_host *host) { return host->name; }
bool reel_sim_host_is_up(const reel_sim_host *host) { return host->up; }

sim_host *sim_host_by_addr(sim_world *w, const struct in_addr *addr)
{
    for (uint32_t i = 0; i < w->nhosts; i++)
        if (w->hosts[i]->addr.s_addr == addr->s_addr)
            return w->hosts[i];
    return NULL;
}

static int parse_ipv4(const char *s, struct in_addr *out)
{
    if (!s || inet_pton(AF_INET, s, out) != 1)
        return -EINVAL;
    return 0;
}

int reel_sim_add_name(reel_sim *sim, const char *name, const char *addr)
{
    struct in_addr a;
    if (!sim || !name || !*name || strlen(name) >= sim_name_bytes || parse_ipv4(addr, &a) < 0)
        return -EINVAL;
    for (uint32_t i = 0; i < sim->nnames; i++) {
        if (strcmp(sim->names[i].name, name) == 0) {
            sim->names[i].addr = a;
            return 0;
        }
    }
    if (sim->nnames >= sim_names_max)
        return -ENOSPC;
    sim_name *n = realloc(sim->names, (sim->nnames + 1) * sizeof *n);
    if (!n)
        return -ENOMEM;
    sim->names = n;
    snprintf(n[sim->nnames].name, sizeof n[0].name, "%s", name);
    n[sim->nnames].addr = a;
    sim->nnames++;
    return 0;
}

bool sim_resolve_name(sim_world *w, const char *name, struct in_addr *out)
{
    if (parse_ipv4(name, out) == 0)
        return true;
    if (strcmp(name, "localhost") == 0) {
        out->s_addr = htonl(INADDR_LOOPBACK);
        return true;
    }
    for (uint32_t i = 0; i < w->nnames; i++) {
        if (strcasecmp(w->names[i].name, name) == 0) {
            *out = w->names[i].addr;
            return true;
        }
    }
    return false;
}

int sim_host_boot(sim_host *h)
{
    h->incarnation++;
    sim_backend *b;
    int rc = sim_backend_new(h, &b);
    if (rc < 0)
        return rc;
    reel_loop *loop;
    rc = reel_loop_new_with_backend(&loop, &b->base);
    if (rc < 0)
        return rc;
    h->backend = b;
    h->loop = loop;
    h->up = true;
    sim_note_event(h->world, W_FAULT, h, 1, 0);
    if (h->incarnation > 1)
        sim_trace(h->world, h, "restart incarnation=%u", h->incarnation);
    if (h->boot) {
        rc = h->boot(h, loop, h->prog_arg);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int reel_sim_host_new(reel_sim *sim, const char *name, const char *addr, reel_sim_host **out)
{
    if (out)
        *out = NULL;
    struct in_addr a;
    if (!sim || !name || !*name || strlen(name) >= sim_name_bytes)
        return -EINVAL;
    if (parse_ipv4(addr, &a) < 0)
        return -EINVAL;
    if (host_find(sim, name) || sim_host_by_addr(sim, &a))
        return -EEXIST;
    if (sim->nhosts >= sim_hosts_max)
        return -ENOSPC;
    sim_host **hosts = realloc(sim->hosts, (sim->nhosts + 1) * sizeof *hosts);
    if (!hosts)
        return -ENOMEM;
    sim->hosts = hosts;
    sim_host *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->world = sim;
    h->id = sim->nhosts;
    h->note_step_pre = sim_note_pre(W_STEP, h->id, 0);
    h->note_poll_mix1 = sim_mix((uint64_t)W_POLL << 32 ^ h->id);
    h->note_poll_pre0 = sim_note_pre(W_POLL, h->id, 0);
    snprintf(h->name, sizeof h->name, "%s", name);
    h->addr = a;
    h->clock_base_world = sim->now_ns;
    /* Hosts' clocks start at different, seed-chosen points, as real
     * machines' monotonic clocks do. */
    h->clock_base_host = 1000000000ull * (1 + sim_rng_below(&sim->rng, 1000));
    h->next_port = sim_ephemeral_port_first;
    atomic_init(&h->woken, 0);
    hosts[sim->nhosts++] = h;
    int rc = reel_sim_add_name(sim, name, addr);
    if (rc == 0)
        rc = sim_host_boot(h);
    if (rc < 0)
        return rc;
    if (out)
        *out = h;
    return 0;
}

int reel_sim_host_set_program(reel_sim_host *host, reel_sim_boot_fn boot,
                              reel_sim_shutdown_fn shutdown, void *arg)
{
    if (!host)
        return -EINVAL;
    host->boot = boot;
    host->shutdown = shutdown;
    host->prog_arg = arg;
    if (host->up && boot)
        return boot(host, host->loop, arg);
    return 0;
}

static void host_down(sim_host *h, bool crash)
{
    if (!h->up)
        return;
    /* A crashed host's descriptors vanish: closes made while it goes down
     * (by its program's shutdown or by the loop's close) send nothing
     * graceful; the backend's destroy drops what is left. */
    h->crashing = crash;
    if (h->shutdown)
        h->shutdown(h, h->loop, h->prog_arg);
    reel_loop_free(h->loop); /* closes the loop and destroys the backend */
    h->crashing = false;
    h->loop = NULL;
    h->backend = NULL;
    h->up = false;
    atomic_store(&h->woken, 0);
    h->dirty = false;
}

int sim_host_crash(sim_host *h)
{
    if (!h->up)
        return 0;
    if (reel_loop_is_running(h->loop))
        return REEL_ERUNNING;
    sim_note_event(h->world, W_FAULT, h, 2, 0);
    sim_trace(h->world, h, "crash");
    host_down(h, true);
    return 0;
}

int reel_sim_crash(reel_sim *sim, const char *name)
{
    sim_host *h = sim ? host_find(sim, name) : NULL;
    if (!h)
        return -ENOENT;
    return sim_host_crash(h);
}

int reel_sim_pause(reel_sim *sim, const char *name, uint64_t duration_ns)
{
    sim_host *h = sim ? host_find(sim, name) : NULL;
    if (!h)
        return -ENOENT;
    uint64_t until = sim->now_ns + duration_ns < sim->now_ns ? SIM_INF : sim->now_ns + duration_ns;
    if (until > h->paused_until_ns)
        h->paused_until_ns = until;
    sim_note_event(sim, W_FAULT, h, 9, (int64_t)duration_ns);
    sim_trace(sim, h, "pause dur=%.6f", (double)duration_ns / 1e9);
    return 0;
}

int reel_sim_restart(reel_sim *sim, const char *name)
{
    sim_host *h = sim ? host_find(sim, name) : NULL;
    if (!h)
        return -ENOENT;
    if (h->up)
        return -EBUSY;
    return sim_host_boot(h);
}

int reel_sim_clock_jump(reel_sim *sim, const char *name, uint64_t delta_ns)
{
    sim_host *h = sim ? host_find(sim, name) : NULL;
    if (!h)
        return -ENOENT;
    clock_rebase(h);
    h->clock_base_host += delta_ns;
    h->dirty = true;
    sim_note_event(sim, W_FAULT, h, 3, (int64_t)delta_ns);
    return 0;
}

int reel_sim_clock_drift(reel_sim *sim, const char *name, int32_t ppm)
{
    sim_host *h = sim ? host_find(sim, name) : NULL;
    if (!h)
        return -ENOENT;
    if (ppm <= -1000000 || ppm > 1000000)
        return -EINVAL;
    clock_rebase(h);
    h->drift_ppm = ppm;
    sim_note_event(sim, W_FAULT, h, 4, ppm);
    return 0;
}

int reel_sim_signal(reel_sim *sim, const char *name, int signo)
{
    sim_host *h = sim ? host_find(sim, name) : NULL;
    if (!h)
        return -ENOENT;
    if (signo <= 0 || signo > 64)
        return -EINVAL;
    if (!h->up)
        return -EHOSTDOWN;
    sim_note *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    n->kind = REEL_EV_SIGNAL;
    n->id = signo;
    n->value = 1;
    sim_ev ev = {.when_ns = sim->now_ns, .kind = EV_NOTE, .host = h->id, .note = n,
                 .incarnation = h->incarnation};
    return sim_schedule(sim, &ev);
}

/* ------------------------------------------------------------------ links */

sim_link *sim_link_get(sim_world *w, uint32_t a, uint32_t b, bool create)
{
    for (uint32_t i = 0; i < w->nlinks; i++)
        if (w->links[i].a == a && w->links[i].b == b)
            return &w->links[i];
    if (!create)
        return NULL;
    sim_link *l = realloc(w->links, (w->nlinks + 1) * sizeof *l);
    if (!l)
        return NULL;
    w->links = l;
    l = &w->links[w->nlinks++];
    memset(l, 0, sizeof *l);
    l->a = a;
    l->b = b;
    return l;
}

bool sim_link_blocked(sim_world *w, uint32_t a, uint32_t b, uint64_t *until_ns)
{
    if (a == b)
        return false;
    sim_link *l = sim_link_get(w, a, b, false);
    if (!l)
        return false;
    if (l->cut) {
        *until_ns = SIM_INF;
        return true;
    }
    if (l->clog_until_ns > w->now_ns) {
        *until_ns = l->clog_until_ns;
        return true;
    }
    return false;
}

uint64_t sim_link_delay(sim_world *w, const sim_host *a, const sim_host *b, size_t bytes)
{
    const reel_sim_config *c = &w->cfg;
    if (a == b)
        return c->local_latency_ns;
    uint64_t lat = c->latency_ns, jit = c->jitter_ns, bw = c->bandwidth_bytes_per_s;
    sim_link *l = sim_link_get(w, a->id, b->id, false);
    if (l && l->has_shape) {
        lat = l->latency_ns;
        jit = l->jitter_ns;
        bw = l->bandwidth_bytes_per_s;
    }
    uint64_t d = lat + (jit ? sim_rng_below(&w->rng, jit + 1) : 0);
    if (l && l->spike_until_ns > w->now_ns)
        d += l->spike_ns;
    if (bw)
        d += (uint64_t)((unsigned __int128)bytes * 1000000000ull / bw);
    return d;
}

int reel_sim_link_set(reel_sim *sim, const char *a, const char *b, uint64_t latency_ns,
                      uint64_t jitter_ns, uint64_t bandwidth_bytes_per_s)
{
    sim_host *ha = sim ? host_find(sim, a) : NULL, *hb = sim ? host_find(sim, b) : NULL;
    if (!ha || !hb)
        return -ENOENT;
    for (int dir = 0; dir < 2; dir++) {
        sim_link *l = dir ? sim_link_get(sim, hb->id, ha->id, true) : sim_link_get(sim, ha->id, hb->id, true);
        if (!l)
            return -ENOMEM;
        l->has_shape = true;
        l->latency_ns = latency_ns;
        l->jitter_ns = jitter_ns;
        l->bandwidth_bytes_per_s = bandwidth_bytes_per_s;
    }
    return 0;
}

int reel_sim_partition(reel_sim *sim, const char *const *from, int nfrom,
                       const char *const *to, int nto, bool one_way)
{
    if (!sim || nfrom <= 0 || nto <= 0 || !from || !to)
        return -EINVAL;
    for (int i = 0; i < nfrom; i++)
        if (!host_find(sim, from[i]))
            return -ENOENT;
    for (int j = 0; j < nto; j++)
        if (!host_find(sim, to[j]))
            return -ENOENT;
    for (int i = 0; i < nfrom; i++) {
        for (int j = 0; j < nto; j++) {
            sim_host *x = host_find(sim, from[i]), *y = host_find(sim, to[j]);
            if (x == y)
                continue;
            sim_link *l = sim_link_get(sim, x->id, y->id, true);
            if (!l)
                return -ENOMEM;
            l->cut = true;
            if (!one_way) {
                l = sim_link_get(sim, y->id, x->id, true);
                if (!l)
                    return -ENOMEM;
                l->cut = true;
            }
            sim_note_event(sim, W_FAULT, x, 5, y->id);
        }
    }
    return 0;
}

int reel_sim_heal(reel_sim *sim)
{
    if (!sim)
        return -EINVAL;
    for (uint32_t i = 0; i < sim->nlinks; i++) {
        sim->links[i].cut = false;
        sim->links[i].clog_until_ns = 0;
    }
    sim_note_event(sim, W_FAULT, NULL, 6, 0);
    return 0;
}

int reel_sim_clog(reel_sim *sim, const char *a, const char *b, uint64_t until_ns)
{
    sim_host *ha = sim ? host_find(sim, a) : NULL, *hb = sim ? host_find(sim, b) : NULL;
    if (!ha || !hb)
        return -ENOENT;
    sim_link *l = sim_link_get(sim, ha->id, hb->id, true);
    if (!l)
        return -ENOMEM;
    l->clog_until_ns = until_ns;
    sim_note_event(sim, W_FAULT, ha, 7, hb->id);
    return 0;
}

int reel_sim_reset_connections(reel_sim *sim, const char *name)
{
    sim_host *h = sim ? host_find(sim, name) : NULL;
    if (!h)
        return -ENOENT;
    if (h->up)
        sim_conn_reset_all(h);
    sim_note_event(sim, W_FAULT, h, 8, 0);
    return 0;
}

/* ----------------------------------------------------------------- events */

static inline bool ev_less(const sim_ev *a, const sim_ev *b)
{
    return a->when_ns < b->when_ns || (a->when_ns == b->when_ns && a->seq < b->seq);
}

int sim_schedule(sim_world *w, const sim_ev *ev)
{
    if (w->heap_len == w->heap_cap) {
        uint32_t ncap = w->heap_cap ? w->heap_cap * 2 : 256;
        sim_ev *nh = realloc(w->heap, (size_t)ncap * sizeof *nh);
        if (!nh)
            return -ENOMEM;
        w->heap = nh;
        w->heap_cap = ncap;
    }
    sim_ev e = *ev;
    if (e.when_ns < w->now_ns)
        e.when_ns = w->now_ns;
    /* A schedule file's faults go after everything else due at the same
     * time: the swarm draw they stand in for comes first (sim/fault.c). */
    e.seq = e.kind == EV_FAULT_FILE  ? (1ull << 63) + e.fault
            : e.kind == EV_FAULT_OVR ? (1ull << 62) + e.fault /* (the seeded events' numbers stay) */
                                     : w->ev_seq++;
    uint32_t i = w->heap_len++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!ev_less(&e, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = e;
    return 0;
}

static sim_ev heap_pop(sim_world *w)
{
    sim_ev top = w->heap[0];
    sim_ev last = w->heap[--w->heap_len];
    uint32_t i = 0, n = w->heap_len;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && ev_less(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!ev_less(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n)
        w->heap[i] = last;
    return top;
}

int reel_sim_at(reel_sim *sim, uint64_t at_ns, reel_sim_fn fn, void *arg)
{
    if (!sim || !fn)
        return -EINVAL;
    sim_ev ev = {.when_ns = at_ns, .kind = EV_CALL, .fn = fn, .arg = arg};
    return sim_schedule(sim, &ev);
}

/* ---------------------------------------------------------------- driving */

static inline bool host_paused(const sim_world *w, const sim_host *h)
{
    return h->paused_until_ns > w->now_ns;
}

static bool host_has_work(sim_world *w, sim_host *h)
{
    if (!h->up || rl_loop_running(h->loop) || host_paused(w, h))
        return false;
    if (rl_loop_has_ready(h->loop) || h->dirty || h->notes_head || atomic_load(&h->woken))
        return true;
    uint64_t when;
    return rl_loop_next_timer(h->loop, &when) && when + h->late_ns <= host_now(h);
}

/* Driver-side check: does the driving host have something for its poll? */
static bool driver_has_io(sim_host *h)
{
    return h->dirty || h->notes_head || atomic_load(&h->woken);
}

static uint64_t next_wakeup(sim_world *w, sim_host *driver)
{
    uint64_t t = w->heap_len ? w->heap[0].when_ns : SIM_INF;
    for (uint32_t i = 0; i < w->nhosts; i++) {
        sim_host *h = w->hosts[i];
        if (!h->up || h == driver)
            continue;
        if (host_paused(w, h)) {
            if (h->paused_until_ns < t)
                t = h->paused_until_ns;
            continue;
        }
        uint64_t when;
        if (rl_loop_next_timer(h->loop, &when)) {
            uint64_t ww = world_from_host(h, when + h->late_ns);
            if (ww < t)
                t = ww;
        }
    }
    return t;
}

/* sim_draw_late (sim/internal.h) when a swarm or a schedule can make the
 * host's next timer late: draw, then let the schedule decide. */
void sim_draw_late_slow(sim_world *w, sim_host *h, uint32_t index)
{
    uint64_t late = 0;
    if (w->perturb)
        late = sim_rng_chance(&w->rng, 0.5 * sim_swarm_scale(&w->cfg)) ? sim_rng_below(&w->rng, w->timer_late_max_ns + 1) : 0;
    bool fired = sim_decide(w, h, DK_TIMER_LATE, index, 0, NULL, late > 0, &late);
    h->late_ns = fired ? late : 0;
}

/* A host keeps running without virtual time advancing: say which, and the
 * callback it ran last. */
void sim_report_livelock(sim_world *w, sim_host *h, uint64_t rounds)
{
    const reel_site *site = h && h->up ? rl_loop_last_site(h->loop) : NULL;
    char msg[512];
    int n = snprintf(msg, sizeof msg,
                     "reel sim: livelock: host %s ran %llu rounds without virtual time advancing "
                     "(t=%.6f s); the callback that keeps running: %s (scheduled at %s:%d); "
                     "rerun: REEL_SEED=%llu",
                     h ? h->name : "?", (unsigned long long)rounds, (double)w->now_ns / 1e9,
                     site && site->func ? site->func : "?", site && site->file ? site->file : "?",
                     site ? site->line : 0, (unsigned long long)w->seed);
    sim_log(w, msg, n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    sim_trace(w, h, "livelock rounds=%llu callback=%s", (unsigned long long)rounds,
              site && site->func ? site->func : "?");
}

int sim_drive(sim_world *w, sim_host *driver, uint64_t deadline_ns, bool (*done)(void *), void *arg)
{
    uint64_t rounds = 0;
    sim_host *busiest = NULL;
    if (w->nfile_decs)
        sim_schedule_check_hosts(w);
    for (;;) {
        if (w->liveness_failed)
            return REEL_ELIVENESS;
        if (w->schedule_error)
            return w->schedule_error;
        /* 1. Network events (and timed faults) that are due. */
        while (w->heap_len && w->heap[0].when_ns <= w->now_ns) {
            sim_ev ev = heap_pop(w);
            sim_process_event(w, &ev);
        }
        /* 2. One iteration of every other host that has work. */
        bool progressed = false;
        for (uint32_t i = 0; i < w->nhosts; i++) {
            sim_host *h = w->hosts[i];
            if (h == driver || !host_has_work(w, h))
                continue;
            sim_note_event_pre(w, h->note_step_pre, W_STEP, h->id, 0, 0);
            sim_host *outer = w->stepping;
            w->stepping = h;
            int rc = rl_loop_step(h->loop);
            w->stepping = outer;
            if (rc < 0 && rc != REEL_ECLOSED) {
                char msg[160];
                int n = snprintf(msg, sizeof msg, "reel sim: host %s loop step failed: %s",
                                 h->name, reel_strerror(rc));
                sim_log(w, msg, (size_t)n);
            }
            sim_draw_late(w, h);
            busiest = h;
            progressed = true;
        }
        /* 3. Back to the driver if it has something, or its time is up —
         * unless its process is paused: then the world goes on without it. */
        bool driver_paused = driver && host_paused(w, driver);
        uint64_t deadline = deadline_ns;
        if (driver_paused && driver->paused_until_ns > deadline)
            deadline = driver->paused_until_ns;
        if (driver && driver->up && !driver_paused && driver_has_io(driver))
            return 0;
        if (done && done(arg))
            return 0;
        if (w->liveness_failed)
            return REEL_ELIVENESS;
        if (w->now_ns >= deadline)
            return 0;
        if (progressed || (w->heap_len && w->heap[0].when_ns <= w->now_ns)) {
            if (++rounds > w->livelock_rounds) {
                sim_report_livelock(w, busiest, rounds - 1);
                return -ELOOP;
            }
            continue;
        }
        /* 4. Everyone is idle: jump to the next thing that will happen. */
        uint64_t t = next_wakeup(w, driver);
        if (t == SIM_INF && (done || deadline == SIM_INF))
            return -EDEADLK; /* nothing can ever happen again: a hang */
        if (deadline < t)
            t = deadline;
        if (t > w->now_ns) {
            w->now_ns = t;
            rounds = 0;
            sim_note_event(w, W_TIME, NULL, (int64_t)t, 0);
        }
    }
}

int reel_sim_run(reel_sim *sim, uint64_t until_ns, bool (*done)(void *arg), void *arg)
{
    if (!sim)
        return -EINVAL;
    if (sim->liveness_failed)
        return REEL_ELIVENESS;
    if (done && done(arg))
        return 0;
    int rc = sim_drive(sim, NULL, until_ns, done, arg);
    if (rc == -EDEADLK) {
        char msg[200];
        int n = snprintf(msg, sizeof msg,
                         "reel sim: the world is hung at t=%.6f s: no host, timer, packet or fault "
                         "can change anything, and the run's condition is still false "
                         "(rerun: REEL_SEED=%llu)",
                         (double)sim->now_ns / 1e9, (unsigned long long)sim->seed);
        sim_log(sim, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        sim_trace(sim, NULL, "hung");
    }
    return rc;
}

/* ----------------------------------------------------------------- free */

static void event_free(sim_ev *ev);

void reel_sim_free(reel_sim *sim)
{
    if (!sim)
        return;
    for (uint32_t i = 0; i < sim->nhosts; i++)
        host_down(sim->hosts[i], false);
    while (sim->heap_len) {
        sim_ev ev = heap_pop(sim);
        event_free(&ev);
    }
    for (uint32_t i = 0; i < sim->nhosts; i++) {
        free(sim->hosts[i]->fds);
        free(sim->hosts[i]->unix_paths);
        free(sim->hosts[i]);
    }
    free(sim->hosts);
    free(sim->heap);
    free(sim->names);
    free(sim->links);
    free(sim->bsites);
    free(sim->sched);
    free(sim->file_faults);
    free(sim->file_decs);
    reel_os_logfile_close(sim->sched_out);
    sim_log_close(sim);
    free(sim->history);
    free((void *)sim->cfg.schedule_bytes);
    free(sim->ovr);
    free(sim);
}

static void event_free(sim_ev *ev) { sim_event_release(ev); }

/* ------------------------------------------------------- mark, rewind */

/* A host's open sockets at the mark: listeners only, nothing queued.
 * Each gets its accept queue's room now, so a run's first connection
 * does not allocate it (a block made during a run and kept by the world
 * would stop the fuzz kit from keeping the world). */
static bool host_mark_fds(sim_host *h)
{
    h->mark_nfds = 0;
    h->mark_nwatched = h->nwatched;
    for (int fd = 0; fd < h->fd_hi; fd++) {
        sim_sock *s = h->fds[fd];
        if (!s)
            continue;
        if (s->kind != SK_STREAM || s->state != SS_LISTENING || s->acceptq_len != 0 ||
            h->mark_nfds == sim_mark_fds_max)
            return false;
        if (!s->acceptq) {
            s->acceptq = malloc(16 * sizeof *s->acceptq);
            if (!s->acceptq)
                return false;
            s->acceptq_cap = 16;
        }
        h->mark_socks[h->mark_nfds] = s;
        h->mark_interest[h->mark_nfds] = s->interest;
        h->mark_nfds++;
    }
    return true;
}

void sim_world_mark(reel_sim *w)
{
    w->marked = true;
    w->mark_rng = w->rng;
    w->mark_now_ns = w->now_ns;
    w->mark_hash = w->hash;
    w->mark_nevents = w->nevents;
    w->mark_ev_seq = w->ev_seq;
    w->mark_conn_id = w->next_conn_id;
    w->mark_sock_gen = w->sock_gen;
    w->mark_nhosts = w->nhosts;
    for (uint32_t i = 0; i < w->nhosts; i++) {
        sim_host *h = w->hosts[i];
        h->mark_clock_host = host_now(h);
        h->mark_incarnation = h->incarnation;
        h->mark_next_port = h->next_port;
        h->mark_next_ino = h->next_ino;
        h->mark_fds_ok = host_mark_fds(h) && rl_loop_mark(h->loop) == 0;
    }
}

static bool host_rewindable(const sim_host *h)
{
    if (!h->mark_fds_ok || !h->up || h->incarnation != h->mark_incarnation ||
        h->drift_ppm != 0 || h->paused_until_ns > h->world->now_ns || h->notes_head ||
        atomic_load(&h->woken) || h->nwatched != h->mark_nwatched || h->nunix_paths != 0)
        return false;
    int k = 0;
    for (int fd = 0; fd < h->fd_hi; fd++) {
        const sim_sock *s = h->fds[fd];
        if (!s)
            continue;
        if (k == h->mark_nfds || s != h->mark_socks[k] || s->state != SS_LISTENING ||
            s->acceptq_len != 0 || s->interest != h->mark_interest[k])
            return false;
        k++;
    }
    if (k != h->mark_nfds)
        return false;
    for (size_t s = 0; s < sizeof h->signals_watched; s++)
        if (h->signals_watched[s])
            return false;
    return true;
}

int sim_world_rewind(reel_sim *w)
{
    if (!w || !w->marked || w->liveness_failed || w->schedule_error ||
        w->nhosts != w->mark_nhosts || w->nlinks != 0 || w->nsched != 0 || w->from_file ||
        w->nfile_decs != 0 || w->sched_out || w->keep_history || w->driver || w->stepping)
        return -EBUSY;
    for (uint32_t i = 0; i < w->heap_len; i++)
        if (!sim_event_is_stale(&w->heap[i]))
            return -EBUSY;
    for (uint32_t i = 0; i < w->nhosts; i++)
        if (!host_rewindable(w->hosts[i]))
            return -EBUSY;
    /* The loops last: the first that is busy stops the rewind before any
     * has changed (rl_loop_rewind checks before it changes anything, and
     * only the loops are left to change). */
    for (uint32_t i = 0; i < w->nhosts; i++) {
        int rc = rl_loop_rewind(w->hosts[i]->loop);
        if (rc < 0) {
            if (i > 0)
                w->marked = false; /* half rewound: never again */
            return rc;
        }
    }
    /* Only stale events are left (a made connection's connect timeout
     * holds it until then): firing them would change nothing. */
    while (w->heap_len) {
        sim_ev ev = heap_pop(w);
        sim_event_release(&ev);
    }
    w->rng = w->mark_rng;
    w->now_ns = w->mark_now_ns;
    w->hash = w->mark_hash;
    w->nevents = w->mark_nevents;
    w->ev_seq = w->mark_ev_seq;
    w->next_conn_id = w->mark_conn_id;
    w->sock_gen = w->mark_sock_gen;
    w->nbsites = 0;
    w->idle_rounds = 0;
    w->idle_rounds_at_ns = 0;
    for (uint32_t i = 0; i < w->nhosts; i++) {
        sim_host *h = w->hosts[i];
        h->clock_base_world = w->now_ns;
        h->clock_base_host = h->mark_clock_host;
        h->next_port = h->mark_next_port;
        h->next_ino = h->mark_next_ino;
        h->paused_until_ns = 0;
        h->late_ns = 0;
        h->dirty = false;
        memset(h->dec_calls, 0, sizeof h->dec_calls);
    }
    return 0;
}

/* ----------------------------------------------------- determinism check */

static const char *what_name(uint32_t what)
{
    switch (what) {
    case W_EV: return "network event";
    case W_STEP: return "host step";
    case W_POLL: return "poll";
    case W_OP: return "backend op";
    case W_FAULT: return "fault";
    case W_TIME: return "time advance";
    default: return "?";
    }
}

static void hist_describe(const sim_hist *e, uint64_t index, char *buf, size_t cap)
{
    snprintf(buf, cap, "event #%llu at t=%.9f s: %s host=%d a=%lld b=%lld",
             (unsigned long long)index, (double)e->when_ns / 1e9, what_name(e->what),
             e->host == UINT32_MAX ? -1 : (int)e->host, (long long)e->a, (long long)e->b);
}

static int run_for_history(reel_sim_scenario_fn scenario, uint64_t seed, void *arg,
                           sim_hist **hist, uint64_t *n, uint64_t *hash, bool *overflow)
{
    reel_sim *world = NULL;
    tls_keep_history = true;
    int rc = scenario(seed, &world, arg);
    tls_keep_history = false;
    if (!world)
        return rc < 0 ? rc : -EINVAL;
    *hist = world->history;
    *n = world->nhistory;
    *hash = world->hash;
    *overflow = world->history_overflow;
    world->history = NULL;
    world->nhistory = world->history_cap = 0;
    world->keep_history = false; /* teardown events are not part of the run */
    reel_sim_free(world);
    return rc;
}

int reel_sim_check_determinism(reel_sim_scenario_fn scenario, uint64_t seed, void *arg,
                               reel_sim_check_report *report)
{
    reel_sim_check_report local;
    if (!report)
        report = &local;
    memset(report, 0, sizeof *report);
    if (!scenario)
        return -EINVAL;
    sim_hist *h1 = NULL, *h2 = NULL;
    uint64_t n1 = 0, n2 = 0;
    bool o1 = false, o2 = false;
    int rc1 = run_for_history(scenario, seed, arg, &h1, &n1, &report->hash1, &o1);
    int rc2 = run_for_history(scenario, seed, arg, &h2, &n2, &report->hash2, &o2);
    report->events1 = n1;
    report->events2 = n2;
    int rc = 0;
    uint64_t n = n1 < n2 ? n1 : n2;
    uint64_t i = 0;
    while (i < n && h1[i].hash == h2[i].hash)
        i++;
    if (i < n || n1 != n2 || report->hash1 != report->hash2) {
        report->diverged = true;
        report->event_index = i;
        if (i < n1)
            hist_describe(&h1[i], i, report->first, sizeof report->first);
        else
            snprintf(report->first, sizeof report->first, "(run 1 ended after %llu events)",
                     (unsigned long long)n1);
        if (i < n2)
            hist_describe(&h2[i], i, report->second, sizeof report->second);
        else
            snprintf(report->second, sizeof report->second, "(run 2 ended after %llu events)",
                     (unsigned long long)n2);
        rc = REEL_EDIVERGED;
    } else if (rc1 < 0 || rc2 < 0) {
        rc = rc1 < 0 ? rc1 : rc2;
    } else if (o1 || o2) {
        snprintf(report->first, sizeof report->first,
                 "history longer than %d events: compared the prefix and the final hash",
                 (int)sim_history_events_max);
    }
    free(h1);
    free(h2);
    return rc;
}
