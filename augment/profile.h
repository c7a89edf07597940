/*
 * profile.h — what a dataset's augmentation profile (manifest.json's
 * augment.profile, chosen at ingest) means for the training distortions.
 *
 *   photo   TF Inception's distortions: sample_distorted_bounding_box crop
 *           (area 0.05..1, aspect 0.75..1.33, min_object_covered 0.1), flip
 *           and colour as the manifest allows.  For photographs.
 *   small   small centred objects that may be mirrored (Fashion-MNIST,
 *           28x28 clothing): mild crops only (area 0.75..1, aspect
 *           0.9..1.11, covering >= 0.75, i.e. a shift of a pixel or two and
 *           a zoom of at most 1.15x at 28x28), left-right flips as the
 *           manifest allows, no colour.
 *   digits  the same mild crops, no flips, no colour: a digit must stay whole
 *           and the right way round (MNIST; the default for MNIST idx input).
 *   none    no distortion at all.
 *
 * Explicit worker flags (--flip/--no_flip, --crop, --color) are applied by the
 * caller afterwards and win.  Eval streams ignore all of this (TF's central
 * crop 0.875, nothing random).
 */
#ifndef DEEPER_AUGMENT_PROFILE_H
#define DEEPER_AUGMENT_PROFILE_H

#include "augment/distort.h"   /* defines: distort_config, crop_params */
#include "shared/manifest.h"   /* defines: manifest_profile */

/* Set dc->crop, dc->flip, dc->color and dc->crop_p from the profile and the
 * manifest's flip/color permissions (each 0 or 1).  Everything else in dc is
 * left as it is. */
void augment_profile_apply(enum manifest_profile profile, int manifest_flip, int manifest_color,
                           struct distort_config *dc);

#endif
