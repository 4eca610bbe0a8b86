/* The whole task test suite again, on the portable ucontext fallback of
 * the context switch instead of the hand-written one: this file's copy of
 * loop/fiber.c (built with REEL_FORCE_UCONTEXT) takes the place of the
 * library's, so the linker never pulls in the assembly switch. */
#define REEL_FORCE_UCONTEXT 1
#include "../loop/fiber.c"
#include "test_task.c"
