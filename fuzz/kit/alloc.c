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

static inline void made(const void *p)
{
    if (p && counting)
        live++;
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
    if (counting) {
        if (!p && q)
            live++;            /* realloc(NULL, n) is malloc(n) */
        else if (p && size == 0 && !q)
            live--;            /* glibc: realloc(p, 0) frees p */
    }
    return q;
}

void __wrap_free(void *p)
{
    if (p && counting)
        live--;
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
