/* loop/switch_x86_64.S — the task context switch for x86-64 (System V).
 *
 *   void rl_ctx_swap(void **save_sp, void *load_sp);
 *
 * Pushes the callee-saved registers (rbp rbx r12-r15) on the current stack,
 * stores the stack pointer in *save_sp, loads load_sp, pops the same
 * registers from there and returns into the other context. Everything else
 * is caller-saved and so already spilled by the C caller. No signal mask is
 * touched (no system call), and MXCSR / the x87 control word are not
 * switched: reel assumes tasks do not change floating-point modes.
 *
 *   rl_ctx_entry
 *
 * The first "return address" of a new context (see fiber.c): it calls
 * r12(rbx) — the entry function with its argument — on the fresh stack.
 * The entry function never returns (it switches away for good).
 *
 * CET: neither shadow stacks (the stack switch) nor IBT (the indirect jump
 * below lands on plain return addresses) are supported. This object
 * carries no .note.gnu.property, so the linker leaves both off for the
 * program. An endbr64 is still emitted at the entry when building for IBT. */
#if defined(__x86_64__) && !defined(REEL_FORCE_UCONTEXT)

#if defined(__CET__) && (__CET__ & 1)
#define RL_ENDBR endbr64
#else
#define RL_ENDBR
#endif

    .text
    .globl  rl_ctx_swap
    .hidden rl_ctx_swap
    .type   rl_ctx_swap, @function
    .p2align 4
rl_ctx_swap:
    .cfi_startproc
    RL_ENDBR
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    /* Not `ret`: the return-stack predictor holds *this* context's caller,
     * so a ret into the other context would always mispredict. An indirect
     * jump is predicted from branch history instead (the boost.context
     * approach); the call's return-stack entry is simply left behind. */
    popq    %rcx
    jmpq    *%rcx
    .cfi_endproc
    .size   rl_ctx_swap, .-rl_ctx_swap

    .globl  rl_ctx_entry
    .hidden rl_ctx_entry
    .type   rl_ctx_entry, @function
    .p2align 4
rl_ctx_entry:
    .cfi_startproc
    .cfi_undefined rip      /* outermost frame: debuggers stop unwinding here */
    movq    %rbx, %rdi
    callq   *%r12
    ud2
    .cfi_endproc
    .size   rl_ctx_entry, .-rl_ctx_entry

#endif
    .section .note.GNU-stack,"",@progbits
