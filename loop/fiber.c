/* loop/fiber.c — stackful contexts: the hand-written switch (switch_*.S) or
 * the ucontext fallback, with AddressSanitizer and Valgrind annotations. */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#include "fiber.h"
#include "internal.h"

/* ------------------------------------------------- sanitizer annotations */

#if defined(REEL_ASAN) || defined(__SANITIZE_ADDRESS__)
#define RL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RL_ASAN 1
#endif
#endif

#ifdef RL_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define ASAN_START(fake_save, lo, bytes) __sanitizer_start_switch_fiber((fake_save), (lo), (bytes))
#define ASAN_FINISH(fake, lo_out, bytes_out) __sanitizer_finish_switch_fiber((fake), (lo_out), (bytes_out))
#else
#define ASAN_START(fake_save, lo, bytes) ((void)(fake_save), (void)(lo), (void)(bytes))
#define ASAN_FINISH(fake, lo_out, bytes_out) ((void)(fake), (void)(lo_out), (void)(bytes_out))
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define RL_VALGRIND 1
#endif
#endif

bool rl_sanitized(void)
{
#ifdef RL_ASAN
    return true;
#else
    return false;
#endif
}

unsigned rl_fiber_stack_register(void *lo, size_t bytes)
{
#ifdef RL_VALGRIND
    return VALGRIND_STACK_REGISTER(lo, (char *)lo + bytes);
#else
    (void)lo;
    (void)bytes;
    return 0;
#endif
}

void rl_fiber_stack_deregister(unsigned id)
{
#ifdef RL_VALGRIND
    VALGRIND_STACK_DEREGISTER(id);
#else
    (void)id;
#endif
}

/* ----------------------------------------------------------- the switch */

/* The frames still on a fiber's stack when it exits (fiber_main, the
 * entry function, rl_fiber_exit) keep their ASan redzone poison; clear it
 * so the stack can be reused. Frames that returned cleared their own, so
 * only [here, top) needs it — not the whole stack, whose shadow would then
 * be committed for every task. */
static inline void asan_clear_exit_frames(rl_fiber *f)
{
#ifdef RL_ASAN
    uintptr_t here = (uintptr_t)__builtin_frame_address(0) - 512;
    uintptr_t lo = (uintptr_t)f->stack_lo, top = lo + f->stack_bytes;
    if (here < lo)
        here = lo;
    __asan_unpoison_memory_region((void *)here, top - here);
#else
    (void)f;
#endif
}

/* First code a fiber runs, on its own stack. */
static void fiber_main(void *p)
{
    rl_fiber *f = p;
    ASAN_FINISH(NULL, &f->back_lo, &f->back_bytes);
    f->entry(f->arg);
    RL_ASSERT(!"fiber entry returned");
    rl_fiber_exit(f);
}

#if RL_FIBER_ASM

void rl_ctx_swap(void **save_sp, void *load_sp);
void rl_ctx_entry(void);

void rl_fiber_init(rl_fiber *f, void *stack_lo, size_t stack_bytes,
                   void (*entry)(void *arg), void *arg)
{
    memset(f, 0, sizeof *f);
    f->entry = entry;
    f->arg = arg;
    f->stack_lo = stack_lo;
    f->stack_bytes = stack_bytes;
    uintptr_t top = ((uintptr_t)stack_lo + stack_bytes) & ~(uintptr_t)15;
    void **sp;
#if defined(__x86_64__)
    /* rl_ctx_swap pops r15 r14 r13 r12 rbx rbp, then returns into
     * rl_ctx_entry, which calls r12(rbx) with rsp 16-byte aligned. */
    sp = (void **)(top - 72);
    sp[0] = sp[1] = sp[2] = NULL;             /* r15 r14 r13 */
    sp[3] = (void *)(uintptr_t)fiber_main;    /* r12: the function */
    sp[4] = f;                                /* rbx: its argument */
    sp[5] = NULL;                             /* rbp */
    sp[6] = (void *)(uintptr_t)rl_ctx_entry;  /* return address */
    sp[7] = NULL;
#else
    /* rl_ctx_swap restores a 160-byte frame: x19..x28, x29, x30, d8..d15,
     * then returns to x30 = rl_ctx_entry, which calls x20(x19). */
    sp = (void **)(top - 160);
    memset(sp, 0, 160);
    sp[0] = f;                                /* x19: the argument */
    sp[1] = (void *)(uintptr_t)fiber_main;    /* x20: the function */
    sp[11] = (void *)(uintptr_t)rl_ctx_entry; /* x30 */
#endif
    f->sp = sp;
}

