/*
 * profile.c — a dataset's augmentation profile turned into distortion
 * switches and crop parameters (see profile.h for what each profile means).
 */
#include "augment/profile.h"

void augment_profile_apply(enum manifest_profile profile, int manifest_flip, int manifest_color,
                           struct distort_config *dc)
{
    crop_params_default(&dc->crop_p);
    dc->crop = 1;
    dc->flip = manifest_flip != 0;
    dc->color = manifest_color != 0;
    switch (profile) {
    case MANIFEST_PROFILE_PHOTO:
        break;
    case MANIFEST_PROFILE_SMALL:
    case MANIFEST_PROFILE_DIGITS:
        /* small crops only: the object stays whole; at most ~1.15x zoom */
        dc->crop_p.area_lo = 0.75f;
        dc->crop_p.aspect_lo = 0.9f;
        dc->crop_p.aspect_hi = 1.11f;
        dc->crop_p.min_object_covered = 0.75f;
        dc->color = 0;
        if (profile == MANIFEST_PROFILE_DIGITS) dc->flip = 0;
        break;
    case MANIFEST_PROFILE_NONE:
        dc->crop = dc->flip = dc->color = 0;
        break;
    }
}
