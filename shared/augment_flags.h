/*
 * augment_flags.h — the distortion switches of `deeper augment`, shared by
 * every program that starts augment workers.
 *
 * `deeper augment`, `deeper train` and `deeper eval` declare the same six
 * flags with the same names, help texts and meaning:
 *     --flip / --no_flip     random left-right flips
 *     --color / --no_color   colour distortions
 *     --crop / --no_crop     random crops (off: the whole image resized)
 * Each switch left off the command line takes the dataset profile's value
 * (recorded in the manifest by `deeper ingest --profile`).  train and eval
 * pass the switches given to them on to the workers they start, word for
 * word (augment_flags_argv), so a worker settles them exactly as it would
 * when started by hand.
 */
#ifndef DEEPER_AUGMENT_FLAGS_H
#define DEEPER_AUGMENT_FLAGS_H

#include <stdint.h>

#include "shared/flags.h"
#include "shared/status.h"

struct augment_flags {
    int flip, no_flip, color, no_color, crop, no_crop;
    int flip_set, color_set, crop_set;
};

#define AUGMENT_FLAGS_N 6
/* Help text of a switch whose default comes from the manifest. */
#define AUGMENT_FLAGS_FROM_PROFILE "default: from the dataset's profile"

/* Zeroed switches (everything from the profile). */
struct augment_flags augment_flags_none(void);
/* Write the six flag table entries for a into out[0..5]. */
void augment_flags_table(struct augment_flags *a, struct flag *out);
/* STATUS_USAGE for a switch given both ways (--flip with --no_flip). */
status augment_flags_check(const struct augment_flags *a);
/* Append the given switches (as augment spells them) to argv; returns how
 * many were appended (at most 3). */
int augment_flags_argv(const struct augment_flags *a, const char **argv);
/* Each switch as 1 (on), 0 (off) or -1 (the profile's), as the dispatcher
 * hands it to every worker it registers, local or remote. */
void augment_flags_tristate(const struct augment_flags *a, int8_t *flip, int8_t *color, int8_t *crop);
/* "flip on (flag), color from profile, crop off (flag)" into buf. */
void augment_flags_describe(const struct augment_flags *a, char *buf, int size);

#endif
