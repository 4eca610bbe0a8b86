/* tests/helpers/stream_helpers.c — see stream_helpers.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>

#include "helpers.h"
#include "helpers/stream_helpers.h"
#include "helpers/task_helpers.h"

char st_failure[512];

void st_reset(void) { st_failure[0] = '\0'; }

void st_fail(const char *file, int line, const char *what)
{
    if (st_failure[0] == '\0')
        snprintf(st_failure, sizeof st_failure, "%s:%d: check failed: %s", file, line, what);
}

void st_assert_clean(void)
{
    if (st_failure[0] != '\0')
        fail_msg("%s", st_failure);
}

int st_run(reel_loop *loop, reel_task_fn fn, void *arg)
{
    int rc = tt_run_task(loop, fn, arg, NULL);
    st_assert_clean();
    return rc;
}

void st_on_epoll(st_scenario_fn sc)
{
    st_reset();
    reel_loop *loop = th_loop_new();
    sc(loop);
    th_loop_free(loop);
    st_assert_clean();
}

void st_on_sim(st_scenario_fn sc, const char *name)
{
    st_reset();
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = reel_sim_seed_from_env(1);
    reel_sim *sim;
    assert_int_equal(reel_sim_new(&sim, &cfg), 0);
    reel_sim_host *h;
    assert_int_equal(reel_sim_host_new(sim, "a", "10.0.0.1", &h), 0);
    sc(reel_sim_host_loop(h));
    if (st_failure[0] != '\0') {
        char line[256];
        reel_sim_repro(sim, name, line, sizeof line);
        print_message("%s\n", line);
    }
    reel_sim_free(sim);
    st_assert_clean();
}

int st_h_read_when_told(reel_stream *s, void *arg)
{
    st_flow *fl = arg;
    int rc = reel_await(fl->go, NULL);
    if (rc < 0)
        return rc;
    reel_bytes b = REEL_BYTES_INIT;
    rc = reel_stream_read(s, -1, &b);
    fl->got = b.len;
    reel_bytes_free(&b);
    reel_stream_close(s);
    return rc;
}

int st_t_drainer(void *arg, void **result)
{
    (void)result;
    st_flow *fl = arg;
    int rc = reel_stream_drain(fl->s);
    if (rc == 0)
        fl->drained++;
    return rc;
}
