/* replay/trace.h — the trace format's private side: limits, the record
 * codec, the streaming writer, CRC32C, and the table that says, for each
 * operation, which fields it uses and which of them are the call's inputs
 * (compared in replay) rather than its answer.
 *
 * File layout (all integers little-endian):
 *
 *   header (rt_header_bytes, self-sized by header_bytes):
 *     0  magic "REELTRCE"      8  u16 version      10 u16 header_bytes
 *     12 u32 flags             16 u64 start_realtime_ns
 *     24 u64 start_monotonic_ns                     32 u64 ops_mask
 *     40 i32 pid               44 u32 reserved     48 char backend[32]
 *     80 char program[32]      112 char host[64]   176 u64 layout word (v3)
 *     184..188 reserved
 *     header_bytes-4: u32 CRC32C of every byte before it
 *
 *   blocks, on 8-byte offsets of the block stream, each:
 *     0 u32 magic "RBLK"   4 u32 state (bit 0 RT_BLOCK_SEALED: another
 *     block follows)       8 u64 first_record      16 u32 payload_bytes
 *     20 u32 CRC32C(bytes 8..16 ++ payload[0, n)), n = payload_bytes for
 *     every block but (version 4) the last, unsealed one (below)
 *     payload: records, counted by decoding them
 *
 *   record:
 *     u8 op, varint field mask (RT_F_*), then the present fields in mask
 *     order: fd, result, a0, a1, data, time, a2, addr, a3, a4, a5.
 *     Integers are zigzag varints; data and addr are varint length + bytes.
 *     NOW results and times are deltas from the previous one in the same
 *     block (blocks decode on their own, apart from SITE names).
 *
 * Version 2 layout differences, for crash safety:
 *   header: 44 u32 signal word: u16 the fatal signal that ended the
 *     recording (0: none), u16 its complement; written by a signal handler
 *     after the header, so the header CRC takes it as 0.
 *   blocks start on 8-byte file offsets:
 *     0 u32 magic "RBLK"   4 u32 state (bit 0 RT_BLOCK_SEALED: another
 *     block follows)       8 u64 first_record      16 u32 payload_bytes
 *     20 u32 CRC32C(bytes 8..16 ++ payload)
 *     then payload_bytes of records (counted by decoding them).
 *
 * Version 3 adds a ring, for crash safety at the cost of a copy:
 *   header: 176 u64 layout word: u32 blocks_off (file offset of the block
 *     stream), u16 ring_bytes / 4096 (0: no ring), u16 check (low 16 bits
 *     of the CRC32C of the first 6 bytes). Stored with one 8-byte store;
 *     the header CRC takes it as 0, like the signal word. The ring, when
 *     there is one, is the ring_bytes after the header (at header_bytes).
 *     Version 2 traces read as blocks_off = header_bytes and no ring.
 *
 * Version 4 commits a record by its length alone; the CRC catches up at
 * checkpoints (rt_writer_checkpoint: the recorder's, before each poll; a
 * block's seal; the end; a buffered block's write; and a record with
 * rt_put_data_min or more bytes of data, whose data is checksummed from
 * its source as it is copied in, rt_writer_put_data): one CRC pass over a
 * loop iteration's records instead of one per record, the largest part
 * of what recording cost the loop thread. Where the CRC is extended does
 * not change its value (it always covers the payload in order). A sealed block's CRC covers its
 * whole payload, as in version 3. The last, unsealed block's CRC covers
 * its payload up to the last checkpoint, a record boundary: a reader
 * whose CRC over the whole payload does not match finds that boundary
 * (the first whose running CRC matches; none: damage) and returns the
 * records after it on their committed length alone; an END or EXIT
 * record there is damage (a clean end checkpoints). So a killed
 * recording keeps every completed call, as before, and its last records
 * — at most one loop iteration's, within one block — are checked only by
 * their encoding. Version 3 blocks must match over their whole payload.
 *
 * Crash safety. A regular file is recorded through a ring: a shared
 * mapping of the file's first header_bytes + rt_ring_bytes, reused in
 * place, so its pages stay in the page cache and cost nothing after the
 * first lap. Each record is encoded into the ring and committed by one
 * 8-byte store of its block's (payload_bytes, CRC) (rt_writer_append;
 * version 4: the CRC as of the last checkpoint): the
 * page cache holds every committed record the moment it is committed, and
 * a killed process (SIGKILL included) loses only the record it was in the
 * middle of. A new block is started (all fields, the magic last) before
 * the previous one is marked sealed. The block stream is the same as in a
 * file without a ring; block k sits at stream offset L(k) (8-aligned, the
 * first at 0) and at ring position P(k): P(0) = 0, P(k+1) = P(k) +
 * align8(24 + payload_bytes(k)), or 0 when that leaves less than
 * rt_ring_room_bytes before the ring's end (rt_ring_next). A flusher
 * thread copies sealed blocks from the ring to blocks_off + L(k) with
 * pwrite(2); the recording thread does not start a block where the ring
 * still holds one the flusher has not copied.
 *
 * A reader takes each block from blocks_off + L(k) when it is whole there
 * and from the ring at P(k) otherwise (the flusher had not copied it yet,
 * or was killed in the middle). A block is trusted only with its magic,
 * its first_record equal to the index the reader expects, and a matching
 * CRC: a ring slot that holds a block of an earlier lap, or one torn by a
 * kill while it was being started, is never taken for the block expected.
 * A reader trusts sealed blocks, which must be followed by another; and
 * the last, unsealed block up to its committed length. A trace whose last
 * block holds no end record is "unfinished" (reel_trace_unfinished), not
 * damaged. Anything else that is not a whole block with a matching CRC is
 * damage.
 *
 * A clean end (rt_writer_end) writes the last block and drops the ring
 * from the layout word: a recording whose ring never wrapped is the ring's
 * first lap, so the file is cut there and its blocks start at
 * header_bytes (the same bytes as a file without a ring); a longer one
 * keeps blocks_off and has the ring's range punched out (a hole).
 *
 * Other files (pipes, terminals) get the same format written with write(2)
 * one block at a time: when full, before the loop blocks after
 * RT_FLUSH_INTERVAL_NS without a flush, at close, and from a fatal-signal
 * handler (pwrite of the committed block, async-signal-safe); there a
 * SIGKILL loses the block being filled.
 */
