/* reel-simlog — turn a simulator log (REEL_SIM_LOG=path, or
 * reel_sim_config.log_path) into a timeline.
 *
 *   reel-simlog perfetto LOG > trace.json
 *       Chrome/Perfetto trace-event JSON (open in ui.perfetto.dev or
 *       chrome://tracing): a track per host and one for the world; faults
 *       with a duration (partition, clog, spike, crash until restart,
 *       pause, clock drift) as spans; instantaneous faults, crashes,
 *       restarts, connections, FIN and RST as instants; delivered stream
 *       segments (logged with log_deliveries / REEL_SIM_LOG_DELIVERIES=1)
 *       as flows from the sender's track to the receiver's.
 *
 *   reel-simlog perfetto LOG --schedule FILE > trace.json
 *       The same, plus the schedule file the run was driven by (or wrote:
 *       REEL_SIM_SCHEDULE / REEL_SIM_SCHEDULE_OUT) as a second process
 *       beside it, one track per host (the world's for partitions): each
 *       decision with dur= as a span, the others as instants, named by
 *       kind and host, the whole line in its args.
 *
 * The log is one line per event: "<seconds>.<nanoseconds> <host|-> <event>
 * key=value ...", with '#' comment lines (docs/simulator.md). Lines that do
 * not parse are reported on stderr with their number and skipped; the exit
 * status is then 1 (2 if the file cannot be read). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { hosts_max = 4096, line_bytes = 4096 };

static char *hosts[hosts_max];
static int nhosts;

/* Track id of a host name ("-": the world, track 0). */
static int track_of(const char *name)
{
    if (strcmp(name, "-") == 0)
        return 0;
    for (int i = 0; i < nhosts; i++)
        if (strcmp(hosts[i], name) == 0)
            return i + 1;
    if (nhosts == hosts_max)
        return 0;
    hosts[nhosts] = strdup(name);
    if (!hosts[nhosts])
        return 0;
    return ++nhosts;
}

/* The value of key=... in text (up to the next space), copied into out. */
static bool field(const char *text, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    for (const char *p = text; (p = strstr(p, key)); p += klen) {
        if ((p == text || p[-1] == ' ') && p[klen] == '=') {
            const char *v = p + klen + 1;
            size_t n = strcspn(v, " ");
            if (n >= cap)
                n = cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
    }
    return false;
}

/* "12.000345678" -> microseconds, as the trace-event format wants. */
static bool parse_time_us(const char *s, double *us)
{
    char *end;
    unsigned long long sec = strtoull(s, &end, 10);
    if (*end != '.' || strlen(end + 1) != 9)
        return false;
    unsigned long long ns = strtoull(end + 1, &end, 10);
    if (*end)
        return false;
    *us = (double)sec * 1e6 + (double)ns / 1e3;
    return true;
}

static bool first = true;

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s\n", first ? "" : ",");
    first = false;
    vprintf(fmt, ap);
    va_end(ap);
}

/* JSON string contents: the log is plain ASCII, but escape what matters. */
static void json_text(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 2 < cap; s++) {
        if (*s == '"' || *s == '\\')
            out[o++] = '\\';
        out[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    }
    out[o] = '\0';
}

/* The schedule file as process 2: "<seconds> <kind> <host|-> key=value...". */
static int schedule(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 2;
    }
    emit("{\"ph\":\"M\",\"pid\":2,\"name\":\"process_name\",\"args\":{\"name\":\"schedule\"}}");
    emit("{\"ph\":\"M\",\"pid\":2,\"tid\":0,\"name\":\"thread_name\",\"args\":{\"name\":\"world\"}}");
    bool named[hosts_max + 1] = {false};
    char buf[line_bytes];
    int lineno = 0, bad = 0;
    while (fgets(buf, sizeof buf, f)) {
        lineno++;
        buf[strcspn(buf, "\n")] = '\0';
        if (buf[0] == '#' || buf[0] == '\0')
            continue;
        char ts[32], kind[64], host[80], dur[32], text[line_bytes];
        char *end;
        if (sscanf(buf, "%31s %63s %79s", ts, kind, host) < 3 || strtod(ts, &end) < 0 || *end) {
            fprintf(stderr, "reel-simlog: %s:%d: not a schedule line, skipped\n", path, lineno);
            bad++;
            continue;
        }
        double us = strtod(ts, NULL) * 1e6;
        int tid = track_of(host);
        if (!named[tid] && tid) {
            named[tid] = true;
            emit("{\"ph\":\"M\",\"pid\":2,\"tid\":%d,\"name\":\"thread_name\",\"args\":{\"name\":\"%s\"}}",
                 tid, host);
        }
        json_text(buf, text, sizeof text);
        if (field(buf, "dur", dur, sizeof dur))
            emit("{\"ph\":\"X\",\"cat\":\"schedule\",\"name\":\"%s %s\",\"pid\":2,\"tid\":%d,\"ts\":%.3f,"
                 "\"dur\":%.3f,\"args\":{\"line\":\"%s\"}}",
                 kind, host, tid, us, atof(dur) * 1e6, text);
        else
            emit("{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"schedule\",\"name\":\"%s %s\",\"pid\":2,\"tid\":%d,"
                 "\"ts\":%.3f,\"args\":{\"line\":\"%s\"}}",
                 kind, host, tid, us, text);
    }
    fclose(f);
    return bad ? 1 : 0;
}

