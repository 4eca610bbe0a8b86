/* loop/switch_aarch64.S — the task context switch for AArch64 (AAPCS64).
 *
 *   void rl_ctx_swap(void **save_sp, void *load_sp);
 *
 * Saves the callee-saved registers x19-x28, the frame pointer x29, the link
 * register x30 and d8-d15 in a 160-byte frame on the current stack, stores
 * sp in *save_sp, loads load_sp, restores the same frame from there and
 * returns (to the x30 it restored) into the other context. No signal mask
 * is touched (no system call); FPCR is not switched.
 *
 *   rl_ctx_entry
 *
 * The first x30 of a new context (see fiber.c): calls x20(x19) — the entry
 * function with its argument — on the fresh stack; it never returns.
 *
 * BTI: rl_ctx_swap is only reached by direct calls and rl_ctx_entry by
 * ret, so no landing pads are needed; this object carries no
 * .note.gnu.property, so a BTI-enforcing link turns BTI off for the program
 * rather than faulting. Return addresses are not signed (no PAC). */
#if defined(__aarch64__) && !defined(REEL_FORCE_UCONTEXT)

    .text
    .globl  rl_ctx_swap
    .hidden rl_ctx_swap
    .type   rl_ctx_swap, %function
    .p2align 4
rl_ctx_swap:
    .cfi_startproc
    sub     sp, sp, #160
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8,  d9,  [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mov     x2, sp
    str     x2, [x0]
    mov     sp, x1
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8,  d9,  [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #160
    ret
    .cfi_endproc
    .size   rl_ctx_swap, .-rl_ctx_swap

    .globl  rl_ctx_entry
    .hidden rl_ctx_entry
    .type   rl_ctx_entry, %function
    .p2align 4
rl_ctx_entry:
    .cfi_startproc
    .cfi_undefined x30      /* outermost frame: debuggers stop unwinding here */
    mov     x0, x19
    blr     x20
    brk     #0
    .cfi_endproc
    .size   rl_ctx_entry, .-rl_ctx_entry

#endif
    .section .note.GNU-stack,"",%progbits