#ifndef REEL_REPLAY_TRACE_H
#define REEL_REPLAY_TRACE_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "reel/replay.h"

/* Limits, with their units in their names. */
enum {
    rt_header_bytes = 192,               /* header written by this version */
    rt_header_bytes_max = 4096,          /* largest header a reader accepts */
    rt_block_header_bytes = 24,
    rt_block_target_bytes = 64 * 1024,   /* a block is flushed once this full */
    rt_data_bytes_max = 256 * 1024,      /* bytes in one record's data field */
    rt_addr_bytes_max = 128,             /* sizeof(struct sockaddr_storage) */
    rt_record_fixed_bytes_max = 128,     /* op + mask + 11 varints, rounded up */
    rt_record_bytes_max = rt_record_fixed_bytes_max + rt_data_bytes_max + 5 + rt_addr_bytes_max + 5,
    rt_block_bytes_max = rt_block_target_bytes + rt_record_bytes_max, /* payload */
    rt_write_preview_bytes = 16,         /* bytes of written data kept for reports */
    rt_sites_max = 16384,                /* distinct callback sites per trace */
    rt_site_text_bytes = 512,            /* func + file of one site */
    rt_iov_max = 64,                     /* iovecs of one recorded readv */
    rt_header_signal_at = 44,            /* header offset of the signal word */
    rt_header_layout_at = 176,           /* header offset of the layout word (version 3) */
    rt_ring_bytes = 4 * 1024 * 1024,     /* the ring a regular file is recorded through */
    rt_ring_bytes_max = 64 * 1024 * 1024,/* largest ring a reader accepts */
    /* room a ring position must leave for a block to start there */
    rt_ring_room_bytes = rt_block_header_bytes + rt_block_bytes_max + 8,
};

/* The ring position of the block after one of `block_bytes` (header and
 * payload) at `pos`, in a ring of `ring_bytes` (trace.h, "Crash safety"). */
static inline uint64_t rt_ring_next(uint64_t pos, uint64_t block_bytes, uint64_t ring_bytes)
{
    uint64_t next = pos + ((block_bytes + 7) & ~(uint64_t)7);
    return next + rt_ring_room_bytes > ring_bytes ? 0 : next;
}

