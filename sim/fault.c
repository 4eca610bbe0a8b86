/* sim/fault.c — the swarm's timed faults, the quiet phase, and the
 * simulator log.
 *
 * A swarm seed decides, per family (partition, clog, latency spike, reset,
 * crash, pause, clock), whether it is on and how often it strikes. Each
 * family that is on has one pending EV_FAULT event: when it fires, the
 * fault is drawn (targets, duration), applied, appended to the world's
 * fault schedule (the faults as data: kind, start, duration, hosts) and
 * its end is scheduled; then the family's next fault is scheduled, if it
 * starts before the quiet phase. At the quiet phase (EV_QUIET) every fault
 * still active ends: partitions and clogs heal, spikes stop, paused hosts
 * resume, hosts the swarm crashed restart, swarm drift stops.
 *
 * Protected hosts (reel_sim_host_protect) are never chosen. Crashes only
 * pick hosts that have a program (a boot function) and whose loop is not
 * running: a host the caller drives by hand has nothing to restart, and
 * the loop that drives the world cannot be freed under its own feet. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../loop/internal.h"
#include "internal.h"

/* ------------------------------------------------------------------- log */

int sim_log_open(sim_world *w)
{
    const char *path = w->cfg.log_path;
    if (!path || !*path)
        path = getenv("REEL_SIM_LOG");
    if (!path || !*path)
        return 0;
    int err;
    w->logf = reel_os_logfile_open(path, &err);
    if (!w->logf)
        return err;
    w->log_path = strdup(path);
    const char *dl = getenv("REEL_SIM_LOG_DELIVERIES");
    if (dl && *dl && strcmp(dl, "0") != 0)
        w->cfg.log_deliveries = true;
    char line[160];
    int n = snprintf(line, sizeof line,
                     "# reel sim log: seed %llu; world time in seconds, host (- for the world), event\n",
                     (unsigned long long)w->seed);
    reel_os_logfile_write(w->logf, line, (size_t)n);
    return 0;
}

void sim_log_close(sim_world *w)
{
    reel_os_logfile_close(w->logf);
    w->logf = NULL;
    free(w->log_path);
    w->log_path = NULL;
}

void sim_trace(sim_world *w, const sim_host *h, const char *fmt, ...)
{
    if (!w->logf)
        return;
    char line[1024];
    int n = snprintf(line, sizeof line, "%llu.%09llu %s ",
                     (unsigned long long)(w->now_ns / 1000000000ull),
                     (unsigned long long)(w->now_ns % 1000000000ull), h ? h->name : "-");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    reel_os_logfile_write(w->logf, line, len);
}

/* ------------------------------------------------------------ the draw */

static const uint32_t family_bits[FAM_COUNT] = {
    REEL_SIM_SWARM_PARTITION, REEL_SIM_SWARM_CLOG, REEL_SIM_SWARM_SPIKE, REEL_SIM_SWARM_RESET,
    REEL_SIM_SWARM_CRASH, REEL_SIM_SWARM_PAUSE, REEL_SIM_SWARM_CLOCK,
};

#define MS 1000000ull

/* Uniform on a log scale between lo and hi: as many short faults as long. */
static uint64_t draw_log(sim_rng *r, uint64_t lo, uint64_t hi)
{
    uint64_t v = lo;
    uint64_t steps = sim_rng_below(r, 64);
    for (uint64_t i = 0; i < steps && v < hi; i++)
        v += v / 8 + 1;
    return v < hi ? v : hi;
}

/* Time to the next fault of a family: exponential-ish around its mean. */
static uint64_t draw_gap(sim_rng *r, uint64_t mean_ns)
{
    return mean_ns / 4 + sim_rng_below(r, mean_ns * 3 / 2 + 1);
}

static int schedule_family(sim_world *w, int fam, uint64_t from_ns)
{
    uint64_t at = from_ns + draw_gap(&w->rng, w->fam_interval_ns[fam]);
    if (at >= w->quiet_at_ns)
        return 0;
    sim_ev ev = {.when_ns = at, .kind = EV_FAULT, .d = (uint8_t)fam, .host = UINT32_MAX};
    return sim_schedule(w, &ev);
}

/* Swarm testing for the timed families: a seed is calm (no timed fault),
 * hammers one family, or turns each family on or off with its own rate.
 * Every draw is made whatever the mask, so masking a family out does not
 * shift the other families' draws. */
void sim_swarm_draw_timed(sim_world *w)
{
    reel_sim_config *c = &w->cfg;
    uint32_t mask = c->swarm_faults ? c->swarm_faults : REEL_SIM_SWARM_ALL;
    sim_rng *r = &w->rng;
    static const uint64_t means[] = {250 * MS, 1000 * MS, 3000 * MS};
    uint64_t mode = sim_rng_below(r, 8);
    uint64_t hammered = sim_rng_below(r, FAM_COUNT);
    for (int f = 0; f < FAM_COUNT; f++) {
        bool on = sim_rng_chance(r, 0.5);
        uint64_t mean = means[sim_rng_below(r, 3)];
        if (mode == 0)
            on = false;                      /* calm */
        else if (mode <= 2) {
            on = (uint64_t)f == hammered;    /* one family, hard */
            mean = 100 * MS;
        }
        mean = (uint64_t)((double)mean / sim_swarm_scale(c));
        w->fam_interval_ns[f] = on && (mask & family_bits[f]) ? mean : 0;
    }
    bool perturb = sim_rng_chance(r, 0.75);
    bool buggify = sim_rng_chance(r, 0.75);
    w->perturb = perturb && (mask & REEL_SIM_SWARM_TIMER);
    w->timer_late_max_ns = 1 * MS;
    w->buggify_on = buggify && (mask & REEL_SIM_SWARM_BUGGIFY);
    for (int f = 0; f < FAM_COUNT; f++)
        if (w->fam_interval_ns[f])
            schedule_family(w, f, w->now_ns);
}

/* --------------------------------------------------------- applying them */

static sim_fault *sched_add(sim_world *w, const sim_fault *f)
{
    if (w->nsched >= sim_faults_max)
        return NULL; /* a very long fault phase: later faults are not drawn */
    if (w->nsched == w->sched_cap) {
        uint32_t ncap = w->sched_cap ? w->sched_cap * 2 : 32;
        sim_fault *ns = realloc(w->sched, ncap * sizeof *ns);
        if (!ns)
            return NULL;
        w->sched = ns;
        w->sched_cap = ncap;
    }
    w->sched[w->nsched] = *f;
    return &w->sched[w->nsched++];
}

/* A host the swarm may hit, drawn uniformly; NULL if there is none. */
static sim_host *pick_host(sim_world *w, bool need_program)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < w->nhosts; i++) {
        sim_host *h = w->hosts[i];
        if (h->protect || !h->up || (need_program && (!h->boot || reel_loop_is_running(h->loop))))
            continue;
        n++;
    }
    if (!n)
        return NULL;
    uint64_t k = sim_rng_below(&w->rng, n);
    for (uint32_t i = 0; i < w->nhosts; i++) {
        sim_host *h = w->hosts[i];
        if (h->protect || !h->up || (need_program && (!h->boot || reel_loop_is_running(h->loop))))
            continue;
        if (k-- == 0)
            return h;
    }
    return NULL;
}

