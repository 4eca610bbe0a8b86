/* asyncio docs, Event Loop > "Executing code in thread or process pools":
 * loop.run_in_executor with the default and a custom thread pool. C has
 * no process pool, so the CPU-bound job (option 3) runs in a thread pool.
 *
 *   def blocking_io():
 *       # File operations (such as logging) can block the
 *       # event loop: run them in a thread pool.
 *       with open('/dev/urandom', 'rb') as f:
 *           return f.read(100)
 *
 *   def cpu_bound():
 *       # CPU-bound operations will block the event loop:
 *       # in general it is preferable to run them in a
 *       # process pool.
 *       return sum(i * i for i in range(10 ** 7))
 *
 *   async def main():
 *       loop = asyncio.get_running_loop()
 *
 *       ## Options:
 *
 *       # 1. Run in the default loop's executor:
 *       result = await loop.run_in_executor(
 *           None, blocking_io)
 *       print('default thread pool', result)
 *
 *       # 2. Run in a custom thread pool:
 *       with concurrent.futures.ThreadPoolExecutor() as pool:
 *           result = await loop.run_in_executor(
 *               pool, blocking_io)
 *           print('custom thread pool', result)
 *
 *       # 3. Run in a custom process pool:
 *       with concurrent.futures.ProcessPoolExecutor() as pool:
 *           result = await loop.run_in_executor(
 *               pool, cpu_bound)
 *           print('custom process pool', result)
 *
 *   if __name__ == '__main__':
 *       asyncio.run(main())
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <reel.h>

static int blocking_io(void *arg, void **result)
{
    (void)arg;
    FILE *f = fopen("/dev/urandom", "rb");
    unsigned char *buf = malloc(100);
    size_t n = f && buf ? fread(buf, 1, 100, f) : 0;
    if (f)
        fclose(f);
    if (n != 100) {
        free(buf);
        return -EIO;
    }
    *result = buf;   /* owned by whoever awaits it */
    return 0;
}

static int cpu_bound(void *arg, void **result)
{
    (void)arg;
    uint64_t sum = 0;
    for (uint64_t i = 0; i < 1000000; i++)   /* 10**6: the sum fits 64 bits */
        sum += i * i;
    *result = (void *)(uintptr_t)sum;
    return 0;
}

static void print_bytes(const char *what, const unsigned char *b)
{
    printf("%s %02x%02x%02x%02x... (100 bytes)\n", what, b[0], b[1], b[2], b[3]);
}

static int main_task(void *arg, void **result)
{
    (void)arg; (void)result;
    /* 1. Run in the default loop's executor: */
    void *r;
    int rc = reel_run_in_executor(NULL, blocking_io, NULL, &r);
    if (rc < 0)
        return rc;
    print_bytes("default thread pool", r);
    free(r);
    /* 2. Run in a custom thread pool: */
    reel_executor *pool;
    if ((rc = reel_thread_pool_executor_new(reel_get_running_loop(), 0, &pool)) < 0)
        return rc;
    if ((rc = reel_run_in_executor(pool, blocking_io, NULL, &r)) == 0) {
        print_bytes("custom thread pool", r);
        free(r);
    }
    /* 3. CPU-bound work, also in the thread pool: */
    if (rc == 0 && (rc = reel_run_in_executor(pool, cpu_bound, NULL, &r)) == 0)
        printf("custom thread pool %llu\n", (unsigned long long)(uintptr_t)r);
    reel_executor_shutdown(pool);   /* the end of the with block */
    reel_executor_release(pool);
    return rc;
}

int main(void)
{
    int rc = reel_run(main_task, NULL, NULL);
    if (rc < 0)
        fprintf(stderr, "%s\n", reel_strerror(rc));
    return rc < 0;
}