/* The header's layout word (version 3): where the block stream starts and
 * how big the ring is, with a check of its own (the header CRC does not
 * cover it). decode returns false for a damaged word. */
uint64_t rt_layout_word(uint32_t blocks_off, uint32_t ring_bytes);
bool rt_layout_decode(uint64_t word, uint32_t *blocks_off, uint32_t *ring_bytes);
#define RT_BLOCK_SEALED 1u
/* The header's signal word: the signal number and its complement, so a
 * damaged word is told from a signal (the header CRC does not cover it). */
static inline uint32_t rt_signal_word(int signo)
{
    uint32_t v = (uint32_t)signo & 0xffff;
    return v | (~v & 0xffff) << 16;
}
#define RT_FLUSH_INTERVAL_NS 100000000ull   /* flush before blocking if older */

#define RT_MAGIC "REELTRCE"
#define RT_BLOCK_MAGIC 0x4b4c4252u          /* "RBLK" little-endian */

/* Field bits of a record's mask, in encoding order. */
enum {
    RT_F_FD = 1u << 0,
    RT_F_RESULT = 1u << 1,
    RT_F_A0 = 1u << 2,
    RT_F_A1 = 1u << 3,
    RT_F_DATA = 1u << 4,
    RT_F_TIME = 1u << 5,
    RT_F_A2 = 1u << 6,
    RT_F_ADDR = 1u << 7,
    RT_F_A3 = 1u << 8,
    RT_F_A4 = 1u << 9,
    RT_F_A5 = 1u << 10,
    RT_F_ALL = (1u << 11) - 1,
};
static inline uint32_t rt_arg_bit(int i)
{
    static const uint32_t bits[6] = {RT_F_A0, RT_F_A1, RT_F_A2, RT_F_A3, RT_F_A4, RT_F_A5};
    return bits[i];
}

/* How an op's data field reads. */
enum {
    RT_D_NONE = 0,
    RT_D_BYTES,    /* answer bytes (read, received, random, option value) */
    RT_D_PREVIEW,  /* the first bytes the program wrote (not compared: the crc is) */
    RT_D_TEXT,     /* NUL-separated strings given by the program (compared) */
    RT_D_ANSWER,   /* an encoded request answer (DONE events) */
};

typedef struct rt_op_desc {
    const char *name;
    uint16_t fields;     /* RT_F_* the op uses */
    uint16_t inputs;     /* of those, the call's arguments: compared in replay */
    uint16_t annot;      /* recorder annotations: never compared (timing) */
    uint8_t data;        /* RT_D_* */
    const char *arg[6];  /* names of a0..a5 */
    const char *fd_name; /* name of the fd field ("fd", "out", "fd0") */
} rt_op_desc;

/* The descriptor of `op`, or NULL for an unknown op. */
const rt_op_desc *rt_op(uint32_t op);

/* Backend ops, in ops_mask bit order (append only: part of the format). */
extern const size_t rt_ops_offsets[];
extern const size_t rt_ops_count;
uint64_t rt_ops_mask_of(const reel_backend_ops *ops);

/* CRC32C (Castagnoli), hardware-assisted where the CPU has it. Start with
 * crc = 0; feed pieces by passing the previous value. */
uint32_t rt_crc32c(uint32_t crc, const void *data, size_t len);
/* The table-driven version alone (what CPUs without the instruction use). */
uint32_t rt_crc32c_portable(uint32_t crc, const void *data, size_t len);

/* Varints (LEB128) and zigzag. put returns bytes written (<= 10); get
 * returns bytes read, or 0 if malformed or past end. */
size_t rt_put_varint(uint8_t *p, uint64_t v);
size_t rt_get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v);
static inline uint64_t rt_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t rt_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* memcpy that allows (NULL, 0), which recorded empty fields are. */
static inline void rt_copy(void *dst, const void *src, size_t n)
{
    if (n)
        __builtin_memcpy(dst, src, n);
}

/* Little-endian fixed-width helpers. */
static inline void rt_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void rt_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void rt_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t rt_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t rt_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static inline uint64_t rt_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Delta state of the codec, reset at each block. */
typedef struct rt_delta {
    uint64_t prev_now;
    uint64_t prev_time;
} rt_delta;

