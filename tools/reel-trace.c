/* reel-trace — look at reel traces (include/reel/replay.h).
 *
 *   reel-trace dump FILE          one line per record, with the recording's clock
 *   reel-trace json FILE          JSON lines: the header, then one object per record
 *   reel-trace stats FILE         counts per operation, bytes, duration, callbacks
 *   reel-trace diff [-t] A B      the first record where two traces differ
 *                                 (-t: ignore clock values and poll timeouts)
 *   reel-trace perfetto FILE      Chrome/Perfetto trace-event JSON: callbacks, polls
 *                                 and I/O on a timeline (open in ui.perfetto.dev or
 *                                 chrome://tracing)
 *
 * Exit status: 0 fine (diff: identical), 1 diff found a difference, 2 the
 * trace is damaged or unreadable (what was readable is still printed). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../replay/trace.h"
#include "reel.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: reel-trace dump FILE\n"
            "       reel-trace json FILE\n"
            "       reel-trace stats FILE\n"
            "       reel-trace diff [-t] A B\n"
            "       reel-trace perfetto FILE > trace.json\n");
    return 2;
}

static reel_trace_reader *open_or_die(const char *path)
{
    reel_trace_reader *r;
    char err[512];
    if (reel_trace_open(&r, path, err, sizeof err) < 0) {
        fprintf(stderr, "reel-trace: %s\n", err);
        exit(2);
    }
    return r;
}

/* The end of a walk: report a damaged trace on stderr. */
static int finish(reel_trace_reader *r, int rc, const char *path)
{
    int status = 0;
    int sig = 0;
    if (rc < 0) {
        fprintf(stderr, "reel-trace: %s: %s\n", path, reel_trace_error(r));
        status = 2;
    } else if (reel_trace_unfinished(r, &sig)) {
        /* Not damage: the records are whole, the run just did not end. */
        fprintf(stderr, "reel-trace: %s: the recording did not finish after record %llu (%s%s)\n", path,
                (unsigned long long)reel_trace_records_read(r), sig ? "killed by " : "killed, crashed or still running",
                sig ? strsignal(sig) : "");
    }
    reel_trace_close(r);
    return status;
}

/* A growable line buffer for formatting records of any size. */
static char *line;
static size_t line_cap;

static const char *fmt(const reel_trace_record *rec, bool json)
{
    for (;;) {
        size_t want = json ? reel_trace_format_json(rec, line, line_cap) : reel_trace_format(rec, line, line_cap);
        if (want < line_cap)
            return line;
        line_cap = want + 256;
        line = realloc(line, line_cap);
        if (!line) {
            fprintf(stderr, "reel-trace: out of memory\n");
            exit(2);
        }
    }
}

/* The recording's clock as known at this record (NOW answers, poll and
 * callback times); 0 before the first. */
static uint64_t clock_at(const reel_trace_record *rec, uint64_t t)
{
    if (rec->op == REEL_TRACE_NOW)
        return (uint64_t)rec->result;
    if (rec->time_ns)
        return rec->op == REEL_TRACE_POLL ? rec->time_ns + (uint64_t)rec->arg[2] : rec->time_ns;
    return t;
}

static void print_info(const reel_trace_info *in, const char *path, FILE *out)
{
    fprintf(out, "# %s: reel trace v%u, backend %s, program %s (pid %d) on %s, started %" PRIu64 ".%09" PRIu64
                 " (wall clock)\n", path, in->version, in->backend, in->program[0] ? in->program : "?", in->pid,
            in->host[0] ? in->host : "?", in->start_realtime_ns / 1000000000u, in->start_realtime_ns % 1000000000u);
}