static uint32_t unprotected_count(sim_world *w)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < w->nhosts; i++)
        n += !w->hosts[i]->protect;
    return n;
}

static bool on_side(uint64_t mask, uint32_t id) { return (mask >> (id & 63)) & 1; }
static bool on_side_a(const sim_fault *f, uint32_t id) { return on_side(f->side_a, id); }

static void partition_apply(sim_world *w, const sim_fault *f, bool cut)
{
    for (uint32_t i = 0; i < w->nhosts; i++) {
        sim_host *x = w->hosts[i];
        if (x->protect || !on_side_a(f, x->id))
            continue;
        for (uint32_t j = 0; j < w->nhosts; j++) {
            sim_host *y = w->hosts[j];
            if (y->protect || !on_side(f->side_b, y->id) || on_side_a(f, y->id))
                continue;
            sim_link *l = sim_link_get(w, x->id, y->id, cut);
            if (l)
                l->cut = cut;
            if (!f->one_way) {
                l = sim_link_get(w, y->id, x->id, cut);
                if (l)
                    l->cut = cut;
            }
        }
    }
    if (!cut) /* held segments move again */
        for (uint32_t i = 0; i < w->nhosts; i++)
            w->hosts[i]->dirty = true;
}

static void describe_sides(sim_world *w, const sim_fault *f, char *buf, size_t cap)
{
    size_t off = 0;
    for (int side = 0; side < 2; side++) {
        bool first = true;
        for (uint32_t i = 0; i < w->nhosts && off + 1 < cap; i++) {
            sim_host *h = w->hosts[i];
            if (h->protect || !on_side(side == 0 ? f->side_a : f->side_b, h->id) ||
                (side == 1 && on_side_a(f, h->id)))
                continue;
            int n = snprintf(buf + off, cap - off, "%s%s", first ? "" : ",", h->name);
            off += n > 0 ? (size_t)n : 0;
            first = false;
        }
        if (side == 0 && off + 1 < cap) {
            int n = snprintf(buf + off, cap - off, f->one_way ? "->" : "|");
            off += n > 0 ? (size_t)n : 0;
        }
    }
    if (off >= cap && cap)
        buf[cap - 1] = '\0';
}

/* Draw the fault of family fam for now; fill *f. False: nothing to hit. */
static bool draw_fault(sim_world *w, int fam, sim_fault *f)
{
    sim_rng *r = &w->rng;
    memset(f, 0, sizeof *f);
    f->start_ns = w->now_ns;
    switch (fam) {
    case FAM_PARTITION: {
        uint64_t mask = sim_rng_next(r);
        f->one_way = sim_rng_chance(r, 0.3);
        f->dur_ns = draw_log(r, 50 * MS, 3000 * MS);
        f->kind = FK_PARTITION;
        /* A proper split of the unprotected hosts: both sides non-empty. */
        if (unprotected_count(w) < 2)
            return false;
        uint32_t na = 0, nb = 0, first = UINT32_MAX;
        for (uint32_t i = 0; i < w->nhosts; i++) {
            if (w->hosts[i]->protect)
                continue;
            if (first == UINT32_MAX)
                first = i;
            if ((mask >> (i & 63)) & 1)
                na++;
            else
                nb++;
        }
        if (!na)
            mask |= 1ull << (first & 63);
        if (!nb)
            mask &= ~(1ull << (first & 63));
        f->side_a = mask;
        f->side_b = ~mask;
        return true;
    }
    case FAM_CLOG:
    case FAM_SPIKE: {
        sim_host *a = pick_host(w, false), *b = pick_host(w, false);
        f->dur_ns = draw_log(r, 10 * MS, 2000 * MS);
        f->arg = (int64_t)draw_log(r, 5 * MS, 500 * MS);
        f->kind = fam == FAM_CLOG ? FK_CLOG : FK_SPIKE;
        if (f->kind == FK_CLOG)
            f->arg = 0; /* drawn (the draws stay put) but a clog has no extra delay */
        if (!a || !b || a == b)
            return false;
        f->a = a->id;
        f->b = b->id;
        return true;
    }
    case FAM_RESET: {
        sim_host *h = pick_host(w, false);
        f->kind = FK_RESET;
        if (!h)
            return false;
        f->a = h->id;
        return true;
    }
    case FAM_CRASH: {
        sim_host *h = pick_host(w, true);
        f->dur_ns = draw_log(r, 100 * MS, 5000 * MS);
        f->kind = FK_CRASH;
        if (!h)
            return false;
        f->a = h->id;
        return true;
    }
    case FAM_PAUSE: {
        sim_host *h = pick_host(w, false);
        f->dur_ns = draw_log(r, 10 * MS, 2000 * MS);
        f->kind = FK_PAUSE;
        if (!h)
            return false;
        f->a = h->id;
        return true;
    }
    case FAM_CLOCK: {
        sim_host *h = pick_host(w, false);
        bool jump = sim_rng_chance(r, 0.5);
        uint64_t jump_ns = draw_log(r, 1 * MS, 5000 * MS);
        int64_t ppm = (int64_t)draw_log(r, 100, 100000) * (sim_rng_chance(r, 0.5) ? -1 : 1);
        uint64_t dur = draw_log(r, 100 * MS, 5000 * MS);
        if (!h)
            return false;
        f->a = h->id;
        f->kind = jump ? FK_CLOCK_JUMP : FK_CLOCK_DRIFT;
        f->arg = jump ? (int64_t)jump_ns : ppm;
        f->dur_ns = jump ? 0 : dur;
        return true;
    }
    default:
        return false;
    }
}

static const char *const kind_names[] = {
    [FK_PARTITION] = "partition", [FK_CLOG] = "clog", [FK_SPIKE] = "spike", [FK_RESET] = "reset",
    [FK_CRASH] = "crash", [FK_PAUSE] = "pause", [FK_CLOCK_JUMP] = "clock-jump",
    [FK_CLOCK_DRIFT] = "clock-drift",
};

#define SECS(ns) (unsigned long long)((ns) / 1000000000ull), (unsigned long long)((ns) % 1000000000ull)

/* One line of the schedule file (REEL_SIM_SCHEDULE_OUT): the fault as it
 * was applied, in the format sim_schedule_open reads back. */
