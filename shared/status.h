/*
 * status.h — error codes with messages, the project's error wall.
 *
 * Two kinds of failure (zguide, "Handling Errors"):
 *   - programmer errors (a broken invariant) go through ASSERT, which is always
 *     on, prints file:line and aborts;
 *   - environmental errors (I/O, a corrupt record, LMDB, ZeroMQ, CUDA, bad
 *     usage) are returned as a `status`.  0 is STATUS_OK; failures are negative
 *     codes in a reserved range (-31000..-30900) that cannot collide with errno
 *     or LMDB's codes.  The function that detects the failure records one line
 *     of text with FAIL(), e.g.
 *
 *         return FAIL(STATUS_CORRUPT, "%s: record %llu: crc mismatch", path, key);
 *
 *     and callers either handle it or pass it up unchanged.  Only main() prints
 *     the message (status_msg()) and exits.
 *
 * The message buffer is thread-local: each thread keeps the last failure it
 * recorded.  Nothing here allocates.
 */
#ifndef DEEPER_STATUS_H
#define DEEPER_STATUS_H

#include <stdarg.h>

typedef enum status {
    STATUS_OK          = 0,
    STATUS_HELP        = 1,      /* --help was printed; main() exits 0 */
    STATUS_USAGE       = -30900, /* bad flags or arguments */
    STATUS_IO          = -30901, /* open/read/write/rename failed */
    STATUS_NOMEM       = -30902,
    STATUS_FORMAT      = -30903, /* input is not in the expected format */
    STATUS_CORRUPT     = -30904, /* checksum or structural check failed */
    STATUS_DECODE      = -30905, /* an image decoder refused the data */
    STATUS_TOO_BIG     = -30906, /* exceeds a configured limit (max_pixels, ...) */
    STATUS_UNSUPPORTED = -30907,
    STATUS_LMDB        = -30908,
    STATUS_ZMQ         = -30909,
    STATUS_CUDA        = -30910,
    STATUS_NOT_FOUND   = -30911,
    STATUS_INTERRUPTED = -30912, /* SIGINT/SIGTERM asked us to stop */
    STATUS_TIMEOUT     = -30913,
    STATUS_NAN         = -30914, /* training diverged */
    STATUS_STATE       = -30915, /* call not valid in this state */
    STATUS_NO_DEVICE   = -30916, /* asked for a GPU and there is none */
} status;

/* Record a failure message (printf-style) for this thread and return `code`.
 * The message is kept to one line: control characters (a newline in a name
 * quoted from a hostile file) become '?'. */
status status_fail(status code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
status status_failv(status code, const char *file, int line, const char *fmt, va_list ap);

#define FAIL(code, ...) status_fail((code), __FILE__, __LINE__, __VA_ARGS__)

/* Short name of a code ("corrupt", "io", ...). Static string. */
const char *status_str(status code);

/* The last message recorded by FAIL on this thread ("" if none). Borrowed;
 * valid until the next FAIL on this thread. */
const char *status_msg(void);

/* Where the last message was recorded ("shared/record.c:42"). Borrowed. */
const char *status_where(void);

void status_clear(void);

/* Propagate a failure unchanged. */
#define TRY(expr) do { status try_st_ = (expr); if (try_st_ != STATUS_OK) return try_st_; } while (0)

/* Always-on assertion for programmer errors. */
#define ASSERT(cond) do { if (!(cond)) status_assert_fail(#cond, __FILE__, __LINE__); } while (0)
#define ASSERTF(cond, ...) do { if (!(cond)) { status_assert_failf(__FILE__, __LINE__, __VA_ARGS__); } } while (0)
_Noreturn void status_assert_fail(const char *expr, const char *file, int line);
_Noreturn void status_assert_failf(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* For main(): print "PROG: error: MESSAGE" (plus "HINT: ..." when given) to
 * stderr and return the process exit code for `code` (0 for OK/HELP, 2 for
 * usage, 1 otherwise). */
int status_report(const char *prog, status code, const char *hint);

#endif