/* Encode rec at p (room for rt_record_bytes_max); returns bytes written.
 * The caller checks data/addr against the limits first. */
size_t rt_encode(uint8_t *p, const reel_trace_record *rec, rt_delta *d);
/* Decode one record from [p, end): returns bytes consumed, or 0 and a
 * reason in *why. rec->data/addr point into the buffer. */
size_t rt_decode(const uint8_t *p, const uint8_t *end, reel_trace_record *rec, rt_delta *d,
                 const char **why);

/* Encode / decode the header. */
void rt_header_encode(uint8_t out[rt_header_bytes], const reel_trace_info *info);

/* ---- the streaming writer ---- */
typedef struct rt_writer rt_writer;

/* Create `path` (truncating) and write the header. */
int rt_writer_open(rt_writer **out, const char *path, const reel_trace_info *info);
/* Append one record; completes and writes the block first when the record
 * would not fit. -EMSGSIZE if data/addr exceed the limits; -EPIPE after
 * rt_writer_end of a mapped writer; a write error is returned and sticky. */
int rt_writer_append(rt_writer *w, const reel_trace_record *rec);
/* Fast paths for the records a busy loop writes most (defined inline at
 * the end of this header): the same bytes as rt_writer_append of the
 * record with these fields (every other field 0, fd -1 where there is
 * none), and the same errors. */
static inline int rt_writer_now(rt_writer *w, uint64_t now);                        /* NOW */
static inline int rt_writer_callback(rt_writer *w, uint32_t site, uint64_t time_ns); /* CALLBACK */
/* READ / WRITE and other ops with only fd, a0, a1, result and data. */
static inline int rt_writer_io(rt_writer *w, uint32_t op, int fd, int64_t a0, int64_t a1, int64_t result,
                               const void *data, uint32_t data_len);
/* POLL: max_events, timeout_ns, waited_ns, result n, time (once per loop
 * iteration; the generic encoder was ~260 instructions of it). */
static inline int rt_writer_poll(rt_writer *w, int64_t max_events, int64_t timeout_ns, int64_t waited_ns,
                                 int64_t n, uint64_t time_ns);
/* EVENT without result or data (every kind but a DONE answer). */
static inline int rt_writer_event(rt_writer *w, int64_t kind, int64_t events, int64_t id, int64_t value,
                                  int64_t a4);
/* Extend the block's CRC over the records appended since the last
 * checkpoint (version 4: records are committed by length alone; the
 * recorder checkpoints before each poll). */
void rt_writer_checkpoint(rt_writer *w);
/* Buffered: write the block being filled, if any. Mapped (the ring):
 * nothing to do (committed records are in the page cache). */
int rt_writer_flush(rt_writer *w);
/* After the last record (END / EXIT): flush; a ring-recorded file gets its
 * last block written and the ring dropped from its layout (trace.h,
 * "Crash safety"). Idempotent. */
int rt_writer_end(rt_writer *w);
/* True if the writer writes through a shared mapping of a ring (crash-safe
 * against SIGKILL), false if it buffers a block. */
bool rt_writer_mapped(const rt_writer *w);
/* Tests: hold the flusher back (true) so blocks stay only in the ring
 * until the ring is full (it then copies only what makes room), or let it
 * run again (false). Holding returns once no copy is under way, so a
 * snapshot of the file taken after it is one consistent state (a copy
 * made room for the loop may still be running when the loop goes on). */
void rt_writer_hold_flusher(rt_writer *w, bool hold);
/* Times the ring went round (0: the records are still in its first lap). */
uint64_t rt_writer_ring_laps(const rt_writer *w);
/* From a fatal-signal handler, async-signal-safe: note `signo` in the
 * header, and (buffered) write the committed part of the block being
 * filled. */
void rt_writer_on_signal(rt_writer *w, int signo);
bool rt_writer_pending(const rt_writer *w);
uint64_t rt_writer_records(const rt_writer *w);
uint64_t rt_writer_bytes(const rt_writer *w);     /* header + block stream so far (the size
                                                   * of the trace once it ended cleanly
                                                   * with no ring in the file) */
size_t rt_writer_buffer_bytes(const rt_writer *w); /* memory held: constant */
/* In a child after fork(): close and free without writing anything (the
 * block being filled is the parent's, and so is the file offset). */
