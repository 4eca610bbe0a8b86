/* fuzz/driver.c — a main() for the fuzz harnesses when libFuzzer does not
 * provide one:
 *   - under AFL++ (afl-clang-fast defines __AFL_FUZZ_TESTCASE_LEN): the
 *     persistent-mode loop, inputs from shared memory;
 *   - otherwise: replay every file named on the command line, and every
 *     file in directories named there (sorted), once each: the committed
 *     corpus as a regression test. Fails if it found no input at all. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef __AFL_FUZZ_TESTCASE_LEN
__AFL_FUZZ_INIT();

int main(void)
{
    __AFL_INIT();
    unsigned char *buf = __AFL_FUZZ_TESTCASE_BUF;
    while (__AFL_LOOP(10000))
        LLVMFuzzerTestOneInput(buf, (size_t)__AFL_FUZZ_TESTCASE_LEN);
    return 0;
}
#else
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1 << 16, n = 0, k;
    uint8_t *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0)
        if ((n += k) == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    fclose(f);
    if (!buf)
        return -1;
    /* An exact-size copy, so a read past the end is caught by tools. */
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) < 0)
                return 1;
            files++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, NULL);
        if (n < 0) {
            perror(argv[i]);
            return 1;
        }
        char **paths = calloc((size_t)n, sizeof *paths);
        int m = 0;
        for (int j = 0; j < n; j++) {
            if (names[j]->d_name[0] != '.' && asprintf(&paths[m], "%s/%s", argv[i], names[j]->d_name) >= 0)
                m++;
            free(names[j]);
        }
        free(names);
        qsort(paths, (size_t)m, sizeof *paths, cmp);
        for (int j = 0; j < m; j++) {
            if (run_file(paths[j]) < 0)
                return 1;
            files++;
            free(paths[j]);
        }
        free(paths);
    }
    printf("%s: %d input%s ran cleanly\n", argv[0], files, files == 1 ? "" : "s");
    return files ? 0 : 1;
}
#endif