static int cmd_dump(const char *path)
{
    reel_trace_reader *r = open_or_die(path);
    const reel_trace_info *in = reel_trace_get_info(r);
    print_info(in, path, stdout);
    reel_trace_record rec;
    int rc;
    uint64_t t = in->start_monotonic_ns;
    while ((rc = reel_trace_next(r, &rec)) == 1) {
        if ((rec.op == REEL_TRACE_CALLBACK || rec.op == REEL_TRACE_POLL) && rec.time_ns)
            t = rec.time_ns;
        else
            t = clock_at(&rec, t); /* a callback without a time: the last clock value */
        double ms = (double)(int64_t)(t - in->start_monotonic_ns) / 1e6;
        printf("%12.3f ms  %s\n", ms, fmt(&rec, false));
        if (rec.op == REEL_TRACE_POLL)
            t = clock_at(&rec, t);
    }
    return finish(r, rc, path);
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static int cmd_json(const char *path)
{
    reel_trace_reader *r = open_or_die(path);
    const reel_trace_info *in = reel_trace_get_info(r);
    printf("{\"trace\":{\"version\":%u,\"flags\":%u,\"start_realtime_ns\":%" PRIu64 ",\"start_monotonic_ns\":%" PRIu64
           ",\"ops_mask\":%" PRIu64 ",\"pid\":%d,\"backend\":", in->version, in->flags, in->start_realtime_ns,
           in->start_monotonic_ns, in->ops_mask, in->pid);
    json_string(stdout, in->backend);
    printf(",\"program\":");
    json_string(stdout, in->program);
    printf(",\"host\":");
    json_string(stdout, in->host);
    printf("}}\n");
    reel_trace_record rec;
    int rc;
    while ((rc = reel_trace_next(r, &rec)) == 1)
        printf("%s\n", fmt(&rec, true));
    int status = finish(r, rc, path);
    if (status)
        printf("{\"error\":\"trace damaged\"}\n");
    return status;
}

/* ------------------------------------------------------------- stats */

static int cmd_stats(const char *path)
{
    reel_trace_reader *r = open_or_die(path);
    const reel_trace_info *in = reel_trace_get_info(r);
    uint64_t count[REEL_TRACE_OP_COUNT + 1] = {0}, errors[REEL_TRACE_OP_COUNT + 1] = {0};
    uint64_t events[8] = {0};
    uint64_t bytes_in = 0, bytes_out = 0, records = 0, callbacks = 0, sites = 0, polls_waited_ns = 0;
    uint64_t first_t = 0, last_t = 0, admitted = 0;
    uint64_t hash = REEL_CALLBACK_HASH_INIT, end_hash = 0, end_callbacks = 0;
    bool have_end = false, exited = false;
    reel_trace_record rec;
    int rc;
    uint64_t t = 0;
    while ((rc = reel_trace_next(r, &rec)) == 1) {
        records++;
        uint32_t op = rec.op < REEL_TRACE_OP_COUNT ? rec.op : REEL_TRACE_OP_COUNT;
        count[op]++;
        const rt_op_desc *d = rt_op(rec.op);
        if (d && (d->fields & RT_F_RESULT) && rec.result < 0 && rec.op != REEL_TRACE_NOW)
            errors[op]++;
        t = clock_at(&rec, t);
        if (t && !first_t)
            first_t = rec.op == REEL_TRACE_POLL ? rec.time_ns : t;
        if (t)
            last_t = t;
        switch (rec.op) {
        case REEL_TRACE_READ:
        case REEL_TRACE_READV:
        case REEL_TRACE_RECVFROM:
            bytes_in += rec.result > 0 ? (uint64_t)rec.result : 0;
            break;
        case REEL_TRACE_WRITE:
        case REEL_TRACE_WRITEV:
        case REEL_TRACE_SENDTO:
            /* the bytes written are in the callback hash (their CRC) */
            hash = reel_callback_hash_write(hash, (uint32_t)rec.arg[rec.op == REEL_TRACE_WRITE ? 1 : 2],
                                            rec.result > 0 ? (uint64_t)rec.result : 0);
            bytes_out += rec.result > 0 ? (uint64_t)rec.result : 0;
            break;
        case REEL_TRACE_SENDFILE:
            bytes_out += rec.result > 0 ? (uint64_t)rec.result : 0;
            break;
        case REEL_TRACE_EVENT:
            events[rec.arg[0] >= 0 && rec.arg[0] < 8 ? rec.arg[0] : 0]++;
            break;
        case REEL_TRACE_POLL:
            polls_waited_ns += rec.arg[2] > 0 ? (uint64_t)rec.arg[2] : 0;
            break;
        case REEL_TRACE_ADMIT:
            admitted += rec.result > 0 ? (uint64_t)rec.result : 0;
            break;
        case REEL_TRACE_CALLBACK:
            callbacks++;
            hash = reel_callback_hash_step(hash, rec.func);
            break;
        case REEL_TRACE_SITE:
            sites++;
            break;
        case REEL_TRACE_END:
        case REEL_TRACE_EXIT:
            have_end = true;
            exited = rec.op == REEL_TRACE_EXIT;
            end_callbacks = (uint64_t)rec.arg[0];
            end_hash = (uint64_t)rec.arg[1];
            break;
        default:
            break;
        }
    }
    uint64_t file_bytes = reel_trace_bytes_read(r);
    print_info(in, path, stdout);
    double span_s = last_t > first_t ? (double)(last_t - first_t) / 1e9 : 0;
    printf("records      %" PRIu64 " in %" PRIu64 " bytes (%.1f bytes/record)\n", records, file_bytes,
           records ? (double)file_bytes / (double)records : 0.0);
    printf("duration     %.6f s recorded, %.6f s of it waiting in poll\n", span_s, (double)polls_waited_ns / 1e9);
    printf("bytes        %" PRIu64 " in (read/received), %" PRIu64 " out (written/sent)\n", bytes_in, bytes_out);
    printf("callbacks    %" PRIu64 " from %" PRIu64 " sites, sequence hash %016" PRIx64 "\n", callbacks, sites, hash);
    int sig = 0;
    if (rc == 0 && reel_trace_unfinished(r, &sig))
        printf("end          none: the recording did not finish (%s%s)\n", sig ? "killed by " : "killed, crashed or still running",
               sig ? strsignal(sig) : "");
    if (have_end)
        printf("end          %s; recorded %" PRIu64 " callbacks, hash %016" PRIx64 " (%s)\n",
               exited ? "the process exited with the loop open" : "the loop was closed", end_callbacks, end_hash,
               end_hash == hash && end_callbacks == callbacks ? "matches" : "DIFFERS");
    printf("events       io %" PRIu64 ", wake %" PRIu64 ", signal %" PRIu64 ", child %" PRIu64 ", done %" PRIu64
           "; %" PRIu64 " threadsafe callbacks admitted\n",
           events[REEL_EV_IO], events[REEL_EV_WAKE], events[REEL_EV_SIGNAL], events[REEL_EV_CHILD],
           events[REEL_EV_DONE], admitted);
    printf("%-16s %10s %10s\n", "operation", "count", "errors");
    for (uint32_t op = 1; op <= REEL_TRACE_OP_COUNT; op++)
        if (count[op])
            printf("%-16s %10" PRIu64 " %10" PRIu64 "\n", op < REEL_TRACE_OP_COUNT ? reel_trace_op_name(op) : "unknown",
                   count[op], errors[op]);
    return finish(r, rc, path);
}

/* -------------------------------------------------------------- diff */

static bool same(const reel_trace_record *a, const reel_trace_record *b, bool ignore_time)
{
    if (a->op != b->op || a->fd != b->fd)
        return false;
    const rt_op_desc *d = rt_op(a->op);
    uint16_t annot = d ? d->annot : 0;
    if (a->op == REEL_TRACE_CALLBACK)
        return strcmp(a->func ? a->func : "", b->func ? b->func : "") == 0 && a->line == b->line &&
               strcmp(a->file ? a->file : "", b->file ? b->file : "") == 0;
    bool skip_result = ignore_time && a->op == REEL_TRACE_NOW;
    if (!skip_result && a->result != b->result)
        return false;
    for (int i = 0; i < 6; i++) {
        if (annot & rt_arg_bit(i))
            continue;
        if (ignore_time && a->op == REEL_TRACE_POLL && i == 1)
            continue; /* timeouts follow from the clock */
        if (a->arg[i] != b->arg[i])
            return false;
    }
    if (a->data_len != b->data_len || (a->data_len && memcmp(a->data, b->data, a->data_len)))
        return false;
    if (a->addr_len != b->addr_len || (a->addr_len && memcmp(a->addr, b->addr, a->addr_len)))
        return false;
    return true;
}

static int cmd_diff(int argc, char **argv)
{
    bool ignore_time = false;
    int i = 0;
    if (i < argc && strcmp(argv[i], "-t") == 0) {
        ignore_time = true;
        i++;
    }
    if (argc - i != 2)
        return usage();
    const char *pa = argv[i], *pb = argv[i + 1];
    reel_trace_reader *a = open_or_die(pa), *b = open_or_die(pb);
    reel_trace_record ra, rb;
    uint64_t n = 0;
    for (;;) {
        int ca = reel_trace_next(a, &ra);
        int cb = reel_trace_next(b, &rb);
        if (ca < 0 || cb < 0) {
            fprintf(stderr, "reel-trace: %s\n", ca < 0 ? reel_trace_error(a) : reel_trace_error(b));
            printf("traces agree on %" PRIu64 " records, then %s is damaged\n", n, ca < 0 ? pa : pb);
            reel_trace_close(a);
            reel_trace_close(b);
            return 2;
        }
        if (ca == 0 && cb == 0) {
            printf("traces are identical%s (%" PRIu64 " records)\n", ignore_time ? " apart from time" : "", n);
            reel_trace_close(a);
            reel_trace_close(b);
            return 0;
        }
        if (ca == 0 || cb == 0 || !same(&ra, &rb, ignore_time)) {
            printf("traces differ at record %" PRIu64 ":\n", n);
            printf("  %s: %s\n", pa, ca ? fmt(&ra, false) : "(ends)");
            printf("  %s: %s\n", pb, cb ? fmt(&rb, false) : "(ends)");
            reel_trace_close(a);
            reel_trace_close(b);
            return 1;
        }
        n++;
    }
}

/* ---------------------------------------------------------- perfetto */

enum { tid_loop = 1, tid_io = 2, tid_threads = 3 };

static bool first_event = true;

/* Copy src into dst as the inside of a JSON string. */
static void json_inner(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)src; *p && n + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            dst[n++] = '\\';
            dst[n++] = (char)*p;
        } else if (*p < 0x20 || *p >= 0x7f) {
            n += (size_t)snprintf(dst + n, cap - n, "\\u%04x", *p);
        } else {
            dst[n++] = (char)*p;
        }
    }
    dst[n] = '\0';
}