void rt_writer_abandon(rt_writer *w);
/* Flush, optionally fsync, close and free. Returns the first error. */
int rt_writer_close(rt_writer *w, bool sync);

/* ---- the reader's private side ---- */
/* Record index and byte offset where the reader's error is. */
void rt_reader_error_pos(const reel_trace_reader *r, uint64_t *index, uint64_t *offset);

/* ---- calls whose arguments are structures: the recorder and the replayer
 * build the same record from them (data in buf, cap >= rt_data_bytes_max) ---- */
void rt_submit_fields(const reel_backend_req *req, reel_trace_record *rec, uint8_t *buf, size_t cap);
void rt_spawn_fields(const reel_spawn_opts *o, reel_trace_record *rec, uint8_t *buf, size_t cap);
/* Vector writes: the bytes asked for, and the CRC32C of the first `n`
 * (those accepted) with the first rt_write_preview_bytes into preview. */
size_t rt_iov_total(const struct iovec *iov, int iovcnt);
uint32_t rt_iov_crc(const struct iovec *iov, int iovcnt, size_t n, uint8_t *preview, uint32_t *plen);
/* The answer a completed request carries (DONE event data); -EMSGSIZE if
 * it does not fit. */
int rt_done_answer(const reel_backend_req *req, uint8_t *buf, size_t cap);

/* replayer.c: where divergence reports go besides the API. */
void rt_replayer_attach_loop(reel_backend *b, reel_loop *loop);

/* ---- formatting helpers shared by reports and tools ---- */
/* "127.0.0.1:80", "[::1]:80", "unix:/path", "unix:@name", or "family=N". */
size_t rt_format_addr(const uint8_t *addr, uint32_t len, char *buf, size_t cap);
/* reel_trace_format, or with answer = false the call alone, as the
 * program made it (no "#index", no result). */
size_t rt_format_call(const reel_trace_record *rec, char *buf, size_t cap, bool answer);
/* The symbolic errno name of a negative code ("EAGAIN"), or NULL. */
const char *rt_errno_name(int64_t code);

/* ---- request answers (DONE events), encoded into the data field ---- */
struct addrinfo;
/* Encode a getaddrinfo answer; returns bytes (<= cap) or -EMSGSIZE. */
int rt_encode_addrinfo(const struct addrinfo *ai, uint8_t *buf, size_t cap);
/* Decode into a list allocated with malloc (free with rt_free_addrinfo). */
int rt_decode_addrinfo(const uint8_t *p, size_t len, struct addrinfo **out);
void rt_free_addrinfo(struct addrinfo *ai);


/* ---- the writer's fast paths, inlined into the recorder ----
 * Defined here, not in trace.c, so the recorder's calls are inlined and
 * specialised (an op and zero arguments known at the call): a call with
 * eight arguments and its register saves were ~30 instructions of each
 * record. The writer's fields are private to trace.c otherwise. */

struct rt_writer {
    int fd;
    bool mapped;
    bool ended;          /* rt_writer_end ran */
    uint8_t *blk;        /* the block being filled: header + payload */
    uint64_t blk_off;    /* its offset in the trace without a ring (header + stream offset) */
    size_t len;          /* payload bytes committed */
    uint32_t crc;        /* CRC32C of first ++ payload[0, crc_len) */
    size_t crc_len;      /* payload bytes the CRC covers: a record boundary <= len */
    uint64_t first;      /* index of the block's first record */
    uint64_t records;
    rt_delta delta;
    int err;
    /* mapped */
    uint8_t *map;        /* [0, map_len) of the file: the header, then the ring */
    size_t map_len;
    uint8_t *ring;       /* map + rt_header_bytes */
    uint64_t blk_pos;    /* ring position of the block being filled */
    uint64_t laps;       /* times the ring went round */
    uint64_t blocks_off; /* file offset of the block stream (after the ring) */
    /* The flusher thread: copies sealed blocks from the ring to the file.
     * sealed and flushed are trace offsets (like blk_off) guarded by mu. */
    pthread_t flusher;
    bool flusher_on;
    pthread_mutex_t mu;
    pthread_cond_t to_flusher, to_loop;
    uint64_t sealed;     /* blocks before this offset are sealed and handed over */
    uint64_t flushed;    /* blocks before this offset are in the file */
    uint64_t flush_pos;  /* ring position of the block at `flushed` */
    int flush_err;
    bool stop, drain, hold, loop_waiting;
    bool copying;        /* the flusher is in flush_run (mu released) */
    /* buffered */
    uint8_t *buf;
    uint64_t bytes;      /* file bytes written */
};