static void schedule_write(sim_world *w, const sim_fault *f, uint64_t dur_ns, const char *sides)
{
    char line[1200];
    const sim_host *a = w->hosts[f->a], *b = w->hosts[f->b];
    int n = 0;
    switch (f->kind) {
    case FK_PARTITION:
        n = snprintf(line, sizeof line, "%llu.%09llu %s - sides=%s dur=%llu.%09llu\n", SECS(f->start_ns),
                     f->one_way ? "partition-one-way" : "partition", sides, SECS(dur_ns));
        break;
    case FK_CLOG:
        n = snprintf(line, sizeof line, "%llu.%09llu clog %s to=%s dur=%llu.%09llu\n", SECS(f->start_ns),
                     a->name, b->name, SECS(dur_ns));
        break;
    case FK_SPIKE:
        n = snprintf(line, sizeof line, "%llu.%09llu spike %s to=%s extra=%llu.%09llu dur=%llu.%09llu\n",
                     SECS(f->start_ns), a->name, b->name, SECS((uint64_t)f->arg), SECS(dur_ns));
        break;
    case FK_RESET:
        n = snprintf(line, sizeof line, "%llu.%09llu reset %s\n", SECS(f->start_ns), a->name);
        break;
    case FK_CRASH:
    case FK_PAUSE:
        n = snprintf(line, sizeof line, "%llu.%09llu %s %s dur=%llu.%09llu\n", SECS(f->start_ns),
                     kind_names[f->kind], a->name, SECS(dur_ns));
        break;
    case FK_CLOCK_JUMP:
        n = snprintf(line, sizeof line, "%llu.%09llu clock-jump %s by=%llu.%09llu\n", SECS(f->start_ns),
                     a->name, SECS((uint64_t)f->arg));
        break;
    case FK_CLOCK_DRIFT:
        n = snprintf(line, sizeof line, "%llu.%09llu clock-drift %s ppm=%lld dur=%llu.%09llu\n",
                     SECS(f->start_ns), a->name, (long long)f->arg, SECS(dur_ns));
        break;
    }
    if (n > 0 && (size_t)n < sizeof line)
        reel_os_logfile_write(w->sched_out, line, (size_t)n);
}

int reel_sim_set_fault_gate(reel_sim *sim, reel_sim_fault_gate_fn gate, void *arg)
{
    if (!sim)
        return -EINVAL;
    sim->gate = gate;
    sim->gate_arg = arg;
    return 0;
}

/* The kill gate's veto of a crash or pause (always false without a gate:
 * worlds without one run exactly as before). A down host's crash is
 * vetoed too: only a schedule file can ask for one. */
static bool gate_vetoes(sim_world *w, const sim_fault *f, sim_host *a)
{
    if (!w->gate || (f->kind != FK_CRASH && f->kind != FK_PAUSE))
        return false;
    if (f->kind == FK_CRASH && !a->up)
        return true;
    return !w->gate(w, a->name, f->kind == FK_CRASH ? REEL_SIM_SWARM_CRASH : REEL_SIM_SWARM_PAUSE, w->gate_arg);
}

static void fault_start(sim_world *w, sim_fault *f, uint32_t index)
{
    sim_host *a = w->hosts[f->a], *b = w->hosts[f->b];
    uint64_t end = f->start_ns + f->dur_ns;
    if (end > w->quiet_at_ns)
        end = w->quiet_at_ns;
    if (end < f->start_ns)
        end = f->start_ns; /* a schedule file's line after the quiet time */
    double dur_s = (double)(end - f->start_ns) / 1e9;
    char sides[512] = "";
    if (f->kind == FK_PARTITION)
        describe_sides(w, f, sides, sizeof sides);
    if (w->sched_out)
        schedule_write(w, f, end - f->start_ns, sides);
    if (gate_vetoes(w, f, a)) {
        sim_trace(w, a, "fault-skipped id=%u kind=%s dur=%.6f (gate)", index, kind_names[f->kind], dur_s);
        sim_note_event(w, W_FAULT, a, 300 + f->kind, 0);
        f->ended = true;
        return;
    }
    switch (f->kind) {
    case FK_PARTITION:
        partition_apply(w, f, true);
        sim_trace(w, NULL, "fault-start id=%u kind=partition%s sides=%s dur=%.6f", index,
                  f->one_way ? "-one-way" : "", sides, dur_s);
        break;
    case FK_CLOG: {
        sim_link *l = sim_link_get(w, a->id, b->id, true);
        if (l && l->clog_until_ns < end)
            l->clog_until_ns = end;
        sim_trace(w, a, "fault-start id=%u kind=clog to=%s dur=%.6f", index, b->name, dur_s);
        break;
    }
    case FK_SPIKE:
        for (int dir = 0; dir < 2; dir++) {
            sim_link *l = dir ? sim_link_get(w, b->id, a->id, true) : sim_link_get(w, a->id, b->id, true);
            if (!l)
                continue;
            l->spike_ns = (uint64_t)f->arg;
            l->spike_until_ns = end;
        }
        sim_trace(w, a, "fault-start id=%u kind=spike to=%s extra=%.6f dur=%.6f", index, b->name,
                  (double)f->arg / 1e9, dur_s);
        break;
    case FK_RESET:
        sim_trace(w, a, "fault id=%u kind=reset", index);
        sim_conn_reset_all(a);
        break;
    case FK_CRASH:
        sim_trace(w, a, "fault-start id=%u kind=crash dur=%.6f", index, dur_s);
        if (sim_host_crash(a) == 0)
            a->swarm_crashed = true;
        break;
    case FK_PAUSE:
        if (a->paused_until_ns < end)
            a->paused_until_ns = end;
        sim_trace(w, a, "fault-start id=%u kind=pause dur=%.6f", index, dur_s);
        break;
    case FK_CLOCK_JUMP:
        sim_trace(w, a, "fault id=%u kind=clock-jump by=%.6f", index, (double)f->arg / 1e9);
        reel_sim_clock_jump(w, a->name, (uint64_t)f->arg);
        break;
    case FK_CLOCK_DRIFT:
        sim_trace(w, a, "fault-start id=%u kind=clock-drift ppm=%lld dur=%.6f", index,
                  (long long)f->arg, dur_s);
        reel_sim_clock_drift(w, a->name, (int32_t)f->arg);
        a->swarm_drift = true;
        break;
    }
    sim_note_event(w, W_FAULT, a, 100 + f->kind, f->arg);
    if (f->dur_ns) {
        sim_ev ev = {.when_ns = end, .kind = EV_FAULT_END, .host = UINT32_MAX, .fault = index};
        sim_schedule(w, &ev);
    } else {
        f->ended = true;
    }
}

static void fault_end(sim_world *w, uint32_t index)
{
    sim_fault *f = &w->sched[index];
    if (f->ended)
        return;
    f->ended = true;
    sim_host *a = w->hosts[f->a], *b = w->hosts[f->b];
    switch (f->kind) {
    case FK_PARTITION:
        partition_apply(w, f, false);
        sim_trace(w, NULL, "fault-end id=%u kind=partition", index);
        break;
    case FK_CLOG:
        /* clog_until_ns runs out by itself */
        a->dirty = true;
        sim_trace(w, a, "fault-end id=%u kind=clog to=%s", index, b->name);
        break;
    case FK_SPIKE:
        sim_trace(w, a, "fault-end id=%u kind=spike to=%s", index, b->name);
        break;
    case FK_CRASH:
        sim_trace(w, a, "fault-end id=%u kind=crash (restart)", index);
        if (!a->up && a->swarm_crashed) {
            a->swarm_crashed = false;
            sim_host_boot(a);
        }
        break;
    case FK_PAUSE:
        if (a->paused_until_ns <= w->now_ns)
            a->paused_until_ns = 0;
        sim_trace(w, a, "fault-end id=%u kind=pause", index);
        break;
    case FK_CLOCK_DRIFT:
        if (a->swarm_drift) {
            reel_sim_clock_drift(w, a->name, 0);
            a->swarm_drift = false;
        }
        sim_trace(w, a, "fault-end id=%u kind=clock-drift", index);
        break;
    }
    sim_note_event(w, W_FAULT, a, 200 + f->kind, 0);
}