static int perfetto(const char *path, const char *sched)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 2;
    }
    printf("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[");
    emit("{\"ph\":\"M\",\"pid\":1,\"tid\":0,\"name\":\"thread_name\",\"args\":{\"name\":\"world\"}}");
    char buf[line_bytes];
    int lineno = 0, bad = 0;
    unsigned long long flow = 0;
    while (fgets(buf, sizeof buf, f)) {
        lineno++;
        buf[strcspn(buf, "\n")] = '\0';
        if (buf[0] == '#' || buf[0] == '\0') {
            const char *seed = strstr(buf, "seed ");
            if (seed && lineno == 1)
                emit("{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\",\"args\":{\"name\":\"reel sim, seed %llu\"}}",
                     strtoull(seed + 5, NULL, 10));
            continue;
        }
        char ts[32], host[80], event[64];
        int off = 0;
        double us;
        if (sscanf(buf, "%31s %79s %63s %n", ts, host, event, &off) < 3 || !parse_time_us(ts, &us)) {
            fprintf(stderr, "reel-simlog: %s:%d: not a simulator log line, skipped\n", path, lineno);
            bad++;
            continue;
        }
        const char *rest = off ? buf + off : "";
        int had = nhosts;
        int tid = track_of(host);
        if (nhosts > had)
            emit("{\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"name\":\"thread_name\",\"args\":{\"name\":\"%s\"}}",
                 tid, host);
        char text[line_bytes], id[32], kind[64], dur[32];
        json_text(rest, text, sizeof text);
        if (strcmp(event, "fault-start") == 0 && field(rest, "id", id, sizeof id) &&
            field(rest, "kind", kind, sizeof kind)) {
            emit("{\"ph\":\"b\",\"cat\":\"fault\",\"id\":%s,\"name\":\"%s %s\",\"pid\":1,\"tid\":%d,"
                 "\"ts\":%.3f,\"args\":{\"detail\":\"%s\"}}",
                 id, kind, host, tid, us, text);
        } else if (strcmp(event, "fault-end") == 0 && field(rest, "id", id, sizeof id) &&
                   field(rest, "kind", kind, sizeof kind)) {
            emit("{\"ph\":\"e\",\"cat\":\"fault\",\"id\":%s,\"name\":\"%s %s\",\"pid\":1,\"tid\":%d,"
                 "\"ts\":%.3f}",
                 id, kind, host, tid, us);
        } else if (strcmp(event, "pause") == 0 && field(rest, "dur", dur, sizeof dur)) {
            emit("{\"ph\":\"X\",\"cat\":\"fault\",\"name\":\"pause\",\"pid\":1,\"tid\":%d,\"ts\":%.3f,"
                 "\"dur\":%.3f}",
                 tid, us, atof(dur) * 1e6);
        } else if (strcmp(event, "deliver") == 0) {
            char from[80], sent[32];
            double sent_us;
            if (field(rest, "from", from, sizeof from) && field(rest, "sent", sent, sizeof sent) &&
                parse_time_us(sent, &sent_us)) {
                int had2 = nhosts;
                int src = track_of(from);
                if (nhosts > had2)
                    emit("{\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"name\":\"thread_name\",\"args\":{\"name\":\"%s\"}}",
                         src, from);
                flow++;
                emit("{\"ph\":\"X\",\"cat\":\"msg\",\"name\":\"send\",\"pid\":1,\"tid\":%d,\"ts\":%.3f,\"dur\":1}",
                     src, sent_us);
                emit("{\"ph\":\"s\",\"cat\":\"msg\",\"name\":\"segment\",\"id\":%llu,\"pid\":1,\"tid\":%d,\"ts\":%.3f}",
                     flow, src, sent_us);
                emit("{\"ph\":\"X\",\"cat\":\"msg\",\"name\":\"deliver\",\"pid\":1,\"tid\":%d,\"ts\":%.3f,"
                     "\"dur\":1,\"args\":{\"detail\":\"%s\"}}",
                     tid, us, text);
                emit("{\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"msg\",\"name\":\"segment\",\"id\":%llu,\"pid\":1,"
                     "\"tid\":%d,\"ts\":%.3f}",
                     flow, tid, us);
            }
        } else {
            emit("{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"sim\",\"name\":\"%s\",\"pid\":1,\"tid\":%d,\"ts\":%.3f,"
                 "\"args\":{\"detail\":\"%s\"}}",
                 event, tid, us, text);
        }
    }
    fclose(f);
    int rc = sched ? schedule(sched) : 0;
    printf("\n]}\n");
    return rc ? rc : bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "perfetto") == 0)
        return perfetto(argv[2], NULL);
    if (argc == 5 && strcmp(argv[1], "perfetto") == 0 && strcmp(argv[3], "--schedule") == 0)
        return perfetto(argv[2], argv[4]);
    fprintf(stderr, "usage: reel-simlog perfetto LOG [--schedule FILE] > trace.json\n");
    return 2;
}
