/*
 * dispatch_check.h — the dispatcher's checks of a REGISTER and of a BATCH
 * against the run (proto/dispatch.md, STATE MACHINE and CHECKS ON RECEIPT).
 * Pure: no I/O, no state.
 */
#ifndef DEEPER_TRAINER_DISPATCH_CHECK_H
#define DEEPER_TRAINER_DISPATCH_CHECK_H

#include <stddef.h>

#include "shared/dispatch_proto.h"
#include "trainer/dispatcher.h"

/* 1 when a setting the worker pinned (or its protocol's dataset identity)
 * differs from the run: field names it, ours and theirs give both values.
 * 0 when the worker may join. */
int dispatch_register_differs(const struct dispatcher_config *c, const struct dproto_register *r,
                              char field[DPROTO_FIELD_MAX], char ours[DPROTO_NAME_MAX], char theirs[DPROTO_NAME_MAX]);

/* NULL when a parsed BATCH is what this run expects at its index (size,
 * shape, seq = index, seed, eval flag, labels < classes, ids < records);
 * else the reason, written into buf. */
const char *dispatch_batch_wrong(const struct dispatcher_config *c, const struct dproto_batch *b, char *buf, size_t n);

#endif