/* Inlined into the encoder: most fields of a record fit in one byte. */
static inline size_t rt_varint_put(uint8_t *p, uint64_t v)
{
    if (__builtin_expect(v < 0x80, 1)) {
        *p = (uint8_t)v;
        return 1;
    }
    /* Unrolled to 5 bytes (a length, a result, a clock delta, a write's
     * CRC): the byte loop was ~28 instructions per multi-byte varint,
     * ~390 per recorded echo round trip (callgrind). */
    p[0] = (uint8_t)(v | 0x80);
    if (v < 1ull << 14) {
        p[1] = (uint8_t)(v >> 7);
        return 2;
    }
    p[1] = (uint8_t)((v >> 7) | 0x80);
    if (v < 1ull << 21) {
        p[2] = (uint8_t)(v >> 14);
        return 3;
    }
    p[2] = (uint8_t)((v >> 14) | 0x80);
    if (v < 1ull << 28) {
        p[3] = (uint8_t)(v >> 21);
        return 4;
    }
    p[3] = (uint8_t)((v >> 21) | 0x80);
    if (v < 1ull << 35) {
        p[4] = (uint8_t)(v >> 28);
        return 5;
    }
    p[4] = (uint8_t)((v >> 28) | 0x80);
    size_t n = 5;
    v >>= 35;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}


static inline void rt_writer_commit(rt_writer *w)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v = (uint64_t)(uint32_t)w->len | (uint64_t)w->crc << 32; /* the same bytes, no byte loop */
#else
    uint8_t b[8];
    rt_put_u32(b, (uint32_t)w->len);
    rt_put_u32(b + 4, w->crc);
    uint64_t v;
    memcpy(&v, b, 8);
#endif
    __atomic_store_n((uint64_t *)(void *)(w->blk + 16), v, __ATOMIC_RELEASE);
}

/* Append a record with n bytes of data at p, the record's start in the
 * block being filled: its hlen header bytes, encoded in hdr (not in the
 * ring), then the data. The block CRC is extended over the records before
 * p that it does not cover yet, then over hdr and src, and only then are
 * they copied in: nothing just stored into the ring is read back. A load
 * of bytes just stored, whose line is cold (every line is, after a lap of
 * the ring), waits for the line to be read for ownership: ~100-190 ns per
 * 256 B read record beside the system calls of an echo, in a harness
 * (docs/performance.md). hdr's bytes past hlen are copied too and then
 * overwritten by the data. Leaves
 * the CRC caught up to the record's end and returns it. The bytes and the
 * CRC values are the same as a memcpy and a later checkpoint. */
uint8_t *rt_writer_put_data(rt_writer *w, uint8_t *p, const uint8_t *hdr, size_t hlen, const void *src,
                            size_t n);
/* hdr's size: op, mask, four 64-bit varints and the data length's. The
 * caller's buffer has this many bytes, and n >= rt_put_data_min is more. */
enum { rt_put_header_bytes = 2 + 4 * 10 + 5 };
/* Data shorter than this is copied inline and checksummed at the next
 * checkpoint (write previews, small reads): a call costs more than it saves. */
enum { rt_put_data_min = 128 };
_Static_assert((int)rt_put_data_min >= (int)rt_put_header_bytes, "a data record overwrites its header copy's slack");

/* The slow side of rt_fast_begin: roll to the next block (mapped) or
 * write the buffered block out; sets the sticky error. */
int rt_writer_roll(rt_writer *w);

/*
 * The records a busy loop writes most (I/O reads and writes, callbacks,
 * clock reads, readiness events), encoded to exactly the bytes rt_encode
 * gives them (tests/test_trace.c checks it byte for byte), without a
 * reel_trace_record to fill and without testing fields the op never has:
 * the generic encoder's mask and field tests were ~150 instructions of the
 * ~400 each record cost the loop thread. */