void rl_fiber_resume(rl_fiber *f)
{
    void *fake = NULL;
    ASAN_START(&fake, f->stack_lo, f->stack_bytes);
    rl_ctx_swap(&f->back_sp, f->sp);
    ASAN_FINISH(fake, NULL, NULL);
}

void rl_fiber_yield(rl_fiber *f)
{
    ASAN_START(&f->asan_fake, f->back_lo, f->back_bytes);
    rl_ctx_swap(&f->sp, f->back_sp);
    ASAN_FINISH(f->asan_fake, &f->back_lo, &f->back_bytes);
}

void rl_fiber_exit(rl_fiber *f)
{
    /* NULL: this fiber's fake stack can be thrown away — so nothing after
     * this point may live on it (the saved sp goes into f, not a local). */
    asan_clear_exit_frames(f);
    ASAN_START(NULL, f->back_lo, f->back_bytes);
    rl_ctx_swap(&f->sp, f->back_sp);
    __builtin_unreachable();
}

#else /* ucontext fallback: portable, but swapcontext also saves and restores
       * the signal mask (a system call per switch) — slower, same results.
       * The two contexts live at the top of the fiber's own stack. */

typedef struct uc_pair {
    ucontext_t self;   /* the fiber */
    ucontext_t back;   /* whoever resumed it */
} uc_pair;

static __thread rl_fiber *uc_starting;

static void fiber_uc_main(void)
{
    fiber_main(uc_starting);
}

void rl_fiber_init(rl_fiber *f, void *stack_lo, size_t stack_bytes,
                   void (*entry)(void *arg), void *arg)
{
    memset(f, 0, sizeof *f);
    f->entry = entry;
    f->arg = arg;
    f->stack_lo = stack_lo;
    f->stack_bytes = stack_bytes;
    uintptr_t top = (uintptr_t)stack_lo + stack_bytes;
    uc_pair *p = (uc_pair *)((top - sizeof(uc_pair)) & ~(uintptr_t)63);
    getcontext(&p->self);
    p->self.uc_stack.ss_sp = stack_lo;
    p->self.uc_stack.ss_size = (size_t)((uintptr_t)p - (uintptr_t)stack_lo);
    p->self.uc_link = NULL;
    makecontext(&p->self, fiber_uc_main, 0);
    f->sp = p;
}

void rl_fiber_resume(rl_fiber *f)
{
    uc_pair *p = f->sp;
    void *fake = NULL;
    uc_starting = f;   /* read by fiber_uc_main on the first resume only */
    ASAN_START(&fake, f->stack_lo, f->stack_bytes);
    swapcontext(&p->back, &p->self);
    ASAN_FINISH(fake, NULL, NULL);
}

void rl_fiber_yield(rl_fiber *f)
{
    uc_pair *p = f->sp;
    ASAN_START(&f->asan_fake, f->back_lo, f->back_bytes);
    swapcontext(&p->self, &p->back);
    ASAN_FINISH(f->asan_fake, &f->back_lo, &f->back_bytes);
}

void rl_fiber_exit(rl_fiber *f)
{
    uc_pair *p = f->sp;
    asan_clear_exit_frames(f);
    ASAN_START(NULL, f->back_lo, f->back_bytes);
    setcontext(&p->back);
    __builtin_unreachable();
}

#endif
