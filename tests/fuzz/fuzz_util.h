/*
 * fuzz_util.h — small helpers shared by the libFuzzer targets in this folder.
 *
 * Every target is one file, fuzz_<name>.c, with LLVMFuzzerTestOneInput and a
 * prose header saying what it feeds where and which property it checks
 * beyond "no memory error" (AddressSanitizer and UndefinedBehaviorSanitizer
 * catch those).  A property violation calls fuzz_fail(), which aborts, so
 * libFuzzer records the input as a crash.
 *
 * Code under test that wants a path gets an anonymous in-memory file
 * (memfd) named /proc/self/fd/N: no disk traffic, nothing left behind.
 */
#ifndef DEEPER_FUZZ_UTIL_H
#define DEEPER_FUZZ_UTIL_H
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/status.h"

__attribute__((noreturn, format(printf, 1, 2))) static inline void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz property violated: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

/* A failing call must leave one line of text saying why. */
static inline void fuzz_check_failure(status st, const char *what)
{
    if (st == STATUS_OK) return;
    const char *m = status_msg();
    if (!m || !m[0]) fuzz_fail("%s failed (%s) without a message", what, status_str(st));
    if (strchr(m, '\n')) fuzz_fail("%s: message is more than one line: %s", what, m);
}

/* An in-memory file holding data[0..n); *path gets "/proc/self/fd/N".
 * Returns the descriptor (close it when done) or -1. */
static inline int fuzz_memfile(const uint8_t *data, size_t n, char *path, size_t cap)
{
    int fd = memfd_create("fuzz", 0);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w <= 0) { close(fd); return -1; }
        off += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