/* Room for a record with `data_len` bytes of data and no address, reserved
 * as rt_writer_append does (so blocks end where they would): its start, or
 * NULL with the writer's error (or -EPIPE after the end) in *rc. */
static inline uint8_t *rt_fast_begin(rt_writer *w, size_t data_len, int *rc)
{
    size_t bound = rt_record_fixed_bytes_max + data_len + 5 + 0 + 5;
    if (__builtin_expect(w->err || w->ended, 0)) {
        *rc = w->err ? w->err : -EPIPE;
        return NULL;
    }
    if (__builtin_expect(w->len + bound > rt_block_target_bytes, 0) && w->len) {
        int e = rt_writer_roll(w);
        if (e < 0) {
            *rc = e;
            return NULL;
        }
    }
    return w->blk + rt_block_header_bytes + w->len;
}

static inline int rt_fast_end(rt_writer *w, uint8_t *p0, uint8_t *p)
{
    size_t n = (size_t)(p - p0);
    w->len += n;
    w->records++;
    rt_writer_commit(w);
    return 0;
}

static inline uint8_t *rt_put_zz(uint8_t *p, int64_t v) { return p + rt_varint_put(p, rt_zigzag(v)); }

static inline int rt_writer_now(rt_writer *w, uint64_t now)
{
    int rc = 0;
    uint8_t *p0 = rt_fast_begin(w, 0, &rc), *p = p0;
    if (!p)
        return rc;
    *p++ = REEL_TRACE_NOW;
    *p++ = RT_F_RESULT; /* a NOW record always has its result */
    p = rt_put_zz(p, (int64_t)(now - w->delta.prev_now));
    w->delta.prev_now = now;
    return rt_fast_end(w, p0, p);
}

static inline int rt_writer_callback(rt_writer *w, uint32_t site, uint64_t time_ns)
{
    int rc = 0;
    uint8_t *p0 = rt_fast_begin(w, 0, &rc), *p = p0;
    if (!p)
        return rc;
    *p++ = REEL_TRACE_CALLBACK;
    *p++ = (uint8_t)((site != 0) * RT_F_A0 | (time_ns != 0) * RT_F_TIME);
    if (site)
        p = rt_put_zz(p, site);
    if (time_ns) {
        p = rt_put_zz(p, (int64_t)(time_ns - w->delta.prev_time));
        w->delta.prev_time = time_ns;
    }
    return rt_fast_end(w, p0, p);
}

static inline int rt_writer_io(rt_writer *w, uint32_t op, int fd, int64_t a0, int64_t a1, int64_t result,
                 const void *data, uint32_t data_len)
{
    if (data_len > rt_data_bytes_max)
        return -EMSGSIZE;
    int rc = 0;
    uint8_t *p0 = rt_fast_begin(w, data_len, &rc);
    if (!p0)
        return rc;
    /* A record whose data is checksummed as it is appended has its header
     * encoded on the stack (rt_writer_put_data); any other in place. */
    uint8_t hdr[rt_put_header_bytes] = {0}; /* no stack bytes reach the ring, even for a moment */
    bool put = data_len >= rt_put_data_min;
    uint8_t *p = put ? hdr : p0;
    *p++ = (uint8_t)op;
    /* The mask (one byte: these flags are below 0x80) is built in the
     * branches that write the fields and stored after them: computed up
     * front from the same tests it was ~15 instructions more per record. */
    uint8_t *mp = p++;
    uint32_t mask = 0;
    if (fd != -1) {
        mask |= RT_F_FD;
        p = rt_put_zz(p, fd);
    }
    if (result) {
        mask |= RT_F_RESULT;
        p = rt_put_zz(p, result);
    }
    if (a0) {
        mask |= RT_F_A0;
        p = rt_put_zz(p, a0);
    }
    if (a1) {
        mask |= RT_F_A1;
        p = rt_put_zz(p, a1);
    }
    if (data_len)
        mask |= RT_F_DATA;
    *mp = (uint8_t)mask;
    if (data_len) {
        p += rt_varint_put(p, data_len);
        if (put) {
            p = rt_writer_put_data(w, p0, hdr, (size_t)(p - hdr), data, data_len);
        } else if (data_len == rt_write_preview_bytes) {
            /* A write's preview (every write of 16 bytes or more): a
             * fixed-size copy is two 8-byte moves; through libc's memcpy
             * with a variable length it was ~25 instructions and a call. */
            memcpy(p, data, rt_write_preview_bytes);
            p += rt_write_preview_bytes;
        } else {
            memcpy(p, data, data_len);
            p += data_len;
        }
    }
    return rt_fast_end(w, p0, p);
}

