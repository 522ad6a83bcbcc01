/*
 * harness.h - a tiny single-header test harness for conformance programs.
 *
 * Each conformance program tests observable Linux behaviour. It must pass
 * natively, and the sandbox must produce exactly the same stdout and exit
 * status (tests/tests/conformance.rs checks both).
 *
 *   #include "harness.h"
 *
 *   TEST(open_missing) {
 *       EXPECT_ERRNO(open("/nonexistent", O_RDONLY), ENOENT);
 *   }
 *
 * Tests run in source order (sorted by line number). Output on stdout:
 *   FAIL <test>: <file>:<line>: <what>     one line per failed expectation
 *   SKIP <test>: <reason>                  a skipped test (counts as passed)
 *   N passed, N failed                     always the last line
 * The exit status is 0 only if no test failed.
 *
 * Arguments: any non-option argument is a substring filter on test names;
 * -v prints "RUN <test>" on stderr before each test (useful when a test
 * crashes the sandbox). Environment: HARNESS_VERBOSE=1 is the same as -v.
 *
 * Rules for tests: deterministic (native == sandbox), no writes to the host
 * filesystem (tests also run natively, as root),
 * stdin/stdout may be pipes. Values that differ between hosts are compared for
 * structure, never against constants.
 */
#ifndef CONFORMANCE_HARNESS_H
#define CONFORMANCE_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*harness_fn)(void);

struct harness_test {
    const char *name;
    harness_fn fn;
    int line;
};

#define HARNESS_MAX_TESTS 512

static struct harness_test harness_tests[HARNESS_MAX_TESTS];
static int harness_ntests;
static const char *harness_current = "?";
static int harness_current_failed;
static int harness_current_skipped;

/* argc/argv/envp of main, for tests that look at the initial process state. */
static int harness_argc;
static char **harness_argv;
static char **harness_envp;

static void harness_register(const char *name, harness_fn fn, int line)
{
    if (harness_ntests >= HARNESS_MAX_TESTS) {
        fprintf(stderr, "harness: too many tests\n");
        exit(2);
    }
    harness_tests[harness_ntests].name = name;
    harness_tests[harness_ntests].fn = fn;
    harness_tests[harness_ntests].line = line;
    harness_ntests++;
}

