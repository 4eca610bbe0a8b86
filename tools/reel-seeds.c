/* reel-seeds — run one scenario over many seeds.
 *
 *   reel-seeds [options] -- COMMAND [ARGS...]
 *
 * Runs COMMAND once per seed with REEL_SEED=<seed> in its environment, in
 * parallel, and lists the seeds that failed (non-zero exit, a signal, or a
 * timeout) with the line that reruns each one exactly. Exit status: 0 if
 * every seed passed, 1 if any failed, 2 on a usage error.
 *
 * Options:
 *   --seeds A..B     seeds A to B inclusive (default 1..100)
 *   --count N        seeds 1..N
 *   --jobs J         parallel runs (default: number of CPUs)
 *   --shard K/N      run only this shard of the seeds (K in 1..N): seed s
 *                    belongs to shard ((s - first) % N) + 1, so CI matrix
 *                    jobs split one sweep without overlap
 *   --timeout SEC    a run taking longer is killed and counts as failed (default 300)
 *   --quiet          no progress line
 *   --log DIR        keep each failing run's output in DIR/seed-<s>.log
 *                    (created if missing; an error if it cannot be)
 *   --show N         without --log, print the output of the first N failing
 *                    runs (default 3; 0 prints none)
 * Passing runs' output is dropped. Seeds are 0 .. 2^64-1; a bad argument
 * is reported by name with exit status 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { jobs_max = 256, failures_listed_max = 1000 };

typedef struct job {
    pid_t pid;
    uint64_t seed;
    double started;
    char out_path[256];
} job;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char usage_text[] =
    "usage: reel-seeds [--seeds A..B | --count N] [--jobs J] [--shard K/N]\n"
    "                  [--timeout SEC] [--quiet] [--log DIR] [--show N] -- COMMAND [ARGS...]\n";

/* A bad argument: say which and why, then the usage, and exit 2. */
static void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "reel-seeds: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage_text);
    exit(2);
}

/* A decimal 0 .. 2^64-1: digits only (strtoull would take "-1" as 2^64-1). */
static bool parse_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* How many of first..last belong to shard k of n; false if that does not
 * fit in 64 bits (only 0..2^64-1 unsharded). */
static bool shard_total(uint64_t first, uint64_t last, uint64_t k, uint64_t n, uint64_t *total)
{
    uint64_t span = last - first;   /* seeds - 1 */
    if (span < k - 1) {
        *total = 0;
        return true;
    }
    uint64_t t = (span - (k - 1)) / n;
    if (t == UINT64_MAX)
        return false;
    *total = t + 1;
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void dump_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stderr);
    fclose(f);
}