static inline int rt_writer_poll(rt_writer *w, int64_t max_events, int64_t timeout_ns, int64_t waited_ns, int64_t n,
                   uint64_t time_ns)
{
    int rc = 0;
    uint8_t *p0 = rt_fast_begin(w, 0, &rc), *p = p0;
    if (!p)
        return rc;
    *p++ = REEL_TRACE_POLL;
    /* RESULT, A0, A1, TIME, A2: all below 0x80, so the mask is one byte. */
    *p++ = (uint8_t)((n != 0) * RT_F_RESULT | (max_events != 0) * RT_F_A0 | (timeout_ns != 0) * RT_F_A1 |
                     (time_ns != 0) * RT_F_TIME | (waited_ns != 0) * RT_F_A2);
    if (n)
        p = rt_put_zz(p, n);
    if (max_events)
        p = rt_put_zz(p, max_events);
    if (timeout_ns)
        p = rt_put_zz(p, timeout_ns);
    if (time_ns) {
        p = rt_put_zz(p, (int64_t)(time_ns - w->delta.prev_time));
        w->delta.prev_time = time_ns;
    }
    if (waited_ns)
        p = rt_put_zz(p, waited_ns);
    return rt_fast_end(w, p0, p);
}

/* An EVENT record's bytes at p; returns the end. */
static inline uint8_t *rt_event_put(uint8_t *p, int64_t kind, int64_t events, int64_t id, int64_t value, int64_t a4)
{
    *p++ = REEL_TRACE_EVENT;
    /* As in rt_writer_io, the mask is built where the fields are written
     * and stored after them. Its varint is one byte, or two when A3 or A4
     * (0x100, 0x200) is set, which is known up front. */
    uint8_t *mp = p;
    bool wide = value != 0 || a4 != 0;
    p += 1 + wide;
    uint32_t mask = 0;
    if (kind) {
        mask |= RT_F_A0;
        p = rt_put_zz(p, kind);
    }
    if (events) {
        mask |= RT_F_A1;
        p = rt_put_zz(p, events);
    }
    if (id) {
        mask |= RT_F_A2;
        p = rt_put_zz(p, id);
    }
    if (value) {
        mask |= RT_F_A3;
        p = rt_put_zz(p, value);
    }
    if (a4) {
        mask |= RT_F_A4;
        p = rt_put_zz(p, a4);
    }
    if (wide) { /* = rt_varint_put of a mask below 1 << 14 */
        mp[0] = (uint8_t)(mask | 0x80);
        mp[1] = (uint8_t)(mask >> 7);
    } else {
        mp[0] = (uint8_t)mask;
    }
    return p;
}

static inline int rt_writer_event(rt_writer *w, int64_t kind, int64_t events, int64_t id, int64_t value, int64_t a4)
{
    int rc = 0;
    uint8_t *p0 = rt_fast_begin(w, 0, &rc);
    if (!p0)
        return rc;
    return rt_fast_end(w, p0, rt_event_put(p0, kind, events, id, value, a4));
}

/* A poll's events in one go: room for n EVENT records (rt_event_put each)
 * when all of them fit in the block being filled, or NULL (then write
 * them one by one with rt_writer_event). Fitting all n is exactly when
 * rt_writer_event would not close the block before any of them, so the
 * bytes and the block boundaries are the same; rt_writer_events_end
 * commits them with one store. */
static inline uint8_t *rt_writer_events_begin(rt_writer *w, size_t n)
{
    if (__builtin_expect(w->err || w->ended, 0))
        return NULL;
    if (w->len + n * (rt_record_fixed_bytes_max + 10) > rt_block_target_bytes)
        return NULL;
    return w->blk + rt_block_header_bytes + w->len;
}

static inline void rt_writer_events_end(rt_writer *w, uint8_t *p0, uint8_t *p, size_t n)
{
    w->len += (size_t)(p - p0);
    w->records += n;
    rt_writer_commit(w);
}

#endif
