/* loop/fiber.h — a stackful execution context (the machinery under tasks).
 *
 * A fiber runs entry(arg) on a stack it is given. rl_fiber_resume() runs
 * it from the caller's context until the fiber calls rl_fiber_yield() or
 * rl_fiber_exit(); a later resume continues after the yield. Fibers can be
 * resumed from inside other fibers (the resumer is remembered per resume),
 * but a fiber must not resume itself or one that is already running.
 *
 * The switch is hand-written for x86-64 and AArch64 (loop/switch_*.S:
 * callee-saved registers and the stack pointer, no system call) and falls
 * back to ucontext elsewhere (or with -DREEL_FORCE_UCONTEXT). It tells
 * AddressSanitizer about every switch, and Valgrind about every stack
 * (rl_fiber_stack_register), so both work on fiber code. No thread-local
 * state: the caller passes the fiber. Not installed. */
#ifndef REEL_LOOP_FIBER_H
#define REEL_LOOP_FIBER_H

#include <stddef.h>

#if !defined(REEL_FORCE_UCONTEXT) && (defined(__x86_64__) || defined(__aarch64__))
#define RL_FIBER_ASM 1
#else
#define RL_FIBER_ASM 0
#include <ucontext.h>
#endif

typedef struct rl_fiber {
    void *sp;                 /* the fiber's stack pointer while switched out
                                 (ucontext: its pair of contexts, kept at the
                                 top of its stack, so the layout is the same) */
    void *back_sp;            /* the resumer's stack pointer while it runs */
    void (*entry)(void *arg);
    void *arg;
    void *stack_lo;           /* lowest usable byte of the stack */
    size_t stack_bytes;
    /* AddressSanitizer bookkeeping (unused otherwise). */
    void *asan_fake;          /* the fiber's fake stack while switched out */
    const void *back_lo;      /* the resumer's stack, learned on entry */
    size_t back_bytes;
} rl_fiber;

/* Prepare f to run entry(arg) on [stack_lo, stack_lo + stack_bytes) at its
 * first resume. entry must end with rl_fiber_exit(), never return. */
void rl_fiber_init(rl_fiber *f, void *stack_lo, size_t stack_bytes,
                   void (*entry)(void *arg), void *arg);
/* Switch to f; returns when f yields or exits. */
void rl_fiber_resume(rl_fiber *f);
/* From inside f: switch back to whoever resumed it. */
void rl_fiber_yield(rl_fiber *f);
/* From inside f: switch back for good; f may be re-initialised after.
 * Never returns, but is deliberately not declared _Noreturn: under ASan a
 * call to a noreturn function unpoisons the whole unused stack below it
 * (__asan_handle_no_return), committing shadow memory for every stack. */
void rl_fiber_exit(rl_fiber *f);

/* Valgrind: announce / withdraw a stack (no-ops when not built with
 * <valgrind/valgrind.h> or not running under Valgrind). */
unsigned rl_fiber_stack_register(void *lo, size_t bytes);
void rl_fiber_stack_deregister(unsigned id);

#endif
