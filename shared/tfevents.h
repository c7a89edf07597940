/*
 * tfevents.h — TensorBoard event-file writer (scalars, images, histograms).
 *
 * Writes the file TensorBoard reads (proto/checkpoint.md, "Event files"):
 * DIR/events.out.tfevents.<secs, 10 digits>.<host>.<pid>.<uid>, a sequence
 * of records framed as
 *     uint64 length (LE) | uint32 masked CRC32C(length bytes) | data | uint32 masked CRC32C(data)
 * where every data block is a serialized tensorflow.Event protobuf.  The
 * first event carries wall_time and file_version = "brain.Event:2".  Scalars
 * are Event{wall_time, step, summary{value{tag, simple_value}}}.  A resumed
 * run writes Event{step, session_log{status: START}} so TensorBoard drops the
 * stale events past the resume step.
 *
 * The protobuf encoding is done by hand (a handful of fields); there is no
 * protobuf dependency.  scripts/tb_read.py is the independent reader the
 * tests use.  Records are written with stdio and flushed after every event
 * group, so a killed trainer loses at most the last partial record, which
 * TensorBoard skips.
 */
#ifndef DEEPER_TFEVENTS_H
#define DEEPER_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "shared/status.h"

struct tfevents;

/* Create DIR (and its parents, if missing) and a new event file in it; write the
 * file_version event.  Caller closes with tfevents_free. */
status tfevents_open(struct tfevents **out, const char *dir);
/* Path of the event file (borrowed). */
const char *tfevents_path(const struct tfevents *w);

/* One event holding one scalar. */
status tfevents_scalar(struct tfevents *w, int64_t step, const char *tag, float value);
/* One event holding n scalars (one Summary with n values). */
status tfevents_scalars(struct tfevents *w, int64_t step, int n, const char *const *tags,
                        const float *values);
/* One image (Summary.Image, PNG-encoded here): HxWxC uint8, C 1 or 3. */
status tfevents_image(struct tfevents *w, int64_t step, const char *tag, const uint8_t *pixels, int height,
                      int width, int channels);
/* One histogram (HistogramProto) of n values: min, max, count, sum, sum of
 * squares and 30 equal-width buckets between min and max. */
status tfevents_histogram(struct tfevents *w, int64_t step, const char *tag, const float *values, size_t n);
/* Event{step, session_log{START}}: tells TensorBoard a run (re)started here. */
status tfevents_session_start(struct tfevents *w, int64_t step);
/* Flush to the OS. */
status tfevents_flush(struct tfevents *w);
void tfevents_free(struct tfevents **w);

#endif