/* Everything heals: the liveness phase begins. */
static void quiet(sim_world *w)
{
    sim_trace(w, NULL, "quiet-phase");
    for (uint32_t i = 0; i < w->nsched; i++)
        fault_end(w, i);
    for (uint32_t i = 0; i < w->nlinks; i++) {
        w->links[i].cut = false;
        w->links[i].clog_until_ns = 0;
        w->links[i].spike_until_ns = 0;
    }
    for (uint32_t i = 0; i < w->nhosts; i++) {
        sim_host *h = w->hosts[i];
        h->dirty = true;
        h->paused_until_ns = 0;
        if (!h->up && h->boot) {
            sim_trace(w, h, "restart (quiet phase)");
            h->swarm_crashed = false;
            sim_host_boot(h);
        }
    }
    sim_note_event(w, W_FAULT, NULL, 30, 0);
}

/* ------------------------------------------- per-operation decisions */

static const struct {
    const char *name;
    const char *amount;          /* key of the amount, or NULL */
    bool secs;                   /* the amount is a time */
} dec_kinds[DK_COUNT] = {
    [DK_SHORT_READ] = {"short-read", "n", false}, [DK_SHORT_WRITE] = {"short-write", "n", false},
    [DK_EINTR] = {"eintr", NULL, false},          [DK_EAGAIN] = {"eagain", NULL, false},
    [DK_UDP_LOSS] = {"udp-loss", NULL, false},    [DK_UDP_DUP] = {"udp-dup", NULL, false},
    [DK_UDP_REORDER] = {"udp-reorder", "extra", true}, [DK_TIMER_LATE] = {"timer-late", "late", true},
    [DK_RESET] = {"rst", NULL, false},            [DK_BUGGIFY] = {"buggify", NULL, false},
};

uint64_t sim_site_key(const char *file, int line)
{
    uint64_t key = sim_mix((uint64_t)line);
    for (const char *p = file; *p; p++)
        key = sim_mix(key ^ (uint8_t)*p);
    return key;
}

uint16_t reel_sim_site_key(const char *file, int line)
{
    return file ? (uint16_t)sim_site_key(file, line) : 0;
}

_Static_assert((int)REEL_SIM_DEC_FAULT == (int)DK_COUNT && (int)REEL_SIM_DEC_BUGGIFY == (int)DK_BUGGIFY &&
                   (int)REEL_SIM_DEC_SHORT_READ == (int)DK_SHORT_READ &&
                   (int)REEL_SIM_DEC_RESET == (int)DK_RESET &&
                   (int)REEL_SIM_DEC_TIMER_LATE == (int)DK_TIMER_LATE,
               "the public decision kinds are the simulator's");

/* Overrides sort by identity, then by their place in the config, so the
 * first of one identity is the one kept (sim_overrides_open). */
typedef struct ovr_sort {
    reel_sim_decision d;
    uint32_t at;
} ovr_sort;

static int ovr_key_cmp(const reel_sim_decision *a, const reel_sim_decision *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->host != b->host)
        return a->host < b->host ? -1 : 1;
    if (a->site != b->site)
        return a->site < b->site ? -1 : 1;
    if (a->index != b->index)
        return a->index < b->index ? -1 : 1;
    return 0;
}

static int ovr_sort_cmp(const void *pa, const void *pb)
{
    const ovr_sort *a = pa, *b = pb;
    int c = ovr_key_cmp(&a->d, &b->d);
    return c ? c : a->at < b->at ? -1 : a->at > b->at;
}

static int ovr_cmp(const void *pa, const void *pb) { return ovr_key_cmp(pa, pb); }

int sim_overrides_open(sim_world *w, const reel_sim_config *c)
{
    /* What the config makes possible: with swarm, what its families allow
     * (the seed's mix is one of many the config allows); without, what
     * its probabilities allow. */
    uint32_t poss = 0;
    if (c->swarm) {
        uint32_t mask = c->swarm_faults ? c->swarm_faults : REEL_SIM_SWARM_ALL;
        if (mask & REEL_SIM_SWARM_IO)
            poss |= 1u << DK_SHORT_READ | 1u << DK_SHORT_WRITE | 1u << DK_EINTR | 1u << DK_EAGAIN;
        if (mask & REEL_SIM_SWARM_UDP)
            poss |= 1u << DK_UDP_LOSS | 1u << DK_UDP_DUP | 1u << DK_UDP_REORDER;
        if (mask & REEL_SIM_SWARM_TIMER)
            poss |= 1u << DK_TIMER_LATE;
        if (mask & REEL_SIM_SWARM_BUGGIFY)
            poss |= 1u << DK_BUGGIFY;
    } else {
        if (c->p_short_io > 0)
            poss |= 1u << DK_SHORT_READ | 1u << DK_SHORT_WRITE;
        if (c->p_eintr > 0)
            poss |= 1u << DK_EINTR;
        if (c->p_eagain > 0)
            poss |= 1u << DK_EAGAIN;
        if (c->p_udp_loss > 0)
            poss |= 1u << DK_UDP_LOSS;
        if (c->p_udp_dup > 0)
            poss |= 1u << DK_UDP_DUP;
        if (c->p_udp_reorder > 0)
            poss |= 1u << DK_UDP_REORDER;
    }
    if (c->p_reset > 0)
        poss |= 1u << DK_RESET;
    w->fault_possible = 0;
    if (c->swarm) {
        uint32_t mask = c->swarm_faults ? c->swarm_faults : REEL_SIM_SWARM_ALL;
        for (int f = 0; f < FAM_COUNT; f++)
            if (mask & family_bits[f])
                w->fault_possible |= 1u << f;
    }
    w->dec_possible = poss;
    w->cfg.overrides = NULL;
    w->cfg.noverrides = 0;
    if (c->noverrides > REEL_SIM_OVERRIDES_MAX || (c->noverrides && !c->overrides))
        return -EINVAL;
    for (size_t i = 0; i < c->noverrides; i++)
        if (c->overrides[i].kind >= REEL_SIM_DEC_KINDS ||
            (c->overrides[i].kind == REEL_SIM_DEC_FAULT ? c->overrides[i].site >= FAM_COUNT
                                                        : c->overrides[i].site && c->overrides[i].kind != DK_BUGGIFY))
            return -EINVAL;
    w->dec_hook = c->noverrides || c->on_decision;
    if (!c->noverrides)
        return 0;
    ovr_sort *tmp = malloc(c->noverrides * sizeof *tmp);
    w->ovr = malloc(c->noverrides * sizeof *w->ovr);
    if (!tmp || !w->ovr) {
        free(tmp);
        free(w->ovr);
        w->ovr = NULL;
        return -ENOMEM;
    }
    for (size_t i = 0; i < c->noverrides; i++)
        tmp[i] = (ovr_sort){.d = c->overrides[i], .at = (uint32_t)i};
    qsort(tmp, c->noverrides, sizeof *tmp, ovr_sort_cmp);
    uint32_t n = 0;
    for (size_t i = 0; i < c->noverrides; i++)
        if (!n || ovr_key_cmp(&w->ovr[n - 1], &tmp[i].d) != 0)
            w->ovr[n++] = tmp[i].d;
    free(tmp);
    w->novr = n;
    w->cfg.overrides = w->ovr;
    w->cfg.noverrides = n;
    return 0;
}

