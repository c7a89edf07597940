/*
 * log.c — timestamped lines and progress bars (see log.h).
 */
#include "shared/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_quiet;

void log_set_quiet(int quiet) { log_quiet = quiet; }

double log_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void log_timestamp(char *buf, int size)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char tmp[32];
    strftime(tmp, sizeof tmp, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf, (size_t)size, "%s.%06ld", tmp, (long)tv.tv_usec);
}

static void log_vline(const char *level, const char *fmt, va_list ap)
{
    char ts[40], msg[2048];
    log_timestamp(ts, sizeof ts);
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* one write per line so lines from several processes do not interleave */
    char line[2200];
    int n = snprintf(line, sizeof line, "%s: %s%s\n", ts, level, msg);
    if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
    fwrite(line, 1, (size_t)n, stderr);
    fflush(stderr);
}

void log_info(const char *fmt, ...)
{
    if (log_quiet) return;
    va_list ap; va_start(ap, fmt); log_vline("", fmt, ap); va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap; va_start(ap, fmt); log_vline("warning: ", fmt, ap); va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap; va_start(ap, fmt); log_vline("error: ", fmt, ap); va_end(ap);
}

void progress_start(struct progress *p, const char *label, int64_t total, const char *unit)
{
    memset(p, 0, sizeof *p);
    p->label = label;
    p->total = total;
    p->unit = unit ? unit : "";
    p->start = p->last_draw = log_now();
    p->tty = isatty(STDERR_FILENO) && !log_quiet;
    const char *iv = getenv("DEEPER_PROGRESS_SECS");
    p->interval = iv ? atof(iv) : 5.0;
    if (p->interval <= 0) p->interval = 5.0;
}

static void progress_fmt_secs(char *buf, size_t n, double s)
{
    if (s < 0 || s > 1e7) { snprintf(buf, n, "--:--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(buf, n, "%02ld:%02ld", t / 60, t % 60);
}

static void progress_draw(struct progress *p, double now, int final)
{
    double el = now - p->start;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[32], elapsed[32];
    progress_fmt_secs(elapsed, sizeof elapsed, el);
    if (p->total > 0 && rate > 0) progress_fmt_secs(eta, sizeof eta, (double)(p->total - p->done) / rate);
    else snprintf(eta, sizeof eta, "--:--");
    if (p->tty) {
        char bar[31];
        int filled = p->total > 0 ? (int)(30.0 * (double)p->done / (double)p->total) : 0;
        if (filled > 30) filled = 30;
        for (int i = 0; i < 30; i++) bar[i] = i < filled ? '#' : '.';
        bar[30] = 0;
        if (p->total > 0)
            fprintf(stderr, "\r%s [%s] %lld/%lld %s  %.1f %s/s  elapsed %s  ETA %s   ",
                    p->label, bar, (long long)p->done, (long long)p->total, p->unit, rate, p->unit, elapsed, eta);
        else
            fprintf(stderr, "\r%s %lld %s  %.1f %s/s  elapsed %s   ", p->label, (long long)p->done,
                    p->unit, rate, p->unit, elapsed);
        if (final) fputc('\n', stderr);
        fflush(stderr);
    } else if (!log_quiet) {
        if (p->total > 0)
            log_info("%s: %lld/%lld %s (%.0f%%), %.1f %s/s, elapsed %s, ETA %s", p->label,
                     (long long)p->done, (long long)p->total, p->unit,
                     100.0 * (double)p->done / (double)p->total, rate, p->unit, elapsed, eta);
        else
            log_info("%s: %lld %s, %.1f %s/s, elapsed %s", p->label, (long long)p->done, p->unit,
                     rate, p->unit, elapsed);
    }
}

void progress_update(struct progress *p, int64_t done)
{
    p->done = done;
    double now = log_now();
    double every = p->tty ? 0.2 : p->interval;
    if (now - p->last_draw < every) return;
    p->last_draw = now;
    progress_draw(p, now, 0);
}

void progress_finish(struct progress *p)
{
    progress_draw(p, log_now(), 1);
}
