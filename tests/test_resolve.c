/* getaddrinfo / getnameinfo through the epoll backend's worker pool
 * (asyncio runs them in the default executor). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>

#include "helpers/net.h"

static void test_getaddrinfo_localhost_off_thread(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *f;
    assert_int_equal(reel_loop_getaddrinfo(loop, "localhost", "80", AF_INET, SOCK_STREAM, 0, 0, &f), 0);
    assert_false(reel_future_done(f)); /* completes through poll */
    assert_int_equal(th_wait(loop, f), 0);
    void *res;
    assert_int_equal(reel_future_take_result(f, &res), 0);
    reel_future_release(f);
    struct addrinfo *ai = res;
    assert_non_null(ai);
    assert_int_equal(ai->ai_family, AF_INET);
    assert_int_equal(ai->ai_socktype, SOCK_STREAM);
    struct sockaddr_in *sin = (struct sockaddr_in *)ai->ai_addr;
    assert_int_equal(ntohs(sin->sin_port), 80);
    assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    reel_addrinfo_free(ai);
    th_loop_free(loop);
}

static void test_getaddrinfo_passive_and_numeric(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *f;
    assert_int_equal(reel_loop_getaddrinfo(loop, NULL, "8080", AF_INET, SOCK_STREAM, 0, AI_PASSIVE, &f), 0);
    assert_int_equal(th_wait(loop, f), 0);
    void *res;
    reel_future_result(f, &res); /* owned by the future */
    struct sockaddr_in *sin = (struct sockaddr_in *)((struct addrinfo *)res)->ai_addr;
    assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
    reel_future_release(f);
    assert_int_equal(reel_loop_getaddrinfo(loop, "::1", "443", AF_INET6, SOCK_STREAM, 0,
                                           AI_NUMERICHOST | AI_NUMERICSERV, &f), 0);
    assert_int_equal(th_wait(loop, f), 0);
    reel_future_result(f, &res);
    assert_int_equal(((struct addrinfo *)res)->ai_family, AF_INET6);
    reel_future_release(f);
    th_loop_free(loop);
}

static void test_getaddrinfo_failure_is_gaierror(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *f;
    assert_int_equal(reel_loop_getaddrinfo(loop, "not an address", "80", 0, 0, 0, AI_NUMERICHOST, &f), 0);
    int rc = th_wait(loop, f);
    assert_int_equal(rc, REEL_EGAI(EAI_NONAME));
    assert_string_equal(reel_strerror(rc), gai_strerror(EAI_NONAME));
    assert_non_null(strstr(reel_future_exception(f)->message, "getaddrinfo('not an address', 80) failed"));
    reel_future_release(f);
    th_loop_free(loop);
}

static void test_getnameinfo_numeric(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8080),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    reel_future *f;
    assert_int_equal(reel_loop_getnameinfo(loop, (struct sockaddr *)&sin, sizeof sin,
                                           NI_NUMERICHOST | NI_NUMERICSERV, &f), 0);
    assert_int_equal(th_wait(loop, f), 0);
    void *res;
    reel_future_result(f, &res);
    reel_nameinfo *ni = res;
    assert_string_equal(ni->host, "127.0.0.1");
    assert_string_equal(ni->serv, "8080");
    reel_future_release(f);
    /* through a worker: a name lookup of loopback */
    assert_int_equal(reel_loop_getnameinfo(loop, (struct sockaddr *)&sin, sizeof sin, NI_NUMERICSERV, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    assert_int_equal(reel_loop_getnameinfo(loop, NULL, 0, 0, &f), -EINVAL);
    th_loop_free(loop);
}

/* Many lookups at once share the small pool; all complete, in any order. */
static void test_getaddrinfo_many_concurrent(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    enum { n = 32 };
    reel_future *f[n];
    for (int i = 0; i < n; i++)
        assert_int_equal(reel_loop_getaddrinfo(loop, "localhost", "1", AF_INET, SOCK_STREAM, 0, 0, &f[i]), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(th_wait_release(loop, f[i], NULL), 0);
    th_loop_free(loop);
}

/* Cancelling, or closing the loop, while a lookup runs on a worker leaks
 * nothing (the backend finishes it and hands it back). */
static void test_getaddrinfo_cancel_and_close_while_running(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *a, *b;
    assert_int_equal(reel_loop_getaddrinfo(loop, "localhost", "1", 0, 0, 0, 0, &a), 0);
    assert_int_equal(reel_loop_getaddrinfo(loop, "localhost", "2", 0, 0, 0, 0, &b), 0);
    assert_true(reel_future_cancel(a, NULL));
    assert_int_equal(th_wait_release(loop, a, NULL), REEL_ECANCELLED);
    th_spin(loop, 1);
    assert_int_equal(reel_loop_close(loop), 0); /* b may still be on a worker */
    assert_true(reel_future_done(b)); /* resolved already, or cancelled */
    reel_future_release(b);
    reel_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_getaddrinfo_localhost_off_thread),
        cmocka_unit_test(test_getaddrinfo_passive_and_numeric),
        cmocka_unit_test(test_getaddrinfo_failure_is_gaierror),
        cmocka_unit_test(test_getnameinfo_numeric),
        cmocka_unit_test(test_getaddrinfo_many_concurrent),
        cmocka_unit_test(test_getaddrinfo_cancel_and_close_while_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
