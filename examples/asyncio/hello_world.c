/* asyncio docs, Event Loop > Examples: "Hello World with call_soon()".
 *
 *   def hello_world(loop):
 *       print('Hello World')
 *       loop.stop()
 *
 *   loop = asyncio.new_event_loop()
 *   loop.call_soon(hello_world, loop)
 *   try:
 *       loop.run_forever()
 *   finally:
 *       loop.close()
 */
#include <stdio.h>
#include <reel.h>

static void hello_world(void *loop)
{
    puts("Hello World");
    reel_loop_stop(loop);
}

int main(void)
{
    reel_loop *loop;
    if (reel_loop_new(&loop) < 0)
        return 1;
    reel_loop_call_soon(loop, hello_world, loop, NULL);
    reel_loop_run_forever(loop);
    reel_loop_free(loop);   /* closes it */
    return 0;
}
