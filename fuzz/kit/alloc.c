/* fuzz/kit/alloc.c — per-thread allocation counting for the fuzz kit's
 * leak check (reel/fuzz.h).
 *
 * The harness is linked with -Wl,--wrap=malloc,... (see reel/fuzz.h): every
 * call to malloc & co from the program, its protocol and the static reel
 * library lands in __wrap_malloc, which counts it when this thread has a
 * window open and calls the real allocator (libc's, or the sanitizer's).
 * The same mechanism as tests/test_alloc.c, kept to the fuzz kit so that
 * libreel itself has no allocation hook and no cost. Without --wrap the
 * weak __real_* references stay NULL and nothing is counted.
 *
 * strdup, strndup, aligned_alloc and posix_memalign are wrapped too: their
 * memory comes back through free(), so they must be counted to balance. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reel/fuzz.h"
#include "kit.h"

extern void *__real_malloc(size_t size) __attribute__((weak));
extern void *__real_calloc(size_t n, size_t size) __attribute__((weak));
extern void *__real_realloc(void *p, size_t size) __attribute__((weak));
extern void __real_free(void *p) __attribute__((weak));
extern void *__real_aligned_alloc(size_t align, size_t size) __attribute__((weak));
extern int __real_posix_memalign(void **p, size_t align, size_t size) __attribute__((weak));

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void __wrap_free(void *p);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t size);
int __wrap_posix_memalign(void **p, size_t align, size_t size);

static __thread bool counting;
static __thread long live;   /* allocations minus frees in the window */

/* The fuzz connection's exact check (kit.h): the addresses of the blocks
 * made while tracking is on and not freed yet, in an open-addressing set
 * (linear probing, deletion by backward shift) of kit memory. */
static __thread bool tracking;
static __thread bool tracking_lost;   /* the set could not grow: no answer */
static __thread uintptr_t *set;
static __thread size_t set_cap, set_len;

static inline size_t slot_of(uintptr_t p, size_t mask)
{
    return (size_t)((p >> 4) * 0x9e3779b97f4a7c15ull >> 17) & mask;
}

static bool set_insert(uintptr_t p);

static bool set_grow(void)
{
    uintptr_t *old = set;
    size_t old_cap = set_cap;
    size_t cap = old_cap ? old_cap * 2 : 1024;
    uintptr_t *n = __real_calloc(cap, sizeof *n);
    if (!n)
        return false;
    set = n;
    set_cap = cap;
    set_len = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i])
            set_insert(old[i]);
    __real_free(old);
    return true;
}

static bool set_insert(uintptr_t p)
{
    if ((set_len + 1) * 2 > set_cap && !set_grow())
        return false;
    size_t mask = set_cap - 1, i = slot_of(p, mask);
    while (set[i]) {
        if (set[i] == p)
            return true;
        i = (i + 1) & mask;
    }
    set[i] = p;
    set_len++;
    return true;
}

static bool set_remove(uintptr_t p)
{
    if (set_len == 0)
        return false;
    size_t mask = set_cap - 1, i = slot_of(p, mask);
    while (set[i] != p) {
        if (!set[i])
            return false;
        i = (i + 1) & mask;
    }
    /* Backward shift: pull later entries of the run into the hole when
     * their home slot is not after it. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; set[j]; j = (j + 1) & mask) {
        size_t home = slot_of(set[j], mask);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            set[hole] = set[j];
            hole = j;
        }
    }
    set[hole] = 0;
    set_len--;
    return true;
}

static inline void made(const void *p)
{
    if (p && counting) {
        live++;
        if (tracking && !set_insert((uintptr_t)p))
            tracking_lost = true;
    }
}

static inline void gone(const void *p)
{
    if (set_len)
        set_remove((uintptr_t)p);
}

void *__wrap_malloc(size_t size)
{
    void *p = __real_malloc(size);
    made(p);
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    void *p = __real_calloc(n, size);
    made(p);
    return p;
}

void *__wrap_realloc(void *p, size_t size)
{
    void *q = __real_realloc(p, size);
    if (!p) {
        made(q);               /* realloc(NULL, n) is malloc(n) */
    } else if (q) {
        if (set_len && set_remove((uintptr_t)p) && !set_insert((uintptr_t)q))
            tracking_lost = true;   /* a tracked block moved */
    } else if (size == 0) {
        if (counting)
            live--;            /* glibc: realloc(p, 0) frees p */
        gone(p);
    }
    return q;
}

void __wrap_free(void *p)
{
    if (p && counting)
        live--;
    if (p)
        gone(p);
    __real_free(p);
}

char *__wrap_strdup(const char *s)
{
    return __wrap_strndup(s, (size_t)-1);
}

char *__wrap_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = __wrap_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    void *p = __real_aligned_alloc(align, size);
    made(p);
    return p;
}

int __wrap_posix_memalign(void **p, size_t align, size_t size)
{
    int rc = __real_posix_memalign(p, align, size);
    if (rc == 0)
        made(*p);
    return rc;
}

bool reel_fuzz_leak_check_available(void)
{
    /* With --wrap, the weak reference is bound to the real malloc; and
     * this file's own call to malloc must come back through the wrapper. */
    if (!__real_malloc)
        return false;
    bool was = counting;
    long before = live;
    counting = true;
    /* Through volatile pointers: a compiler may drop a malloc/free pair. */
    void *(*volatile alloc)(size_t) = malloc;
    void (*volatile release)(void *) = free;
    void *p = alloc(1);
    bool seen = live != before;
    release(p);
    counting = was;
    live = before;
    return seen;
}

void reel_fuzz_leak_check_begin(void)
{
    live = 0;
    counting = true;
}

long reel_fuzz_leak_check_end(void)
{
    counting = false;
    return live;
}

void reel_fuzz_leak_check_pause(void) { counting = false; }
void reel_fuzz_leak_check_resume(void) { counting = true; }

void fz_track_begin(void)
{
    /* Blocks a previous window left (a leak already reported) are not
     * this window's. */
    if (set_len)
        memset(set, 0, set_cap * sizeof *set);
    set_len = 0;
    tracking_lost = false;
    live = 0;
    tracking = true;
    counting = true;
}

bool fz_track_pause(void)
{
    bool was = counting;
    counting = false;
    return was;
}

void fz_track_resume(bool was) { counting = was; }

long fz_track_live(void) { return tracking_lost ? -1 : (long)set_len; }

long fz_track_end(void)
{
    counting = false;
    tracking = false;
    long n = fz_track_live();
    /* Forget the leaked blocks: frees of them later are not tracked. */
    if (set_len)
        memset(set, 0, set_cap * sizeof *set);
    set_len = 0;
    return n;
}