_Static_assert((int)REEL_SIM_FAULT_FAMILIES == (int)FAM_COUNT && (int)REEL_SIM_FAULT_CRASH == (int)FAM_CRASH &&
                   (int)REEL_SIM_FAULT_CLOCK == (int)FAM_CLOCK && (int)REEL_SIM_FAULT_CLOG == (int)FAM_CLOG,
               "the public fault families are the simulator's");

void sim_overrides_schedule(sim_world *w)
{
    for (uint32_t i = 0; i < w->novr; i++) {
        const reel_sim_decision *d = &w->ovr[i];
        if (d->kind != REEL_SIM_DEC_FAULT || !d->value || !(w->fault_possible >> d->site & 1))
            continue;
        uint64_t at = (uint64_t)d->index * 10 * MS;
        if (at >= w->quiet_at_ns)
            continue;
        sim_ev ev = {.when_ns = at, .kind = EV_FAULT_OVR, .host = UINT32_MAX, .fault = i};
        sim_schedule(w, &ev);
    }
}

/* v in 1..255 on the log scale draw_log draws from (its 64 steps from lo
 * to hi), in integers as there. */
static uint64_t log_scale(uint8_t v, uint64_t lo, uint64_t hi)
{
    uint64_t steps = (uint64_t)(v ? v - 1 : 0) * 64 / 255, x = lo;
    for (uint64_t i = 0; i < steps && x < hi; i++)
        x += x / 8 + 1;
    return x < hi ? x : hi;
}

/* An override's fault is due: build it as the swarm would, with the
 * override's host and duration instead of draws (nothing is drawn). */
static void override_fault(sim_world *w, uint32_t i)
{
    if (i >= w->novr)
        return;
    const reel_sim_decision *d = &w->ovr[i];
    if (d->host >= w->nhosts)
        return;
    sim_host *a = w->hosts[d->host];
    if (a->protect || !a->up)
        return;
    sim_fault f = {.start_ns = w->now_ns, .a = a->id, .b = a->id};
    switch (d->site) {
    case FAM_PARTITION:
        if (unprotected_count(w) < 2)
            return;
        f.kind = FK_PARTITION;
        f.side_a = 1ull << (a->id & 63);
        f.side_b = ~f.side_a;
        f.dur_ns = log_scale(d->value, 50 * MS, 3000 * MS);
        break;
    case FAM_CLOG:
    case FAM_SPIKE: {
        sim_host *b = NULL;
        for (uint32_t k = 1; k < w->nhosts && !b; k++) {
            sim_host *h = w->hosts[(a->id + k) % w->nhosts];
            if (!h->protect && h->up)
                b = h;
        }
        if (!b)
            return;
        f.kind = d->site == FAM_CLOG ? FK_CLOG : FK_SPIKE;
        f.b = b->id;
        f.dur_ns = log_scale(d->value, 10 * MS, 2000 * MS);
        f.arg = f.kind == FK_SPIKE ? (int64_t)log_scale(d->value, 5 * MS, 500 * MS) : 0;
        break;
    }
    case FAM_RESET:
        f.kind = FK_RESET;
        break;
    case FAM_CRASH:
        if (!a->boot || reel_loop_is_running(a->loop))
            return;
        f.kind = FK_CRASH;
        f.dur_ns = log_scale(d->value, 100 * MS, 5000 * MS);
        break;
    case FAM_PAUSE:
        f.kind = FK_PAUSE;
        f.dur_ns = log_scale(d->value, 10 * MS, 2000 * MS);
        break;
    case FAM_CLOCK:
        f.kind = FK_CLOCK_JUMP;
        f.arg = (int64_t)log_scale(d->value, 1 * MS, 5000 * MS);
        break;
    default:
        return;
    }
    if (w->cfg.on_decision)
        w->cfg.on_decision(d, w->cfg.on_decision_arg);
    uint32_t index = w->nsched;
    sim_fault *e = sched_add(w, &f);
    if (e)
        fault_start(w, e, index);
}

/* The amount an override's value stands for (reel_sim_decision). */
static uint64_t ovr_amount(const sim_world *w, int kind, uint8_t value)
{
    switch (kind) {
    case DK_SHORT_READ:
    case DK_SHORT_WRITE:
        return value;
    case DK_TIMER_LATE: {
        uint64_t max = w->timer_late_max_ns ? w->timer_late_max_ns : 1000000;
        return max * value / 255;
    }
    case DK_UDP_REORDER:
        return 5 * (w->cfg.latency_ns + 1) * value / 256;
    default:
        return 0;
    }
}

/* The value that stands for an outcome, for on_decision. */
static uint8_t ovr_value(const sim_world *w, int kind, bool fired, uint64_t amount)
{
    if (!fired)
        return 0;
    uint64_t v;
    switch (kind) {
    case DK_SHORT_READ:
    case DK_SHORT_WRITE:
        v = amount;
        break;
    case DK_TIMER_LATE: {
        uint64_t max = w->timer_late_max_ns ? w->timer_late_max_ns : 1000000;
        v = amount * 255 / max;
        break;
    }
    case DK_UDP_REORDER:
        v = amount * 256 / (5 * (w->cfg.latency_ns + 1));
        break;
    default:
        v = 1;
    }
    return v < 1 ? 1 : v > 255 ? 255 : (uint8_t)v;
}

static int dec_cmp(const void *pa, const void *pb)
{
    const sim_file_dec *a = pa, *b = pb;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->index != b->index)
        return a->index < b->index ? -1 : 1;
    if (a->site != b->site)
        return a->site < b->site ? -1 : 1;
    return strcmp(a->host, b->host);
}

/* An every-call entry that fires is a fault made permanent: the seeded
 * world fires each call with probability p < 1 (a run of k with p^k), so
 * in the quiet phase, where the config promises faults heal and programs
 * check liveness, such an entry stops applying and the seed decides again
 * (as the swarm's timed faults end there). Without it a BUGGIFY "disk
 * full" forced on every call fails every PUT forever, and the liveness
 * check reports that as the program's failure. Before the quiet phase it
 * applies, except for spurious errors (below), where it would stop time.
 *
 * Whether failing EVERY call of a host with a spurious EINTR or EAGAIN
 * is a world the config makes possible. A spurious failure is transient:
 * the seeded world fails each call independently with probability p, so
 * a run of k failed calls has probability p^k, and the same ready socket
 * failing forever has probability 0 unless p is 1. An every-call
 * override of one would make every accept or read of the host fail while
 * the socket stays ready: the loop retries without end and the run ends
 * at the livelock guard, a world no seed can produce. So such an entry
 * applies only where p is 1 (where the seed fails every call too); one
 * override per call (finitely many) and every-call entries of the other
 * kinds (a short read still moves a byte) stay as they are. */
