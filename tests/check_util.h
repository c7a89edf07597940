/*
 * check_util.h — the one way tests compare floats (header-only).
 *
 * An accumulator walks the elements once and keeps the largest error and
 * where it is.  NaN or Inf on either side is an infinite error, so it fails
 * at every tolerance, and every test is written !(err <= tol), so that even
 * a NaN error that slipped through could not pass.  (fmax() and `if (d >
 * worst)` both drop NaN: a tensor of NaN would compare as error 0.)
 *
 *   struct check_acc a = check_begin(1e-6);       floor for the divisors
 *   for (...) check_add(&a, got, want);           one element at a time
 *   (check_add_scaled(&a, got, want, unit): CHECK_REL error |got-want|/unit)
 *   check_expect(&a, "conv fwd", CHECK_NORM, 1e-4);
 *
 * or for whole arrays  check_f32("logits", got, want, n, CHECK_NORM, 1e-4).
 *
 * Error kinds (the floor keeps a divisor away from zero):
 *   CHECK_ABS   max |got - want|
 *   CHECK_NORM  max |got - want| / max(max |want|, floor)   (normalised)
 *   CHECK_REL   max over elements of |got - want| / max(|want|, floor)
 *
 * check_expect prints one line "largest error WHAT ERR (...)" with the
 * element, both values and the tolerance, and cr_expect()s err <= tol; it
 * returns the error.
 */
#ifndef DEEPER_TESTS_CHECK_UTIL_H
#define DEEPER_TESTS_CHECK_UTIL_H

#include <criterion/criterion.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>

enum check_kind { CHECK_ABS, CHECK_NORM, CHECK_REL };

struct check_acc {
    double floor;                /* divisor floor for CHECK_NORM / CHECK_REL */
    size_t n;                    /* elements seen */
    double abs; size_t abs_at;   /* largest |got - want| and its element */
    double abs_got, abs_want;
    double rel; size_t rel_at;   /* largest |got - want| / max(|want|, floor) */
    double rel_got, rel_want;
    double ref_max;              /* max |want| */
    size_t bad, bad_at;          /* non-finite elements (either side), first one */
    double bad_got, bad_want;
};

static inline struct check_acc check_begin(double floor)
{
    struct check_acc a = { 0 };
    a.floor = floor;
    return a;
}

/* One element whose relative error is |got - want| / scale (scale: the
 * element's own tolerance unit); check_add uses max(|want|, floor). */
static inline void check_add_scaled(struct check_acc *a, double got, double want, double scale)
{
    size_t i = a->n++;
    if (!isfinite(got) || !isfinite(want)) {
        if (a->bad++ == 0) { a->bad_at = i; a->bad_got = got; a->bad_want = want; }
        return;
    }
    double d = fabs(got - want);
    int first = a->n - a->bad == 1;     /* the first finite element sets where */
    if (first || !(d <= a->abs)) { a->abs = d; a->abs_at = i; a->abs_got = got; a->abs_want = want; }
    double r = d == 0 ? 0 : d / scale;  /* d > 0 over a zero scale: Inf, a failure */
    if (first || !(r <= a->rel)) { a->rel = r; a->rel_at = i; a->rel_got = got; a->rel_want = want; }
    if (fabs(want) > a->ref_max) a->ref_max = fabs(want);
}

static inline void check_add(struct check_acc *a, double got, double want)
{
    check_add_scaled(a, got, want, fmax(fabs(want), a->floor));
}

/* The error of one kind; INFINITY when any element was NaN or Inf. */
static inline double check_err(const struct check_acc *a, enum check_kind k)
{
    if (a->bad) return INFINITY;
    switch (k) {
    case CHECK_ABS: return a->abs;
    case CHECK_NORM: {
        double m = a->ref_max > a->floor ? a->ref_max : a->floor;
        return m > 0 ? a->abs / m : a->abs;
    }
    case CHECK_REL: return a->rel;
    }
    return INFINITY;
}

static inline double check_expect(const struct check_acc *a, const char *what, enum check_kind k, double tol)
{
    double e = check_err(a, k);
    static const char *kn[] = { "abs", "normalised", "relative" };
    if (a->bad) {
        printf("largest error %-34s inf (%zu of %zu elements non-finite, first at %zu: got %.9g want %.9g; tol %.1e)\n",
               what, a->bad, a->n, a->bad_at, a->bad_got, a->bad_want, tol);
    } else if (k == CHECK_REL) {
        printf("largest error %-34s %.3e (%s, at %zu of %zu: got %.9g want %.9g; tol %.1e)\n", what, e, kn[k],
               a->rel_at, a->n, a->rel_got, a->rel_want, tol);
    } else {
        printf("largest error %-34s %.3e (%s, abs %.3g at %zu of %zu: got %.9g want %.9g; tol %.1e)\n", what, e,
               kn[k], a->abs, a->abs_at, a->n, a->abs_got, a->abs_want, tol);
    }
    cr_expect(e <= tol, "%s: %s error %.3e > %.1e (%zu non-finite of %zu)", what, kn[k], e, tol, a->bad, a->n);
    return e;
}

/* Whole float arrays. */
static inline double check_f32(const char *what, const float *got, const float *want, size_t n, enum check_kind k,
                               double tol)
{
    struct check_acc a = check_begin(1e-12);
    for (size_t i = 0; i < n; i++) check_add(&a, got[i], want[i]);
    return check_expect(&a, what, k, tol);
}

/* The error of two float arrays without asserting (NaN/Inf: INFINITY);
 * *where (optional) gets the element of the largest error. */
static inline double check_err_f32(const float *got, const float *want, size_t n, enum check_kind k, double floor,
                                   size_t *where)
{
    struct check_acc a = check_begin(floor);
    for (size_t i = 0; i < n; i++) check_add(&a, got[i], want[i]);
    if (where) *where = a.bad ? a.bad_at : k == CHECK_REL ? a.rel_at : a.abs_at;
    return check_err(&a, k);
}

/* One value: relative error |got - want| / max(|want|, floor). */
static inline double check_scalar(const char *what, double got, double want, double floor, double tol)
{
    struct check_acc a = check_begin(floor);
    check_add(&a, got, want);
    return check_expect(&a, what, CHECK_REL, tol);
}

#endif
