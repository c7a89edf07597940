/*
 * status.c — thread-local failure messages and the code table.
 * See status.h for the error policy.
 */
#include "shared/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char status_msg_buf[1024];
static _Thread_local char status_where_buf[128];

status status_failv(status code, const char *file, int line, const char *fmt, va_list ap)
{
    /* Format into a scratch buffer first: callers may pass status_msg() (the
     * previous message) as an argument, e.g. FAIL(st, "%s: %s", path,
     * status_msg()), and vsnprintf into the buffer it reads from is undefined
     * (glibc overwrites the message while copying it). */
    char tmp[sizeof status_msg_buf];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    /* One line, whatever the input held: a name or value quoted from a file
     * (a JSON key, a tensor name) may carry control characters, shown as '?'. */
    for (char *c = tmp; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    memcpy(status_msg_buf, tmp, sizeof tmp);
    const char *base = file;
    /* keep "folder/file.c" only */
    const char *s = strrchr(file, '/');
    if (s) {
        const char *p = s;
        while (p > file && p[-1] != '/') p--;
        base = p;
    }
    snprintf(status_where_buf, sizeof status_where_buf, "%s:%d", base, line);
    return code;
}

status status_fail(status code, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    status_failv(code, file, line, fmt, ap);
    va_end(ap);
    return code;
}

const char *status_msg(void) { return status_msg_buf; }
const char *status_where(void) { return status_where_buf; }
void status_clear(void) { status_msg_buf[0] = 0; status_where_buf[0] = 0; }

const char *status_str(status code)
{
    switch (code) {
    case STATUS_OK:          return "ok";
    case STATUS_HELP:        return "help";
    case STATUS_USAGE:       return "usage";
    case STATUS_IO:          return "i/o error";
    case STATUS_NOMEM:       return "out of memory";
    case STATUS_FORMAT:      return "bad format";
    case STATUS_CORRUPT:     return "corrupt";
    case STATUS_DECODE:      return "decode error";
    case STATUS_TOO_BIG:     return "too big";
    case STATUS_UNSUPPORTED: return "unsupported";
    case STATUS_LMDB:        return "lmdb error";
    case STATUS_ZMQ:         return "zeromq error";
    case STATUS_CUDA:        return "cuda error";
    case STATUS_NOT_FOUND:   return "not found";
    case STATUS_INTERRUPTED: return "interrupted";
    case STATUS_TIMEOUT:     return "timeout";
    case STATUS_NAN:         return "diverged";
    case STATUS_STATE:       return "bad state";
    case STATUS_NO_DEVICE:   return "no device";
    }
    return "unknown status";
}

void status_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "%s:%d: internal error: assertion failed: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}

void status_assert_failf(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: internal error: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    abort();
}

int status_report(const char *prog, status code, const char *hint)
{
    if (code == STATUS_OK || code == STATUS_HELP) return 0;
    const char *msg = status_msg_buf[0] ? status_msg_buf : status_str(code);
    fprintf(stderr, "%s: error: %s\n", prog, msg);
    if (hint && hint[0]) fprintf(stderr, "HINT: %s\n", hint);
    return code == STATUS_USAGE ? 2 : 1;
}