static void ev_begin(void)
{
    printf(first_event ? "\n" : ",\n");
    first_event = false;
}

static double us(uint64_t t, uint64_t base) { return (double)(int64_t)(t - base) / 1e3; }

static void slice(const char *name, const char *cat, int tid, double ts, double dur, const char *args)
{
    ev_begin();
    printf("{\"name\":");
    json_string(stdout, name);
    printf(",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":1,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f%s%s}", cat, tid, ts,
           dur > 0 ? dur : 0.001, args ? ",\"args\":" : "", args ? args : "");
}

static void instant(const char *name, const char *cat, int tid, double ts, const char *args)
{
    ev_begin();
    printf("{\"name\":");
    json_string(stdout, name);
    printf(",\"cat\":\"%s\",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":%d,\"ts\":%.3f%s%s}", cat, tid, ts,
           args ? ",\"args\":" : "", args ? args : "");
}

static void meta(const char *what, int tid, const char *name)
{
    ev_begin();
    printf("{\"name\":\"%s\",\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"args\":{\"name\":", what, tid);
    json_string(stdout, name);
    printf("}}");
}

static int cmd_perfetto(const char *path)
{
    reel_trace_reader *r = open_or_die(path);
    const reel_trace_info *in = reel_trace_get_info(r);
    uint64_t base = in->start_monotonic_ns;
    printf("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[");
    char pname[128];
    snprintf(pname, sizeof pname, "%s (pid %d, %s backend)", in->program[0] ? in->program : "reel", in->pid,
             in->backend);
    meta("process_name", 0, pname);
    meta("thread_name", tid_loop, "loop: callbacks and polls");
    meta("thread_name", tid_io, "backend calls");
    meta("thread_name", tid_threads, "threadsafe callbacks");

    /* A callback lasts until the next callback or poll starts. One without
     * a time of its own (today's recorder writes none; older traces have
     * one) starts at the last clock value recorded. */
    bool open_cb = false;
    uint64_t cb_start = 0;
    char cb_name[256], cb_args[512];
    uint64_t t = base, bytes_in = 0, bytes_out = 0;
    reel_trace_record rec;
    int rc;
    char args[1024], name[128];
    while ((rc = reel_trace_next(r, &rec)) == 1) {
        uint64_t stamp = rec.op == REEL_TRACE_CALLBACK || rec.op == REEL_TRACE_POLL ? rec.time_ns : 0;
        if (!stamp && rec.op == REEL_TRACE_CALLBACK)
            stamp = t;
        if (stamp && open_cb) {
            slice(cb_name, "callback", tid_loop, us(cb_start, base), us(stamp, base) - us(cb_start, base), cb_args);
            open_cb = false;
        }
        t = stamp ? stamp : clock_at(&rec, t);
        switch (rec.op) {
        case REEL_TRACE_CALLBACK:
            snprintf(cb_name, sizeof cb_name, "%s()", rec.func ? rec.func : "?");
            json_inner(name, sizeof name, rec.file ? rec.file : "?");
            snprintf(cb_args, sizeof cb_args, "{\"site\":\"%s:%d\",\"record\":%" PRIu64 "}", name, rec.line,
                     rec.index);
            cb_start = t;
            open_cb = true;
            break;
        case REEL_TRACE_POLL:
            snprintf(name, sizeof name, "poll (%" PRId64 " event%s)", rec.result, rec.result == 1 ? "" : "s");
            snprintf(args, sizeof args, "{\"timeout_ms\":%.3f,\"events\":%" PRId64 ",\"record\":%" PRIu64 "}",
                     (double)rec.arg[1] / 1e6, rec.result, rec.index);
            slice(name, "poll", tid_loop, us(rec.time_ns, base), (double)rec.arg[2] / 1e3, args);
            t = rec.time_ns + (uint64_t)rec.arg[2];
            break;
        case REEL_TRACE_EVENT:
            if (rec.arg[0] == REEL_EV_WAKE) {
                snprintf(args, sizeof args, "{\"posted\":%" PRId64 "}", rec.arg[4]);
                instant("wake", "thread", tid_threads, us(t, base), args);
            } else {
                char text[256], esc[512];
                reel_trace_format(&rec, text, sizeof text);
                const char *sp = strchr(text, ' ');
                json_inner(esc, sizeof esc, sp ? sp + 1 : text);
                snprintf(args, sizeof args, "{\"what\":\"%s\"}", esc);
                instant("ready", "event", tid_io, us(t, base), args);
            }
            break;
        case REEL_TRACE_ADMIT:
            snprintf(args, sizeof args, "{\"queued\":%" PRId64 ",\"admitted\":%" PRId64 "}", rec.arg[0], rec.result);
            instant("admit", "thread", tid_threads, us(t, base), args);
            break;
        case REEL_TRACE_NOW:
        case REEL_TRACE_SITE:
            break;
        case REEL_TRACE_END:
        case REEL_TRACE_EXIT:
            instant(rec.op == REEL_TRACE_END ? "loop closed" : "process exited", "loop", tid_loop, us(t, base), NULL);
            break;
        default: {
            const char *opname = reel_trace_op_name(rec.op);
            int64_t bytes = rec.result > 0 ? rec.result : 0;
            bool in_op = rec.op == REEL_TRACE_READ || rec.op == REEL_TRACE_READV || rec.op == REEL_TRACE_RECVFROM;
            bool out_op = rec.op == REEL_TRACE_WRITE || rec.op == REEL_TRACE_WRITEV || rec.op == REEL_TRACE_SENDTO;
            snprintf(args, sizeof args, "{\"fd\":%d,\"result\":%" PRId64 ",\"record\":%" PRIu64 "}", rec.fd, rec.result,
                     rec.index);
            if (rec.fd >= 0)
                snprintf(name, sizeof name, "%s fd %d", opname, rec.fd);
            else
                snprintf(name, sizeof name, "%s", opname);
            instant(name, "io", tid_io, us(t, base), args);
            if ((in_op || out_op) && bytes) {
                if (in_op)
                    bytes_in += (uint64_t)bytes;
                else
                    bytes_out += (uint64_t)bytes;
                ev_begin();
                printf("{\"name\":\"bytes\",\"ph\":\"C\",\"pid\":1,\"ts\":%.3f,\"args\":{\"in\":%" PRIu64
                       ",\"out\":%" PRIu64 "}}", us(t, base), bytes_in, bytes_out);
            }
            break;
        }
        }
    }
    if (open_cb)
        slice(cb_name, "callback", tid_loop, us(cb_start, base), us(t, base) - us(cb_start, base), cb_args);
    printf("\n]}\n");
    return finish(r, rc, path);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "dump") == 0 && argc == 3)
        return cmd_dump(argv[2]);
    if (strcmp(cmd, "json") == 0 && argc == 3)
        return cmd_json(argv[2]);
    if (strcmp(cmd, "stats") == 0 && argc == 3)
        return cmd_stats(argv[2]);
    if (strcmp(cmd, "perfetto") == 0 && argc == 3)
        return cmd_perfetto(argv[2]);
    if (strcmp(cmd, "diff") == 0)
        return cmd_diff(argc - 2, argv + 2);
    return usage();
}