#define TEST(name)                                                           \
    static void harness_test_##name(void);                                   \
    __attribute__((constructor)) static void harness_reg_##name(void)        \
    {                                                                        \
        harness_register(#name, harness_test_##name, __LINE__);              \
    }                                                                        \
    static void harness_test_##name(void)

static const char *harness_errname(int e)
{
    const char *n = e ? strerrorname_np(e) : "0";
    return n ? n : "E?";
}

#define HARNESS_FAIL(...)                                                    \
    do {                                                                     \
        harness_current_failed = 1;                                          \
        printf("FAIL %s: %s:%d: ", harness_current, __FILE__, __LINE__);     \
        printf(__VA_ARGS__);                                                 \
        printf("\n");                                                        \
        fflush(stdout);                                                      \
    } while (0)

/* Record a failure (message printf-style) without returning. */
#define FAIL(...) HARNESS_FAIL(__VA_ARGS__)

/* Skip the rest of the current test. Counts as passed; printed as SKIP. */
#define SKIP(...)                                                            \
    do {                                                                     \
        harness_current_skipped = 1;                                         \
        printf("SKIP %s: ", harness_current);                                \
        printf(__VA_ARGS__);                                                 \
        printf("\n");                                                        \
        return;                                                              \
    } while (0)

#define HARNESS_CMP(a, op, b, onfail)                                        \
    do {                                                                     \
        errno = 0;                                                           \
        long long _ha = (long long)(a);                                      \
        int _he = errno;                                                     \
        long long _hb = (long long)(b);                                      \
        if (!(_ha op _hb)) {                                                 \
            HARNESS_FAIL("expected %s %s %s, got %lld (0x%llx) vs %lld "     \
                         "(0x%llx) [errno %s]",                              \
                         #a, #op, #b, _ha, (unsigned long long)_ha, _hb,     \
                         (unsigned long long)_hb, harness_errname(_he));     \
            onfail;                                                          \
        }                                                                    \
    } while (0)

#define EXPECT_EQ(a, b) HARNESS_CMP(a, ==, b, (void)0)
#define EXPECT_NE(a, b) HARNESS_CMP(a, !=, b, (void)0)
#define EXPECT_LT(a, b) HARNESS_CMP(a, <, b, (void)0)
#define EXPECT_LE(a, b) HARNESS_CMP(a, <=, b, (void)0)
#define EXPECT_GT(a, b) HARNESS_CMP(a, >, b, (void)0)
#define EXPECT_GE(a, b) HARNESS_CMP(a, >=, b, (void)0)
#define ASSERT_EQ(a, b) HARNESS_CMP(a, ==, b, return)
#define ASSERT_NE(a, b) HARNESS_CMP(a, !=, b, return)
#define ASSERT_GE(a, b) HARNESS_CMP(a, >=, b, return)
#define ASSERT_GT(a, b) HARNESS_CMP(a, >, b, return)

#define HARNESS_TRUE(cond, onfail)                                           \
    do {                                                                     \
        errno = 0;                                                           \
        if (!(cond)) {                                                       \
            int _he = errno;                                                 \
            HARNESS_FAIL("expected %s [errno %s]", #cond,                    \
                         harness_errname(_he));                              \
            onfail;                                                          \
        }                                                                    \
    } while (0)

#define EXPECT_TRUE(cond) HARNESS_TRUE(cond, (void)0)
#define EXPECT_FALSE(cond) HARNESS_TRUE(!(cond), (void)0)
#define ASSERT_TRUE(cond) HARNESS_TRUE(cond, return)

/* expr must evaluate to 0 or more (a syscall that succeeds). */
#define HARNESS_OK(expr, onfail)                                             \
    do {                                                                     \
        errno = 0;                                                           \
        long long _hr = (long long)(expr);                                   \
        if (_hr < 0) {                                                       \
            int _he = errno;                                                 \
            HARNESS_FAIL("expected %s to succeed, got %lld errno %s", #expr, \
                         _hr, harness_errname(_he));                         \
            onfail;                                                          \
        }                                                                    \
    } while (0)

#define EXPECT_OK(expr) HARNESS_OK(expr, (void)0)
#define ASSERT_OK(expr) HARNESS_OK(expr, return)

/* expr must return -1 with errno == err (libc and syscall() convention). */
#define EXPECT_ERRNO(expr, err)                                              \
    do {                                                                     \
        errno = 0;                                                           \
        long long _hr = (long long)(expr);                                   \
        int _he = errno;                                                     \
        if (_hr != -1 || _he != (err)) {                                     \
            HARNESS_FAIL("expected %s to fail with %s, got %lld errno %s",   \
                         #expr, harness_errname(err), _hr,                   \
                         harness_errname(_he));                              \
        }                                                                    \
    } while (0)

/* For pthread-style calls that return the error number instead of -1. */
#define EXPECT_RET_ERR(expr, err)                                            \
    do {                                                                     \
        long long _hr = (long long)(expr);                                   \
        if (_hr != (err)) {                                                  \
            HARNESS_FAIL("expected %s to return %s, got %lld (%s)", #expr,   \
                         harness_errname(err), _hr,                          \
                         harness_errname((int)_hr));                         \
        }                                                                    \
    } while (0)

#define EXPECT_STREQ(a, b)                                                   \
    do {                                                                     \
        const char *_hsa = (a), *_hsb = (b);                                 \
        if (_hsa == NULL || _hsb == NULL || strcmp(_hsa, _hsb) != 0) {       \
            HARNESS_FAIL("expected %s == %s, got \"%s\" vs \"%s\"", #a, #b,  \
                         _hsa ? _hsa : "(null)", _hsb ? _hsb : "(null)");    \
        }                                                                    \
    } while (0)

#define EXPECT_MEMEQ(a, b, n)                                                \
    do {                                                                     \
        if (memcmp((a), (b), (n)) != 0) {                                    \
            HARNESS_FAIL("expected %zu bytes of %s == %s", (size_t)(n), #a,  \
                         #b);                                                \
        }                                                                    \
    } while (0)

static int harness_cmp_line(const void *a, const void *b)
{
    const struct harness_test *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return strcmp(x->name, y->name);
}

static char harness_stdout_buf[1 << 14];

int main(int argc, char **argv, char **envp)
{
    int verbose = 0, passed = 0, failed = 0;
    const char *filter = NULL;
    const char *ev = getenv("HARNESS_VERBOSE");

    /* A static buffer: printing never calls malloc (brk tests rely on it). */
    setvbuf(stdout, harness_stdout_buf, _IOLBF, sizeof harness_stdout_buf);
    harness_argc = argc;
    harness_argv = argv;
    harness_envp = envp;
    if (ev && *ev && strcmp(ev, "0") != 0)
        verbose = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = 1;
        else
            filter = argv[i];
    }

    qsort(harness_tests, harness_ntests, sizeof harness_tests[0],
          harness_cmp_line);
    for (int i = 0; i < harness_ntests; i++) {
        if (filter && !strstr(harness_tests[i].name, filter))
            continue;
        harness_current = harness_tests[i].name;
        harness_current_failed = 0;
        harness_current_skipped = 0;
        if (verbose) {
            fprintf(stderr, "RUN %s\n", harness_current);
            fflush(stderr);
        }
        harness_tests[i].fn();
        fflush(stdout);
        if (harness_current_failed)
            failed++;
        else
            passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed == 0 ? 0 : 1;
}

#endif /* CONFORMANCE_HARNESS_H */
