/* asyncio docs, Event Loop > Examples: "Display the current date with
 * call_later()" — every second for 5 seconds.
 *
 *   def display_date(end_time, loop):
 *       print(datetime.datetime.now())
 *       if (loop.time() + 1.0) < end_time:
 *           loop.call_later(1, display_date, end_time, loop)
 *       else:
 *           loop.stop()
 *
 *   loop = asyncio.new_event_loop()
 *   end_time = loop.time() + 5.0
 *   loop.call_soon(display_date, end_time, loop)
 *   try:
 *       loop.run_forever()
 *   finally:
 *       loop.close()
 */
#include <stdio.h>
#include <time.h>
#include <reel.h>

typedef struct clock_state {
    reel_loop *loop;
    double end_time;
} clock_state;

static void display_date(void *arg)
{
    clock_state *c = arg;
    char now[64];
    time_t t = time(NULL);
    strftime(now, sizeof now, "%Y-%m-%d %H:%M:%S", localtime(&t));
    puts(now);
    if (reel_loop_time(c->loop) + 1.0 < c->end_time)
        reel_loop_call_later(c->loop, 1.0, display_date, c, NULL);
    else
        reel_loop_stop(c->loop);
}

int main(void)
{
    clock_state c;
    if (reel_loop_new(&c.loop) < 0)
        return 1;
    c.end_time = reel_loop_time(c.loop) + 5.0;
    reel_loop_call_soon(c.loop, display_date, &c, NULL);
    reel_loop_run_forever(c.loop);
    reel_loop_free(c.loop);
    return 0;
}
