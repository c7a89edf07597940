/*
 * augment_flags.c — the distortion switches shared by augment, train and
 * eval (see augment_flags.h).
 */
#include "shared/augment_flags.h"

#include <stdio.h>
#include <string.h>

struct augment_flags augment_flags_none(void)
{
    struct augment_flags a;
    memset(&a, 0, sizeof a);
    a.flip = a.color = a.crop = 1;   /* shown by --help only when given as --flip etc. */
    return a;
}

void augment_flags_table(struct augment_flags *a, struct flag *out)
{
    const struct flag t[AUGMENT_FLAGS_N] = {
        { "flip", FLAG_BOOL, &a->flip, "random left-right flips (" AUGMENT_FLAGS_FROM_PROFILE ")", &a->flip_set },
        { "no_flip", FLAG_BOOL, &a->no_flip, "no flips (" AUGMENT_FLAGS_FROM_PROFILE ")", NULL },
        { "color", FLAG_BOOL, &a->color, "colour distortions (" AUGMENT_FLAGS_FROM_PROFILE ")", &a->color_set },
        { "no_color", FLAG_BOOL, &a->no_color, "no colour distortions (" AUGMENT_FLAGS_FROM_PROFILE ")", NULL },
        { "crop", FLAG_BOOL, &a->crop, "random crops (" AUGMENT_FLAGS_FROM_PROFILE ")", &a->crop_set },
        { "no_crop", FLAG_BOOL, &a->no_crop, "no random crops, the whole image resized (" AUGMENT_FLAGS_FROM_PROFILE ")",
          NULL },
    };
    memcpy(out, t, sizeof t);
}

status augment_flags_check(const struct augment_flags *a)
{
    if (a->flip_set && a->flip && a->no_flip) return FAIL(STATUS_USAGE, "--flip contradicts --no_flip");
    if (a->color_set && a->color && a->no_color) return FAIL(STATUS_USAGE, "--color contradicts --no_color");
    if (a->crop_set && a->crop && a->no_crop) return FAIL(STATUS_USAGE, "--crop contradicts --no_crop");
    return STATUS_OK;
}

/* -1: from the profile; 0 off; 1 on */
static int setting(int v, int set, int no) { return no ? 0 : set ? (v != 0) : -1; }

int augment_flags_argv(const struct augment_flags *a, const char **argv)
{
    int n = 0;
    int s[3] = { setting(a->flip, a->flip_set, a->no_flip), setting(a->color, a->color_set, a->no_color),
                 setting(a->crop, a->crop_set, a->no_crop) };
    static const char *on[3] = { "--flip", "--color", "--crop" }, *off[3] = { "--no_flip", "--no_color", "--no_crop" };
    for (int i = 0; i < 3; i++)
        if (s[i] >= 0) argv[n++] = s[i] ? on[i] : off[i];
    return n;
}

void augment_flags_tristate(const struct augment_flags *a, int8_t *flip, int8_t *color, int8_t *crop)
{
    *flip = (int8_t)setting(a->flip, a->flip_set, a->no_flip);
    *color = (int8_t)setting(a->color, a->color_set, a->no_color);
    *crop = (int8_t)setting(a->crop, a->crop_set, a->no_crop);
}

void augment_flags_describe(const struct augment_flags *a, char *buf, int size)
{
    int s[3] = { setting(a->flip, a->flip_set, a->no_flip), setting(a->color, a->color_set, a->no_color),
                 setting(a->crop, a->crop_set, a->no_crop) };
    static const char *name[3] = { "flip", "color", "crop" };
    int o = 0;
    for (int i = 0; i < 3 && o < size; i++)
        o += snprintf(buf + o, (size_t)(size - o), "%s%s %s", i ? ", " : "", name[i],
                      s[i] < 0 ? "from the dataset's profile" : s[i] ? "on (flag)" : "off (flag)");
}
