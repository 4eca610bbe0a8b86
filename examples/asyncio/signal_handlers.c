/* asyncio docs, Event Loop > Examples: "Set signal handlers for SIGINT
 * and SIGTERM".
 *
 *   import asyncio
 *   import functools
 *   import os
 *   import signal
 *
 *   def ask_exit(signame, loop):
 *       print("got signal %s: exit" % signame)
 *       loop.stop()
 *
 *   async def main():
 *       loop = asyncio.get_running_loop()
 *
 *       for signame in {'SIGINT', 'SIGTERM'}:
 *           loop.add_signal_handler(
 *               getattr(signal, signame),
 *               functools.partial(ask_exit, signame, loop))
 *
 *       await asyncio.sleep(3600)
 *
 *   print("Event loop running for 1 hour, press Ctrl+C to interrupt.")
 *   print(f"pid {os.getpid()}: send SIGINT or SIGTERM to exit.")
 *
 *   asyncio.run(main())
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <reel.h>

static void ask_exit(void *signame)
{
    printf("got signal %s: exit\n", (const char *)signame);
    reel_loop_stop(reel_get_running_loop());
}

static int main_task(void *arg, void **result)
{
    (void)arg; (void)result;
    reel_loop *loop = reel_get_running_loop();
    reel_loop_add_signal_handler(loop, SIGINT, ask_exit, "SIGINT");
    reel_loop_add_signal_handler(loop, SIGTERM, ask_exit, "SIGTERM");
    return reel_sleep(3600);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    puts("Event loop running for 1 hour, press Ctrl+C to interrupt.");
    printf("pid %d: send SIGINT or SIGTERM to exit.\n", (int)getpid());
    int rc = reel_run(main_task, NULL, NULL);   /* stopped: REEL_ESTOPPED */
    return rc == 0 || rc == REEL_ESTOPPED ? 0 : 1;
}
