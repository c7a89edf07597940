/*
 * dispatch_conns.h — the dispatcher's view of its TCP/ipc connections, from
 * ZeroMQ's socket monitor: a line when a connection opens or closes (libzmq
 * closes one silently when a peer sends a frame over ZMQ_MAXMSGSIZE or
 * breaks the wire protocol; this makes it visible), handshake failures, and
 * a cap on open connections: over the cap, the oldest connection that has
 * not completed its ZeroMQ handshake is shut down, or, when every one has,
 * the new one; so idle or hostile sockets cannot crowd out workers, whose
 * handshake takes milliseconds.  Lines are rate-limited (a burst, then one
 * per second, with running totals; lines held back are summed up within a
 * second by conn_watch_tick).  The process's open-file limit is raised to its hard limit, so
 * the cap, not EMFILE, is what stops a flood.
 */
#ifndef DEEPER_TRAINER_DISPATCH_CONNS_H
#define DEEPER_TRAINER_DISPATCH_CONNS_H

#include "shared/status.h"

struct conn_watch;

/* Watch `sock` (of context zctx); cap = most connections open at once. */
status conn_watch_new(void *zctx, void *sock, int cap, struct conn_watch **out);
/* The monitor's socket, to poll for ZMQ_POLLIN. */
void *conn_watch_socket(struct conn_watch *w);
/* Handle the events waiting. */
void conn_watch_drain(struct conn_watch *w);
/* Call now and then (the dispatcher's loop): a summary line of what the
 * rate limit held back, at most once per second. */
void conn_watch_tick(struct conn_watch *w);
/* A worker said BYE: the next closed connection is its own, logged as such
 * (any other close may be a peer cut off for an oversized frame). */
void conn_watch_goodbye(struct conn_watch *w);
int conn_watch_open(const struct conn_watch *w);
void conn_watch_free(struct conn_watch **w);

#endif
