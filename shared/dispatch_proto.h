/*
 * dispatch_proto.h — the dispatcher protocol's messages: encode and parse
 * (proto/dispatch.md is the normative description).
 *
 * A consumer (`deeper train`, `deeper eval`) runs one ZeroMQ ROUTER; every
 * augment worker, local (ipc://) or remote (tcp://), connects a DEALER and
 * speaks this protocol.  Every message is ONE frame (the ROUTER adds the
 * peer's routing id in front), so ZMQ_MAXMSGSIZE bounds a whole message:
 *
 *   offset 0  u32 magic    "DPDS" (0x53445044 little-endian)
 *          4  u16 version  DPROTO_VERSION
 *          6  u16 type     enum dproto_type
 *          8  u64 session  the consumer's session nonce (0 in REGISTER)
 *         16  body, a fixed size per type (BATCH: fixed part + batch)
 *
 * All integers little-endian.  dproto_parse is a pure function over bytes
 * (no allocation, no I/O, no ZeroMQ): it checks the size, magic, version,
 * type and every field's range before anything is used, and is what a
 * fuzzer calls.  A BATCH body is a wire header (shared/wire.h) followed by
 * labels int32[n], ids uint64[n] and pixels uint8[n*h*w*c]; parse returns
 * pointers into the caller's buffer (unaligned: copy with memcpy).
 */
#ifndef DEEPER_DISPATCH_PROTO_H
#define DEEPER_DISPATCH_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "shared/status.h"
#include "shared/wire.h"

#define DPROTO_MAGIC       0x53445044u   /* bytes 'D','P','D','S' */
#define DPROTO_VERSION     2u
#define DPROTO_HEADER_SIZE 16u
#define DPROTO_NAME_MAX    64            /* worker names, REFUSED values (with the NUL) */
#define DPROTO_FIELD_MAX   32
#define DPROTO_SUBSET_MAX  16

enum dproto_type {
    DPROTO_REGISTER = 1,    /* worker -> consumer: hello, identity and settings */
    DPROTO_REGISTERED,      /* consumer -> worker: accepted; the run's settings */
    DPROTO_REFUSED,         /* consumer -> worker: one field differs */
    DPROTO_REQUEST,         /* worker -> consumer: give me a lease (now, or to follow the one I hold) */
    DPROTO_LEASE,           /* consumer -> worker: produce batches [first, end) (now, replacing what is
                               held; or after lease `after`) */
    DPROTO_CREDIT,          /* consumer -> worker: you may send the lease's batches below limit */
    DPROTO_BATCH,           /* worker -> consumer: batch `index` of a lease */
    DPROTO_HEARTBEAT,       /* both ways */
    DPROTO_RESET,           /* consumer -> worker: unknown peer or stale session: register again */
    DPROTO_BYE,             /* worker -> consumer: leaving; release my lease now */
    DPROTO_TYPE_MAX = DPROTO_BYE,
};

/* A switch a worker may pin on its command line: -1 = not given (take the
 * consumer's), 0 or 1 = given. */
struct dproto_register {
    uint32_t manifest_crc;          /* CRC32C of the dataset's manifest.json bytes */
    uint64_t manifest_len;          /* its length in bytes */
    uint64_t records;               /* records in all subsets of the manifest */
    char subset[DPROTO_SUBSET_MAX]; /* "" = any */
    uint32_t batch_size;            /* 0 = any */
    uint32_t image_size;            /* 0 = any */
    uint32_t channels;              /* 0 = any (output channels) */
    int8_t flip, color, crop;       /* -1 = any */
    int8_t color_ordering;          /* -1 (TF's two orders), 0, 1 */
    uint8_t resize_method;          /* 0 bilinear, 1 bilinear_half, 2 nearest */
    uint8_t fast_jpeg;              /* 0 or 1 */
    uint8_t has_seed;
    uint64_t seed;                  /* when has_seed */
    char name[DPROTO_NAME_MAX];     /* "host:pid" or "local-3", for log lines */
};

struct dproto_registered {
    uint32_t batch_size, image_size, channels;
    uint32_t split_batches;         /* batches per split */
    uint32_t heartbeat_ms, timeout_ms;
    uint32_t eval;                  /* 1: eval stream (central crop, manifest order) */
    uint32_t window;                /* credits: batches the consumer holds at most */
    uint64_t seed;
    uint64_t examples;              /* records in the subset */
    int8_t flip, color, crop;       /* the consumer's switches (-1: the dataset profile's) */
    char subset[DPROTO_SUBSET_MAX];
};

