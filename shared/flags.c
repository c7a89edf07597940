/*
 * flags.c — the table-driven flag parser described in flags.h.
 */
#include "shared/flags.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Compare a user-typed name (dashes allowed, length n) with a table name. */
static int flag_name_eq(const char *typed, size_t n, const char *name)
{
    if (strlen(name) != n) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = typed[i] == '-' ? '_' : typed[i];
        if (c != name[i]) return 0;
    }
    return 1;
}

static const struct flag *flags_find(const struct flags_spec *spec, const char *typed, size_t n)
{
    for (int i = 0; i < spec->nflags; i++)
        if (flag_name_eq(typed, n, spec->flags[i].name)) return &spec->flags[i];
    return NULL;
}

static status flag_set_bool(const struct flag *f, const char *v)
{
    int *dst = f->value;
    if (!v || !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes")) *dst = 1;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no")) *dst = 0;
    else return FAIL(STATUS_USAGE, "--%s: '%s' is not a boolean (true/false)", f->name, v);
    return STATUS_OK;
}

static status flag_set(const struct flag *f, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case FLAG_BOOL:
        return flag_set_bool(f, v);
    case FLAG_INT: {
        long x = strtol(v, &end, 10);
        if (!*v || *end || errno || x < -2147483647L || x > 2147483647L)
            return FAIL(STATUS_USAGE, "--%s: '%s' is not an integer", f->name, v);
        *(int *)f->value = (int)x;
        return STATUS_OK;
    }
    case FLAG_INT64: {
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno)
            return FAIL(STATUS_USAGE, "--%s: '%s' is not an integer", f->name, v);
        *(int64_t *)f->value = x;
        return STATUS_OK;
    }
    case FLAG_FLOAT:
    case FLAG_DOUBLE: {
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x))
            return FAIL(STATUS_USAGE, "--%s: '%s' is not a number", f->name, v);
        if (f->type == FLAG_FLOAT) *(float *)f->value = (float)x;
        else *(double *)f->value = x;
        return STATUS_OK;
    }
    case FLAG_STRING:
        *(const char **)f->value = v;
        return STATUS_OK;
    }
    return FAIL(STATUS_USAGE, "--%s: unknown flag type", f->name);
}

status flags_parse(const struct flags_spec *spec, int argc, char **argv, char **pos, int *npos)
{
    int np = 0, only_pos = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || !strcmp(a, "-")) {
            if (spec->max_positional >= 0 && np >= spec->max_positional)
                return FAIL(STATUS_USAGE, "unexpected argument '%s' (see %s --help)", a, spec->prog);
            if (pos) pos[np] = a;
            np++;
            continue;
        }
        if (!strcmp(a, "--")) { only_pos = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help") || !strcmp(a, "-help")) {
            flags_print_help(spec, stdout);
            return STATUS_HELP;
        }
        const char *name = a + 1;
        if (*name == '-') name++;           /* accept -flag and --flag, as absl does */
        const char *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        const struct flag *f = flags_find(spec, name, n);
        const char *val = eq ? eq + 1 : NULL;
        if (!f && n > 2 && name[0] == 'n' && name[1] == 'o') {
            /* --noflag / --no_flag / --no-flag for booleans */
            size_t skip = (name[2] == '_' || name[2] == '-') ? 3 : 2;
            const struct flag *g = flags_find(spec, name + skip, n - skip);
            if (g && g->type == FLAG_BOOL && !eq) {
                *(int *)g->value = 0;
                if (g->was_set) *g->was_set = 1;
                continue;
            }
        }
        if (!f)
            return FAIL(STATUS_USAGE, "unknown flag '--%.*s' (see %s --help)", (int)n, name, spec->prog);
        if (!val && f->type != FLAG_BOOL) {
            if (i + 1 >= argc)
                return FAIL(STATUS_USAGE, "--%s needs a value", f->name);
            val = argv[++i];
        }
        TRY(flag_set(f, val));
        if (f->was_set) *f->was_set = 1;
    }
    if (np < spec->min_positional)
        return FAIL(STATUS_USAGE, "missing argument: usage: %s %s", spec->prog, spec->usage ? spec->usage : "");
    if (npos) *npos = np;
    return STATUS_OK;
}

void flags_print_help(const struct flags_spec *spec, FILE *out)
{
    fprintf(out, "usage: %s %s\n", spec->prog, spec->usage ? spec->usage : "[flags]");
    if (spec->summary) fprintf(out, "\n%s\n", spec->summary);
    if (spec->nflags) fprintf(out, "\nflags (underscores or dashes; --flag=value or --flag value):\n");
    for (int i = 0; i < spec->nflags; i++) {
        const struct flag *f = &spec->flags[i];
        char def[96];
        switch (f->type) {
        case FLAG_BOOL:   snprintf(def, sizeof def, "%s", *(int *)f->value ? "true" : "false"); break;
        case FLAG_INT:    snprintf(def, sizeof def, "%d", *(int *)f->value); break;
        case FLAG_INT64:  snprintf(def, sizeof def, "%lld", (long long)*(int64_t *)f->value); break;
        case FLAG_FLOAT:  snprintf(def, sizeof def, "%g", (double)*(float *)f->value); break;
        case FLAG_DOUBLE: snprintf(def, sizeof def, "%g", *(double *)f->value); break;
        case FLAG_STRING: {
            const char *s = *(const char **)f->value;
            snprintf(def, sizeof def, "%s%s%s", s ? "\"" : "", s ? s : "none", s ? "\"" : "");
            break;
        }
        }
        if (f->help && strstr(f->help, "default:"))   /* the help text says where the default comes from */
            fprintf(out, "  --%-34s %s\n", f->name, f->help);
        else
            fprintf(out, "  --%-34s %s (default: %s)\n", f->name, f->help ? f->help : "", def);
    }
}