static bool spurious_every_possible(const sim_world *w, int kind)
{
    if (kind == DK_EINTR)
        return w->cfg.p_eintr >= 1.0;
    if (kind == DK_EAGAIN)
        return w->cfg.p_eagain >= 1.0;
    return true;
}

bool sim_decide(sim_world *w, sim_host *h, int kind, uint32_t index, uint64_t site, const char *site_name,
                bool fired, uint64_t *amount)
{
    if (w->from_file)
        fired = false; /* only what the file holds fires */
    if (w->from_file && w->nfile_decs) { /* (bsearch must not see a NULL array) */
        sim_file_dec key = {.kind = (uint8_t)kind, .index = index, .site = site};
        snprintf(key.host, sizeof key.host, "%s", h->name);
        sim_file_dec *d = bsearch(&key, w->file_decs, w->nfile_decs, sizeof key, dec_cmp);
        if (d) {
            fired = true;
            d->used = true;
            *amount = d->amount;
        }
    }
    if (w->dec_hook && !w->from_file) {
        reel_sim_decision id = {.kind = (uint8_t)kind, .host = (uint8_t)h->id,
                                .site = kind == DK_BUGGIFY ? (uint16_t)site : 0, .index = index};
        bool possible = w->dec_possible >> kind & 1;
        if (w->novr && h->id <= UINT8_MAX && possible) {
            const reel_sim_decision *d = bsearch(&id, w->ovr, w->novr, sizeof id, ovr_cmp);
            if (!d) { /* an entry for every call of this point? */
                reel_sim_decision every = id;
                every.index = REEL_SIM_DEC_EVERY;
                d = bsearch(&every, w->ovr, w->novr, sizeof every, ovr_cmp);
                if (d && d->value && (!spurious_every_possible(w, kind) || w->now_ns >= w->quiet_at_ns))
                    d = NULL; /* outside the world: the seed decides */
            }
            if (d) {
                fired = d->value != 0;
                if (fired)
                    *amount = ovr_amount(w, kind, d->value);
            }
        }
        if (w->cfg.on_decision && h->id <= UINT8_MAX && possible) {
            id.value = ovr_value(w, kind, fired, *amount);
            w->cfg.on_decision(&id, w->cfg.on_decision_arg);
        }
    }
    if (fired && w->sched_out) {
        char line[600];
        int n = snprintf(line, sizeof line, "%llu.%09llu %s %s op=%u", SECS(w->now_ns), dec_kinds[kind].name,
                         h->name, index);
        if (site_name && n > 0 && (size_t)n < sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, " site=%s", site_name);
        if (dec_kinds[kind].amount && n > 0 && (size_t)n < sizeof line) {
            if (dec_kinds[kind].secs)
                n += snprintf(line + n, sizeof line - (size_t)n, " %s=%llu.%09llu", dec_kinds[kind].amount,
                              SECS(*amount));
            else
                n += snprintf(line + n, sizeof line - (size_t)n, " %s=%llu", dec_kinds[kind].amount,
                              (unsigned long long)*amount);
        }
        if (n > 0 && (size_t)n < sizeof line - 1) {
            line[n++] = '\n';
            reel_os_logfile_write(w->sched_out, line, (size_t)n);
        }
    }
    if (fired)
        sim_trace(w, h, "decision %s op=%u%s%s", dec_kinds[kind].name, index, site_name ? " site=" : "",
                  site_name ? site_name : "");
    return fired;
}

/* A decision line: "<t> <kind> <host> op=N [site=FILE:LINE] [n=|extra=|late=]". */
static int parse_dec(const char *kind, const char *host, const char *rest, int lineno, sim_file_dec *d,
                     char *err, size_t errcap);

/* ------------------------------------------------------ schedule files */

static sim_host *host_named(sim_world *w, const char *name)
{
    for (uint32_t i = 0; i < w->nhosts; i++)
        if (strcmp(w->hosts[i]->name, name) == 0)
            return w->hosts[i];
    return NULL;
}

static void schedule_fail(sim_world *w, const sim_file_fault *ff, const char *what, const char *name)
{
    char msg[300];
    int n = snprintf(msg, sizeof msg, "reel sim: schedule line %d: %s \"%s\" (at t=%.6f s)", ff->line, what,
                     name, (double)w->now_ns / 1e9);
    sim_log(w, msg, n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    if (!w->schedule_error)
        w->schedule_error = -ENOENT;
}

/* The first time the world runs from a file: every per-operation decision
 * must name a host that exists by then (a typo would otherwise never
 * fire, silently). An error names the line, as for timed faults. */
void sim_schedule_check_hosts(sim_world *w)
{
    if (w->decs_checked)
        return;
    w->decs_checked = true;
    for (uint32_t i = 0; i < w->nfile_decs; i++)
        if (!host_named(w, w->file_decs[i].host)) {
            sim_file_fault ff = {.line = w->file_decs[i].line};
            schedule_fail(w, &ff, "no host named", w->file_decs[i].host);
            return;
        }
}

/* Names to a side mask; false (and a reported error) for an unknown host. */
static bool side_mask(sim_world *w, const sim_file_fault *ff, const char *list, uint64_t *mask)
{
    char name[sim_name_bytes];
    *mask = 0;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), p);
        sim_host *h = host_named(w, name);
        if (!h) {
            schedule_fail(w, ff, "no host named", name);
            return false;
        }
        *mask |= 1ull << (h->id & 63);
        p += n;
        if (*p == ',')
            p++;
    }
    return true;
}

static void file_fault_fire(sim_world *w, sim_file_fault *ff)
{
    if (ff->fired)
        return;
    ff->fired = true;
    sim_fault f = ff->f;
    f.start_ns = w->now_ns;
    if (f.kind == FK_PARTITION) {
        if (!side_mask(w, ff, ff->sides[0], &f.side_a) || !side_mask(w, ff, ff->sides[1], &f.side_b))
            return;
    } else {
        sim_host *a = host_named(w, ff->a);
        if (!a) {
            schedule_fail(w, ff, "no host named", ff->a);
            return;
        }
        f.a = a->id;
        if (f.kind == FK_CLOG || f.kind == FK_SPIKE) {
            sim_host *b = host_named(w, ff->b);
            if (!b) {
                schedule_fail(w, ff, "no host named", ff->b);
                return;
            }
            f.b = b->id;
        }
        if (f.kind == FK_CRASH && (!a->boot || (!a->up && !w->gate) || (a->up && reel_loop_is_running(a->loop)))) {
            schedule_fail(w, ff, "cannot crash (no program, down, or driving the world)", ff->a);
            return;
        }
    }
    uint32_t index = w->nsched;
    sim_fault *e = sched_add(w, &f);
    if (e)
        fault_start(w, e, index);
}