int main(int argc, char **argv)
{
    uint64_t first = 1, last = 100, shard_k = 1, shard_n = 1;
    long jobs = sysconf(_SC_NPROCESSORS_ONLN);
    double timeout_s = 300;
    bool quiet = false;
    const char *logdir = NULL;
    int i = 1;
    uint64_t show = 3;
    for (; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (strcmp(a, "--seeds") == 0 && has_value) {
            const char *v = argv[++i];
            char *dots = strstr(argv[i], "..");
            if (!dots)
                usage_error("--seeds %s: expected A..B", v);
            *dots = '\0';
            if (!parse_u64(argv[i], &first) || !parse_u64(dots + 2, &last)) {
                *dots = '.';
                usage_error("--seeds %s: A and B must be numbers 0..18446744073709551615", v);
            }
            if (last < first) {
                *dots = '.';
                usage_error("--seeds %s: B is smaller than A", v);
            }
        } else if (strcmp(a, "--count") == 0 && has_value) {
            if (!parse_u64(argv[++i], &last) || last == 0)
                usage_error("--count %s: expected a number 1..18446744073709551615", argv[i]);
            first = 1;
        } else if (strcmp(a, "--jobs") == 0 && has_value) {
            uint64_t j;
            if (!parse_u64(argv[++i], &j) || j == 0 || j > jobs_max)
                usage_error("--jobs %s: expected a number 1..256", argv[i]);
            jobs = (long)j;
        } else if (strcmp(a, "--shard") == 0 && has_value) {
            const char *v = argv[++i];
            char *slash = strchr(argv[i], '/');
            if (!slash)
                usage_error("--shard %s: expected K/N", v);
            *slash = '\0';
            bool ok = parse_u64(argv[i], &shard_k) && parse_u64(slash + 1, &shard_n) &&
                      shard_n != 0 && shard_k != 0 && shard_k <= shard_n;
            *slash = '/';
            if (!ok)
                usage_error("--shard %s: expected K/N with 1 <= K <= N", v);
        } else if (strcmp(a, "--timeout") == 0 && has_value) {
            char *end;
            timeout_s = strtod(argv[++i], &end);
            if (end == argv[i] || *end || !(timeout_s > 0) || timeout_s > 1e9)
                usage_error("--timeout %s: expected seconds > 0", argv[i]);
        } else if (strcmp(a, "--show") == 0 && has_value) {
            if (!parse_u64(argv[++i], &show))
                usage_error("--show %s: expected a number of failing runs (0 or more)", argv[i]);
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "--log") == 0 && has_value) {
            logdir = argv[++i];
        } else if (strncmp(a, "--", 2) == 0 && !has_value &&
                   (!strcmp(a, "--seeds") || !strcmp(a, "--count") || !strcmp(a, "--jobs") ||
                    !strcmp(a, "--shard") || !strcmp(a, "--timeout") || !strcmp(a, "--show") ||
                    !strcmp(a, "--log"))) {
            usage_error("%s: needs a value", a);
        } else {
            usage_error("%s: unknown option (the command goes after --)", a);
        }
    }
    if (i >= argc)
        usage_error("%s", "no command: give it after --");
    char **cmd = argv + i;
    if (jobs < 1)
        jobs = 1;
    if (jobs > jobs_max)
        jobs = jobs_max;
    if (logdir) {
        struct stat st;
        if (mkdir(logdir, 0777) != 0 && !(errno == EEXIST && stat(logdir, &st) == 0 && S_ISDIR(st.st_mode))) {
            fprintf(stderr, "reel-seeds: --log %s: cannot create the directory: %s\n", logdir,
                    strerror(errno == EEXIST ? ENOTDIR : errno));
            return 2;
        }
    }

    uint64_t total;
    if (!shard_total(first, last, shard_k, shard_n, &total)) {
        fprintf(stderr, "reel-seeds: %llu..%llu is 2^64 seeds, one more than can be counted\n",
                (unsigned long long)first, (unsigned long long)last);
        return 2;
    }

    job running[jobs_max];
    int nrunning = 0;
    /* The shard's seeds are first+k-1, then every n-th; `launched` counts
     * them so the walk never wraps past 2^64-1. */
    uint64_t next = first + (shard_k - 1), launched = 0, done = 0, failed_count = 0;
    uint64_t *failed = calloc(failures_listed_max, sizeof *failed);
    double t0 = now_s();
    char tmpdir[] = "/tmp/reel-seeds-XXXXXX";
    if (!mkdtemp(tmpdir)) {
        perror("reel-seeds: mkdtemp");
        return 2;
    }
    bool tty = isatty(STDERR_FILENO);
    /* Wait for children with sigtimedwait on a blocked SIGCHLD: a run that
     * ends wakes us at once (short runs are the common case), and the
     * time-out still lets us enforce --timeout. */
    sigset_t chld, oldmask;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &oldmask);

    while (done < total) {
        while (nrunning < jobs && launched < total) {
            uint64_t s = next;
            if (++launched < total)
                next += shard_n;
            job *j = &running[nrunning];
            j->seed = s;
            snprintf(j->out_path, sizeof j->out_path, "%s/seed-%llu.log", tmpdir, (unsigned long long)s);
            pid_t pid = fork();
            if (pid < 0) {
                perror("reel-seeds: fork");
                return 2;
            }
            if (pid == 0) {
                char seedbuf[32];
                snprintf(seedbuf, sizeof seedbuf, "%llu", (unsigned long long)s);
                setenv("REEL_SEED", seedbuf, 1);
                int fd = open(j->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd >= 0) {
                    dup2(fd, STDOUT_FILENO);
                    dup2(fd, STDERR_FILENO);
                    close(fd);
                }
                setpgid(0, 0);
                sigprocmask(SIG_SETMASK, &oldmask, NULL);
                execvp(cmd[0], cmd);
                fprintf(stderr, "reel-seeds: cannot run %s: %s\n", cmd[0], strerror(errno));
                _exit(127);
            }
            j->pid = pid;
            j->started = now_s();
            nrunning++;
        }
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid == 0) {
            /* Nothing finished: enforce timeouts, then wait for a child
             * to end (or 50 ms). */
            double t = now_s();
            for (int k = 0; k < nrunning; k++)
                if (t - running[k].started > timeout_s)
                    kill(-running[k].pid, SIGKILL);
            struct timespec ts = {0, 50 * 1000 * 1000};
            sigtimedwait(&chld, NULL, &ts);
            continue;
        }
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            perror("reel-seeds: waitpid");
            return 2;
        }
        int k = 0;
        while (k < nrunning && running[k].pid != pid)
            k++;
        if (k == nrunning)
            continue;
        job j = running[k];
        running[k] = running[--nrunning];
        done++;
        bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok) {
            if (failed_count < failures_listed_max)
                failed[failed_count] = j.seed;
            failed_count++;
            if (tty && !quiet)
                fprintf(stderr, "\r\033[K");
            if (WIFSIGNALED(status))
                fprintf(stderr, "seed %llu: killed by signal %d%s\n", (unsigned long long)j.seed,
                        WTERMSIG(status), WTERMSIG(status) == SIGKILL ? " (timeout?)" : "");
            else
                fprintf(stderr, "seed %llu: exit status %d\n", (unsigned long long)j.seed,
                        WEXITSTATUS(status));
            if (logdir) {
                char dst[512];
                snprintf(dst, sizeof dst, "%s/seed-%llu.log", logdir, (unsigned long long)j.seed);
                if (rename(j.out_path, dst) != 0)
                    dump_file(j.out_path);
            } else if (failed_count <= show) {
                dump_file(j.out_path); /* the first --show failures' output */
            }
        }
        unlink(j.out_path);
        if (!quiet) {
            double el = now_s() - t0;
            fprintf(stderr, "%s[%llu/%llu] %llu failed, %.1f s elapsed, %.1f seeds/s%s",
                    tty ? "\r\033[K" : "", (unsigned long long)done, (unsigned long long)total,
                    (unsigned long long)failed_count, el, el > 0 ? (double)done / el : 0.0,
                    tty ? "" : "\n");
        }
    }
    rmdir(tmpdir);
    if (!quiet && tty)
        fprintf(stderr, "\n");
    printf("reel-seeds: %llu seeds (shard %llu/%llu of %llu..%llu), %llu passed, %llu failed\n",
           (unsigned long long)total, (unsigned long long)shard_k, (unsigned long long)shard_n,
           (unsigned long long)first, (unsigned long long)last,
           (unsigned long long)(total - failed_count), (unsigned long long)failed_count);
    if (failed_count) {
        uint64_t listed = failed_count < failures_listed_max ? failed_count : failures_listed_max;
        qsort(failed, listed, sizeof *failed, cmp_u64);
        printf("failing seeds:");
        for (uint64_t k = 0; k < failed_count && k < failures_listed_max; k++)
            printf(" %llu", (unsigned long long)failed[k]);
        printf("\nrerun one with: REEL_SEED=%llu", (unsigned long long)failed[0]);
        for (char **c = cmd; *c; c++)
            printf(" %s", *c);
        printf("\nand see what its world did: REEL_SEED=%llu REEL_SIM_LOG=seed-%llu.log",
               (unsigned long long)failed[0], (unsigned long long)failed[0]);
        for (char **c = cmd; *c; c++)
            printf(" %s", *c);
        printf("\n  (build/reel-simlog perfetto seed-%llu.log > trace.json for a timeline)\n",
               (unsigned long long)failed[0]);
    }
    free(failed);
    return failed_count ? 1 : 0;
}
