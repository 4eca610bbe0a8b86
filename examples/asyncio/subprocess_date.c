/* asyncio docs, Transports and Protocols > "loop.subprocess_exec() and
 * SubprocessProtocol": get the output of a subprocess and wait for its
 * exit. The docs run Python's datetime; `date` plays its part here.
 *
 *   class DateProtocol(asyncio.SubprocessProtocol):
 *       def __init__(self, exit_future):
 *           self.exit_future = exit_future
 *           self.output = bytearray()
 *           self.pipe_closed = False
 *           self.exited = False
 *
 *       def pipe_connection_lost(self, fd, exc):
 *           self.pipe_closed = True
 *           self.check_for_exit()
 *
 *       def pipe_data_received(self, fd, data):
 *           self.output.extend(data)
 *
 *       def process_exited(self):
 *           self.exited = True
 *           # process_exited() method can be called before
 *           # pipe_connection_lost() method: wait until both methods are
 *           # called.
 *           self.check_for_exit()
 *
 *       def check_for_exit(self):
 *           if self.pipe_closed and self.exited:
 *               self.exit_future.set_result(True)
 *
 *   async def get_date():
 *       # Get a reference to the event loop as we plan to use
 *       # low-level APIs.
 *       loop = asyncio.get_running_loop()
 *
 *       code = 'import datetime; print(datetime.datetime.now())'
 *       exit_future = asyncio.Future(loop=loop)
 *
 *       # Create the subprocess controlled by DateProtocol;
 *       # redirect the standard output into a pipe.
 *       transport, protocol = await loop.subprocess_exec(
 *           lambda: DateProtocol(exit_future),
 *           sys.executable, '-c', code,
 *           stdin=None, stderr=None)
 *
 *       # Wait for the subprocess exit using the process_exited()
 *       # method of the protocol.
 *       await exit_future
 *
 *       # Close the stdout pipe.
 *       transport.close()
 *
 *       # Read the output which was collected by the
 *       # pipe_data_received() method of the protocol.
 *       data = bytes(protocol.output)
 *       return data.decode('ascii').rstrip()
 *
 *   date = asyncio.run(get_date())
 *   print(f"Current date: {date}")
 */
#include <stdio.h>
#include <string.h>
#include <reel.h>

typedef struct date_protocol {
    reel_future *exit_future;
    char output[256];
    size_t len;
    bool pipe_closed, exited;
} date_protocol;

static void check_for_exit(date_protocol *d)
{
    if (d->pipe_closed && d->exited)
        reel_future_set_result(d->exit_future, NULL);
}

static void pipe_connection_lost(void *self, int fd, int err)
{
    (void)fd; (void)err;
    ((date_protocol *)self)->pipe_closed = true;
    check_for_exit(self);
}

static void pipe_data_received(void *self, int fd, const void *data, size_t len)
{
    (void)fd;
    date_protocol *d = self;
    size_t n = len < sizeof d->output - 1 - d->len ? len : sizeof d->output - 1 - d->len;
    memcpy(d->output + d->len, data, n);
    d->len += n;
}

static void process_exited(void *self)
{
    /* process_exited can come before pipe_connection_lost: wait for both. */
    ((date_protocol *)self)->exited = true;
    check_for_exit(self);
}

static int get_date(void *arg, void **result)
{
    (void)result;
    date_protocol *d = arg;
    reel_loop_create_future(reel_get_running_loop(), &d->exit_future);
    reel_subprocess_protocol p = {.user = d, .pipe_connection_lost = pipe_connection_lost,
                                  .pipe_data_received = pipe_data_received,
                                  .process_exited = process_exited};
    /* stdout into a pipe; stdin and stderr are the parent's (None). */
    reel_subprocess_opts o = {.stdio = {REEL_INHERIT, REEL_PIPE, REEL_INHERIT}};
    const char *const argv[] = {"date", NULL};
    reel_subprocess *transport;
    int rc = reel_subprocess_exec(&p, argv, &o, &transport);
    if (rc == 0) {
        rc = reel_await(d->exit_future, NULL);
        reel_subprocess_close(transport);   /* close the stdout pipe */
        reel_subprocess_release(transport);
    }
    reel_future_release(d->exit_future);
    while (d->len && (d->output[d->len - 1] == '\n' || d->output[d->len - 1] == ' '))
        d->len--;   /* .rstrip() */
    d->output[d->len] = '\0';
    return rc;
}

int main(void)
{
    date_protocol d = {0};
    int rc = reel_run(get_date, &d, NULL);
    if (rc < 0) {
        fprintf(stderr, "%s\n", reel_strerror(rc));
        return 1;
    }
    printf("Current date: %s\n", d.output);
    return 0;
}
