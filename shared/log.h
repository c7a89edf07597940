/*
 * log.h — TF-style log lines and progress bars.
 *
 * Every line starts with a local timestamp the way inception_train.py prints
 * datetime.now():  "2026-11-25 03:55:02.123456: step 10, loss = 2.31 (...)".
 * log_info goes to stderr so stdout stays free for results a script may parse
 * (dataset summaries, precision lines, classify output are printed with plain
 * printf by the programs).  log_set_quiet(1) silences info lines.
 *
 * Progress: on a TTY a single redrawn line with a bar, count, rate and ETA;
 * otherwise one plain line every `DEEPER_PROGRESS_SECS` seconds (default 5)
 * and a final line.  A progress object is used from one thread.
 */
#ifndef DEEPER_LOG_H
#define DEEPER_LOG_H

#include <stdint.h>

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_set_quiet(int quiet);

/* Format the current local time as "YYYY-MM-DD HH:MM:SS.ffffff" into buf (>= 32 bytes). */
void log_timestamp(char *buf, int size);

/* Seconds since an arbitrary monotonic origin. */
double log_now(void);

struct progress {
    const char *label;
    int64_t total;          /* 0 when unknown */
    int64_t done;
    double start, last_draw;
    int tty;
    double interval;        /* seconds between non-TTY lines */
    const char *unit;       /* "img", "batches", ... */
};

void progress_start(struct progress *p, const char *label, int64_t total, const char *unit);
void progress_update(struct progress *p, int64_t done);  /* cheap when nothing is drawn */
void progress_finish(struct progress *p);

#endif