/* "12.5", "0.000001", "3": seconds to nanoseconds, exactly; false if not. */
static bool parse_secs(const char *s, size_t len, uint64_t *ns)
{
    uint64_t whole = 0, frac = 0;
    size_t i = 0;
    int digits = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        if (whole > UINT64_MAX / 10 / 1000000000ull)
            return false;
        whole = whole * 10 + (uint64_t)(s[i] - '0');
    }
    int fd = 0;
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, fd++) {
            if (fd >= 9)
                return false;
            frac = frac * 10 + (uint64_t)(s[i] - '0');
        }
    }
    if (i != len || (digits == 0 && fd == 0))
        return false;
    for (; fd < 9; fd++)
        frac *= 10;
    *ns = whole * 1000000000ull + frac;
    return true;
}

/* key=value among the words after the third; value copied (bounded). */
static bool file_field(const char *rest, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    for (const char *p = rest; *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            size_t v = n - klen - 1;
            if (v >= cap)
                return false;
            memcpy(out, p + klen + 1, v);
            out[v] = '\0';
            return true;
        }
        p += n;
    }
    return false;
}

static int parse_line(sim_world *w, char *text, int lineno, uint64_t prev_ns, sim_file_fault *ff,
                      sim_file_dec *dec, char *err, size_t errcap)
{
    memset(ff, 0, sizeof *ff);
    ff->line = lineno;
    char t[40], kind[40], host[sim_name_bytes];
    int off = 0;
    if (sscanf(text, "%39s %39s %63s %n", t, kind, host, &off) < 3) {
        snprintf(err, errcap, "line %d: want \"<seconds> <kind> <host|-> key=value...\"", lineno);
        return -EINVAL;
    }
    const char *rest = off ? text + off : "";
    uint64_t at;
    if (!parse_secs(t, strlen(t), &at)) {
        snprintf(err, errcap, "line %d: \"%s\" is not a time in seconds", lineno, t);
        return -EINVAL;
    }
    if (at < prev_ns) {
        snprintf(err, errcap, "line %d: time %s is before the previous line's", lineno, t);
        return -EINVAL;
    }
    sim_fault *f = &ff->f;
    f->start_ns = at;
    for (int i = 0; i < DK_COUNT; i++)
        if (strcmp(dec_kinds[i].name, kind) == 0) {
            dec->kind = (uint8_t)i;
            int rc = parse_dec(kind, host, rest, lineno, dec, err, errcap);
            return rc < 0 ? rc : 1;
        }
    static const struct { const char *name; uint8_t kind; bool one_way, dur, to; } kinds[] = {
        {"partition", FK_PARTITION, false, true, false}, {"partition-one-way", FK_PARTITION, true, true, false},
        {"clog", FK_CLOG, false, true, true}, {"spike", FK_SPIKE, false, true, true},
        {"reset", FK_RESET, false, false, false}, {"crash", FK_CRASH, false, true, false},
        {"pause", FK_PAUSE, false, true, false}, {"clock-jump", FK_CLOCK_JUMP, false, false, false},
        {"clock-drift", FK_CLOCK_DRIFT, false, true, false},
    };
    int k = -1;
    for (int i = 0; i < (int)(sizeof kinds / sizeof kinds[0]); i++)
        if (strcmp(kinds[i].name, kind) == 0)
            k = i;
    if (k < 0) {
        snprintf(err, errcap, "line %d: unknown fault kind \"%s\"", lineno, kind);
        return -EINVAL;
    }
    f->kind = kinds[k].kind;
    f->one_way = kinds[k].one_way;
    char v[600];
    if (kinds[k].dur) {
        if (!file_field(rest, "dur", v, sizeof v) || !parse_secs(v, strlen(v), &f->dur_ns) || !f->dur_ns) {
            snprintf(err, errcap, "line %d: %s needs dur=<seconds> (more than 0)", lineno, kind);
            return -EINVAL;
        }
    }
    if (f->kind == FK_PARTITION) {
        char *sep;
        if (!file_field(rest, "sides", v, sizeof v) ||
            !(sep = strstr(v, f->one_way ? "->" : "|")) || sep == v || !sep[f->one_way ? 2 : 1]) {
            snprintf(err, errcap, "line %d: %s needs sides=a,b%sc,d", lineno, kind, f->one_way ? "->" : "|");
            return -EINVAL;
        }
        *sep = '\0';
        snprintf(ff->sides[0], sizeof ff->sides[0], "%s", v);
        snprintf(ff->sides[1], sizeof ff->sides[1], "%s", sep + (f->one_way ? 2 : 1));
        return 0;
    }
    if (strcmp(host, "-") == 0 || strlen(host) >= sizeof ff->a) {
        snprintf(err, errcap, "line %d: %s needs a host", lineno, kind);
        return -EINVAL;
    }
    snprintf(ff->a, sizeof ff->a, "%s", host);
    if (kinds[k].to && !file_field(rest, "to", ff->b, sizeof ff->b)) {
        snprintf(err, errcap, "line %d: %s needs to=<host>", lineno, kind);
        return -EINVAL;
    }
    uint64_t ns;
    if (f->kind == FK_SPIKE) {
        if (!file_field(rest, "extra", v, sizeof v) || !parse_secs(v, strlen(v), &ns)) {
            snprintf(err, errcap, "line %d: spike needs extra=<seconds>", lineno);
            return -EINVAL;
        }
        f->arg = (int64_t)ns;
    } else if (f->kind == FK_CLOCK_JUMP) {
        if (!file_field(rest, "by", v, sizeof v) || !parse_secs(v, strlen(v), &ns)) {
            snprintf(err, errcap, "line %d: clock-jump needs by=<seconds>", lineno);
            return -EINVAL;
        }
        f->arg = (int64_t)ns;
    } else if (f->kind == FK_CLOCK_DRIFT) {
        char *end;
        long long ppm = file_field(rest, "ppm", v, sizeof v) ? strtoll(v, &end, 10) : 0;
        if (!ppm || *end || ppm <= -1000000 || ppm > 1000000) {
            snprintf(err, errcap, "line %d: clock-drift needs ppm=<-999999..1000000, not 0>", lineno);
            return -EINVAL;
        }
        f->arg = ppm;
    }
    (void)w;
    return 0;
}

