/*
 * curve.h — ZeroMQ CURVE authentication for the batch stream: key files, a
 * ZAP handler that admits only listed client keys, the client-side setup, and
 * the policy that refuses an unauthenticated tcp listener.
 *
 * Key files (czmq's zcert text format, so czmq tools can read them):
 *   NAME.key          public certificate:  public-key = "<40 Z85 chars>"
 *   NAME.key_secret   secret certificate:  public-key and secret-key; mode 0600,
 *                     created with O_EXCL, refused at load when group or others
 *                     may read it.
 * A public key file may also hold just the 40 Z85 characters on one line.
 * An --authorized_keys DIR is a directory of public key files: every file
 * whose name ends in ".key" is one admitted client (its name without ".key"
 * becomes the peer's User-Id).
 *
 * Server side (the side that binds and receives or sends batches):
 *     struct curve_server *cs;
 *     TRY(curve_server_new(ctx, &opts, "stream", 0, &cs)); // ZAP handler bound now
 *     void *sock = zmq_socket(ctx, ZMQ_PULL);
 *     TRY(curve_server_apply(cs, sock));                // before zmq_bind
 *     zmq_bind(sock, ...);
 *     ...
 *     zmq_close(sock);
 *     curve_server_free(&cs);                           // after the sockets
 * The handler is bound on inproc://zeromq.zap.01 of the same context before
 * any server socket exists and stays bound until curve_server_free, so a
 * handshake can never find the context without one: libzmq 4.3 admits every
 * client that knows the server key when no handler is bound (fail open).
 * Each refusal (unlisted key, wrong server key, no CURVE at all) is logged as
 * one line with the peer's address and the reason, at most 5 lines per 10 s
 * with running totals.
 *
 * Client side: curve_client_apply(sock, &opts) before zmq_connect.
 *
 * Threading: curve_server_new/apply/free on one thread; the handler runs its
 * own thread; curve_server_counts and curve_server_peers from any thread.
 */
#ifndef DEEPER_CURVE_H
#define DEEPER_CURVE_H

#include <stddef.h>
#include <stdint.h>

#include "shared/status.h"

#define CURVE_KEY_Z85_LEN 40
/* What CURVE adds to a frame on the wire (a 33-byte box) with room for the
 * handshake's larger messages: add it to ZMQ_MAXMSGSIZE of a CURVE socket. */
#define CURVE_FRAME_MARGIN 1024

/* What the command line gave (every field may be NULL / 0). */
struct curve_opts {
    const char *secret_key;       /* --curve_secret_key FILE (NAME.key_secret) */
    const char *authorized_keys;  /* --authorized_keys DIR (server side) */
    const char *server_key;       /* --curve_server_key FILE (client side: the server's NAME.key) */
    int insecure;                 /* --insecure: plain tcp allowed */
};

/* 1 when the options ask for CURVE (a secret key was given). */
int curve_opts_enabled(const struct curve_opts *o);

/* Generate a key pair and write DIR/NAME.key and DIR/NAME.key_secret (the
 * secret one created 0600 with O_EXCL; neither file may exist yet).  The
 * paths written are copied to pub_path / sec_path when not NULL. */
status curve_keypair_write(const char *dir, const char *name, char *pub_path, char *sec_path, size_t path_n);

/* The public key (40 Z85 characters + NUL) of a public or secret key file. */
status curve_public_key_load(const char *path, char out[CURVE_KEY_Z85_LEN + 1]);

/* Both keys of a secret key file (public derived from the secret one and
 * checked against the file's public-key line when it has one). */
status curve_secret_key_load(const char *path, char pub[CURVE_KEY_Z85_LEN + 1], char sec[CURVE_KEY_Z85_LEN + 1]);

/* Policy for a binding side: endpoints (comma-separated) that listen on a
 * network transport (tcp, ws, ...) need keys unless insecure is set.
 * STATUS_USAGE with one line naming the endpoint otherwise. */
status curve_policy_check(const char *endpoints, int have_keys, int insecure);

/* A consumer's --listen with its keys: curve_opts_check and
 * curve_policy_check when listen is set (an --insecure listener is logged as
 * a warning); keys or --insecure without --listen are a usage error. */
status curve_listen_check(const char *listen, const struct curve_opts *o);
/* Check the option combination for one side: server (authorized_keys with a
 * secret key) or client (server_key with a secret key).  STATUS_USAGE naming
 * the missing flag. */
status curve_opts_check(const struct curve_opts *o, int server);

/* Create (mode 0700) or check an existing directory for ipc:// endpoints:
 * it must be a directory owned by us that group and others cannot enter. */
status curve_ipc_dir_make(const char *dir);

/* ------------------------------------------------------------------ server */
struct curve_server;

struct curve_counts {
    uint64_t admitted;   /* ZAP requests answered 200 */
    uint64_t refused;    /* refusals of every kind */
};

/* Load the secret key and the authorized keys, bind the ZAP handler on ctx
 * and start its thread.  who prefixes log lines.  An authorized_keys DIR
 * with no ".key" file is an error (nobody could ever connect).  admit_own
 * also admits a client holding the server's own key pair (the consumer's
 * local workers; whoever has that secret could impersonate the server
 * anyway).  On STATUS_OK *out is new; free with curve_server_free
 * after every socket it was applied to is closed. */
status curve_server_new(void *ctx, const struct curve_opts *o, const char *who, int admit_own,
                        struct curve_server **out);

/* Make sock a CURVE server under the handler (ZMQ_CURVE_SERVER, secret key,
 * ZAP domain, and a monitor that logs handshake refusals).  Call before
 * zmq_bind.  At most 16 sockets per server. */
status curve_server_apply(struct curve_server *cs, void *sock);

/* Only the CURVE server options of curve_server_apply, no monitor: for a
 * socket that has a monitor of its own (libzmq allows one per socket); that
 * monitor can word handshake failures with curve_handshake_describe. */
status curve_server_secure(struct curve_server *cs, void *sock);
/* One line's reason for a monitor event ZMQ_EVENT_HANDSHAKE_FAILED_* with
 * its value, into buf. */
void curve_handshake_describe(uint16_t event, uint32_t value, char *buf, size_t n);
/* The server's public key (Z85).  Borrowed. */
const char *curve_server_public_key(const struct curve_server *cs);

void curve_server_counts(struct curve_server *cs, struct curve_counts *out);

/* Connections accepted and not yet disconnected on the applied sockets. */
int curve_server_peers(struct curve_server *cs);

/* Stop the handler (unbinds inproc://zeromq.zap.01); NULL-safe; sets *cs NULL. */
void curve_server_free(struct curve_server **cs);

/* ------------------------------------------------------------------ client */
/* Make sock a CURVE client: its key pair from o->secret_key, the server's
 * public key from o->server_key.  Call before zmq_connect. */
status curve_client_apply(void *sock, const struct curve_opts *o);

#endif
