/* tests/helpers/task_helpers.h — helpers for the task tests. */
#ifndef REEL_TEST_TASK_HELPERS_H
#define REEL_TEST_TASK_HELPERS_H

#include "reel.h"

/* Safety net for every wait in the task tests (never a timing window). */
#define TT_SAFETY_SECONDS 60.0

/* Create a task running fn(arg) on loop and run the loop until it is done
 * (with the safety net: REEL_ESTOPPED if it never finishes). Returns the
 * task's code and stores its result. */
int tt_run_task(reel_loop *loop, reel_task_fn fn, void *arg, void **result);

/* run_until_complete(fut) with the safety net. */
int tt_run_until(reel_loop *loop, reel_future *fut);

/* Exception-handler calls, with the task field. */
typedef struct tt_exc {
    int count;
    char message[256];
    int error;
    const reel_future *future;
    const reel_future *task;
} tt_exc;
void tt_exc_capture(reel_loop *loop, tt_exc *exc);

#endif
