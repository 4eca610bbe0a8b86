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

static bool on_side_a(const sim_fault *f, uint32_t id) { return (f->side_a >> (id & 63)) & 1; }

static void partition_apply(sim_world *w, const sim_fault *f, bool cut)
{
    for (uint32_t i = 0; i < w->nhosts; i++) {
        sim_host *x = w->hosts[i];
        if (x->protect || !on_side_a(f, x->id))
            continue;
        for (uint32_t j = 0; j < w->nhosts; j++) {
            sim_host *y = w->hosts[j];
            if (y->protect || on_side_a(f, y->id))
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
            if (h->protect || on_side_a(f, h->id) != (side == 0))
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
        return true;
    }
    case FAM_CLOG:
    case FAM_SPIKE: {
        sim_host *a = pick_host(w, false), *b = pick_host(w, false);
        f->dur_ns = draw_log(r, 10 * MS, 2000 * MS);
        f->arg = (int64_t)draw_log(r, 5 * MS, 500 * MS);
        f->kind = fam == FAM_CLOG ? FK_CLOG : FK_SPIKE;
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

static void fault_start(sim_world *w, sim_fault *f, uint32_t index)
{
    sim_host *a = w->hosts[f->a], *b = w->hosts[f->b];
    uint64_t end = f->start_ns + f->dur_ns;
    if (end > w->quiet_at_ns)
        end = w->quiet_at_ns;
    double dur_s = (double)(end - f->start_ns) / 1e9;
    char sides[512];
    switch (f->kind) {
    case FK_PARTITION:
        describe_sides(w, f, sides, sizeof sides);
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

void sim_fault_event(sim_world *w, sim_ev *ev)
{
    switch (ev->kind) {
    case EV_FAULT: {
        int fam = ev->d;
        sim_fault f;
        if (draw_fault(w, fam, &f) && w->now_ns < w->quiet_at_ns) {
            uint32_t index = w->nsched;
            sim_fault *e = sched_add(w, &f);
            if (e)
                fault_start(w, e, index);
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
    }
}