static int parse_dec(const char *kind, const char *host, const char *rest, int lineno, sim_file_dec *d,
                     char *err, size_t errcap)
{
    int k = d->kind;
    d->line = lineno;
    if (strcmp(host, "-") == 0 || strlen(host) >= sizeof d->host) {
        snprintf(err, errcap, "line %d: %s needs a host", lineno, kind);
        return -EINVAL;
    }
    snprintf(d->host, sizeof d->host, "%s", host);
    char v[300], *end;
    if (!file_field(rest, "op", v, sizeof v) || v[0] < '0' || v[0] > '9' ||
        strtoull(v, &end, 10) > UINT32_MAX - 1 || *end) {
        snprintf(err, errcap, "line %d: %s needs op=<0..%u>", lineno, kind, UINT32_MAX - 1);
        return -EINVAL;
    }
    d->index = (uint32_t)strtoull(v, NULL, 10);
    if (k == DK_BUGGIFY) {
        char *colon;
        if (!file_field(rest, "site", v, sizeof v) || !(colon = strrchr(v, ':')) || colon == v ||
            colon[1] < '0' || colon[1] > '9' || strtol(colon + 1, &end, 10) > 1000000000 || *end) {
            snprintf(err, errcap, "line %d: buggify needs site=<file>:<line>", lineno);
            return -EINVAL;
        }
        *colon = '\0';
        d->site = sim_site_key(v, (int)strtol(colon + 1, NULL, 10));
    }
    const char *akey = dec_kinds[k].amount;
    if (akey) {
        bool ok = file_field(rest, akey, v, sizeof v);
        if (ok && dec_kinds[k].secs)
            ok = parse_secs(v, strlen(v), &d->amount);
        else if (ok) {
            ok = v[0] >= '0' && v[0] <= '9';
            unsigned long long n = strtoull(v, &end, 10);
            ok = ok && !*end && n >= 1 && n < (1ull << 40);
            d->amount = n;
        }
        if (!ok) {
            snprintf(err, errcap, "line %d: %s needs %s=<%s>", lineno, kind, akey,
                     dec_kinds[k].secs ? "seconds" : "bytes, 1 or more");
            return -EINVAL;
        }
    }
    return 0;
}

/* REEL_SIM_SCHEDULE_OUT / cfg.schedule_out_path: write the schedule as
 * faults start. REEL_SIM_SCHEDULE / cfg.schedule_path: read one; its faults
 * are then the run's only timed faults. */
int sim_schedule_open(sim_world *w)
{
    const char *out = w->cfg.schedule_out_path;
    if (!out || !*out)
        out = getenv("REEL_SIM_SCHEDULE_OUT");
    if (out && *out) {
        int err;
        w->sched_out = reel_os_logfile_open(out, &err);
        if (!w->sched_out)
            return err;
        char line[160];
        int n = snprintf(line, sizeof line,
                         "# reel sim schedule: seed %llu; <seconds> <kind> <host|-> key=value...\n",
                         (unsigned long long)w->seed);
        reel_os_logfile_write(w->sched_out, line, (size_t)n);
    }
    const char *in = w->cfg.schedule_path;
    if (!in || !*in)
        in = getenv("REEL_SIM_SCHEDULE");
    if (!in || !*in)
        return 0;
    char *text = NULL;
    size_t len = 0;
    int rc = reel_os_file_read(in, sim_schedule_file_max_bytes, &text, &len);
    char err[300] = "";
    if (rc < 0) {
        snprintf(err, sizeof err, "cannot read: %s", strerror(-rc));
    } else {
        int lineno = 0;
        uint64_t prev = 0;
        for (char *p = text; p && *p && rc == 0;) {
            char *nl = strchr(p, '\n');
            if (nl)
                *nl = '\0';
            lineno++;
            if (*p && *p != '#') {
                if (w->nfile_faults >= sim_faults_max) {
                    snprintf(err, sizeof err, "line %d: more than %d faults", lineno, (int)sim_faults_max);
                    rc = -EINVAL;
                    break;
                }
                sim_file_fault *nf = realloc(w->file_faults, (w->nfile_faults + 1) * sizeof *nf);
                if (!nf) {
                    rc = -ENOMEM;
                    break;
                }
                w->file_faults = nf;
                sim_file_dec dec = {0};
                rc = parse_line(w, p, lineno, prev, &nf[w->nfile_faults], &dec, err, sizeof err);
                if (rc == 0) {
                    prev = nf[w->nfile_faults++].f.start_ns;
                } else if (rc == 1) {
                    prev = nf[w->nfile_faults].f.start_ns;
                    rc = 0;
                    if (w->nfile_decs >= sim_decisions_max) {
                        snprintf(err, sizeof err, "line %d: more than %d decisions", lineno,
                                 (int)sim_decisions_max);
                        rc = -EINVAL;
                        break;
                    }
                    sim_file_dec *nd = realloc(w->file_decs, (w->nfile_decs + 1) * sizeof *nd);
                    if (!nd) {
                        rc = -ENOMEM;
                        break;
                    }
                    w->file_decs = nd;
                    nd[w->nfile_decs++] = dec;
                }
            }
            p = nl ? nl + 1 : NULL;
        }
    }
    free(text);
    if (rc == 0 && w->nfile_decs) {
        qsort(w->file_decs, w->nfile_decs, sizeof *w->file_decs, dec_cmp);
        for (uint32_t i = 1; i < w->nfile_decs; i++)
            if (dec_cmp(&w->file_decs[i - 1], &w->file_decs[i]) == 0) {
                snprintf(err, sizeof err, "line %d: the same decision as line %d", w->file_decs[i].line,
                         w->file_decs[i - 1].line);
                rc = -EINVAL;
                break;
            }
    }
    if (rc < 0) {
        char msg[420];
        int n = snprintf(msg, sizeof msg, "reel sim: schedule %s: %s", in, err[0] ? err : strerror(-rc));
        reel_os_log(msg, n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        return rc;
    }
    for (uint32_t i = 0; i < w->nfile_faults; i++) {
        sim_ev ev = {.when_ns = w->file_faults[i].f.start_ns, .kind = EV_FAULT_FILE, .host = UINT32_MAX,
                     .fault = i};
        rc = sim_schedule(w, &ev);
        if (rc < 0)
            return rc;
    }
    return 1; /* running from a file */
}

void sim_fault_event(sim_world *w, sim_ev *ev)
{
    switch (ev->kind) {
    case EV_FAULT: {
        /* From a file the fault is still drawn (the draws stay the same)
         * but not applied: the file's faults are the run's faults. */
        int fam = ev->d;
        sim_fault f;
        if (draw_fault(w, fam, &f) && w->now_ns < w->quiet_at_ns && !w->from_file) {
            uint32_t index = w->nsched;
            sim_fault *e = sched_add(w, &f);
            if (e)
                fault_start(w, e, index);
        }
        if (w->from_file) {
            /* A file fault due now starts where the seeded run started its
             * fault: right after this draw, before anything else due now. */
            while (w->file_next < w->nfile_faults && w->file_faults[w->file_next].fired)
                w->file_next++;
            if (w->file_next < w->nfile_faults && w->file_faults[w->file_next].f.start_ns == w->now_ns)
                file_fault_fire(w, &w->file_faults[w->file_next]);
        }
        schedule_family(w, fam, w->now_ns);
        break;
    }
    case EV_FAULT_END:
        if (ev->fault < w->nsched)
            fault_end(w, ev->fault);
        break;
    case EV_QUIET:
        quiet(w);
        break;
    case EV_FAULT_FILE:
        if (ev->fault < w->nfile_faults)
            file_fault_fire(w, &w->file_faults[ev->fault]);
        break;
    case EV_FAULT_OVR:
        if (w->now_ns < w->quiet_at_ns)
            override_fault(w, ev->fault);
        break;
    }
}