struct dproto_refused {
    char field[DPROTO_FIELD_MAX];
    char ours[DPROTO_NAME_MAX];     /* the consumer's value */
    char theirs[DPROTO_NAME_MAX];   /* the worker's value */
};

/* after: 0 = start now, replacing every lease held; else the lease this one
 * follows (the worker starts it when it has sent `after`'s last batch). */
struct dproto_lease { uint64_t lease, first, end, limit, after; };
struct dproto_credit { uint64_t lease, limit; };

enum dproto_worker_state { DPROTO_IDLE = 0, DPROTO_COMPUTING, DPROTO_WAITING_CREDIT, DPROTO_REGISTERING };

struct dproto_heartbeat {
    uint64_t lease;                 /* lease held (0: none) */
    uint64_t next;                  /* worker: next batch index it will send */
    uint32_t state;                 /* worker: enum dproto_worker_state; consumer: 0 */
};

struct dproto_batch {
    uint64_t lease, index;
    struct wire_header header;      /* unpacked and self-consistent (wire_header_unpack) */
    const uint8_t *labels;          /* int32[n], unaligned, inside the parsed buffer */
    const uint8_t *ids;             /* uint64[n] */
    const uint8_t *pixels;          /* uint8[n*h*w*c] */
};

struct dproto_msg {
    uint16_t type;
    uint64_t session;
    union {
        struct dproto_register reg;
        struct dproto_registered ok;
        struct dproto_refused refused;
        struct dproto_lease lease;
        struct dproto_credit credit;
        struct dproto_heartbeat hb;
        struct dproto_batch batch;
        uint32_t reset_reason;
        struct {                    /* REQUEST */
            uint64_t done;          /* the lease the worker finished or dropped (0: none) */
            uint64_t holds;         /* the lease it works on now (0: none) */
            uint32_t want;          /* 1: lease me a split (to follow `holds`, or now when 0) */
        };
    } u;
};

/* Bytes of a whole message of this type (BATCH: its fixed part only). */
size_t dproto_body_size(uint16_t type);
/* Bytes of a BATCH message carrying n examples of h x w x c (0 on overflow). */
size_t dproto_batch_size(uint32_t n, uint32_t h, uint32_t w, uint32_t c);
/* Offsets of the parts of a BATCH message. */
#define DPROTO_BATCH_FIXED (DPROTO_HEADER_SIZE + 16u)
static inline size_t dproto_batch_labels_off(void) { return DPROTO_BATCH_FIXED + WIRE_HEADER_SIZE; }
static inline size_t dproto_batch_ids_off(uint32_t n) { return dproto_batch_labels_off() + 4u * (size_t)n; }
static inline size_t dproto_batch_pixels_off(uint32_t n) { return dproto_batch_ids_off(n) + 8u * (size_t)n; }

/* Encode any message but BATCH into buf (cap bytes).  Returns the size, or
 * 0 when cap is too small or the type is BATCH/unknown.  Strings are cut to
 * their field and NUL-padded. */
size_t dproto_encode(const struct dproto_msg *m, uint8_t *buf, size_t cap);

/* Write the fixed part and the wire header of a BATCH message into buf
 * (which holds dproto_batch_size(...) bytes); labels, ids and pixels go at
 * the offsets above (ids and labels little-endian: le_put_u32/u64 of shared/endian.h). */
void dproto_batch_begin(uint8_t *buf, uint64_t session, uint64_t lease, uint64_t index, const struct wire_header *h);

/* Parse one message of len bytes.  STATUS_FORMAT with a message naming the
 * field when anything is wrong; *out is meaningful only on STATUS_OK.  The
 * fuzz entry point. */
status dproto_parse(const void *buf, size_t len, struct dproto_msg *out);

/* Name of a message type ("REGISTER"), "?" when unknown. */
const char *dproto_type_name(uint16_t type);

/* The dataset's identity as REGISTER carries it: CRC32C and length of
 * DIR/manifest.json and the records of all its subsets. */
status dproto_dataset_identity(const char *data_dir, uint32_t *crc, uint64_t *len, uint64_t *records);

#endif
