/*
 * curve.c — CURVE key files, the ZAP handler and the client setup (see
 * curve.h for the contract).
 *
 * The handler thread owns two kinds of socket: a REP bound on
 * inproc://zeromq.zap.01 that answers libzmq's ZAP requests (RFC 27: version,
 * request id, domain, address, routing id, mechanism, 32-byte client key ->
 * version, request id, status code, status text, user id, metadata), and one
 * PAIR per applied socket connected to that socket's monitor.  The monitor is
 * how refusals that never reach ZAP are seen: a client that speaks no CURVE
 * (mechanism mismatch) or encrypts its HELLO for another server key
 * (cryptographic error) fails the handshake before any ZAP request.  libzmq
 * reports ACCEPTED (value: the fd), then HANDSHAKE_FAILED_* and DISCONNECTED
 * (the fd) for such a connection; the peer's address is taken with
 * getpeername() on the fd when ACCEPTED is read, so a connection that is gone
 * by then is logged as "address unknown".  ZAP refusals are logged by the
 * handler itself (the request carries the address); their later
 * HANDSHAKE_FAILED_AUTH event is not logged twice.
 *
 * Monitor PAIR sockets are created by curve_server_apply on the caller's
 * thread and handed to the handler thread under the mutex (a full memory
 * barrier, which is what ZeroMQ asks for to move a socket between threads);
 * only the handler thread uses them afterwards.
 */
#include "shared/curve.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "shared/endian.h"
#include "shared/log.h"

#define CURVE_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define CURVE_DOMAIN "deeper"
#define CURVE_MAX_WATCH 16
#define CURVE_MAX_KEYS 4096
#define CURVE_CONN_TABLE 256
#define CURVE_LOG_BURST 5
#define CURVE_LOG_WINDOW 10.0
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93      /* draft option: used when the library has it */
#endif

int curve_opts_enabled(const struct curve_opts *o)
{
    return o && o->secret_key && o->secret_key[0];
}

// ---------------------------------------------------------------- key files

static int z85_valid(const char *s)
{
    uint8_t bin[32];
    char tmp[CURVE_KEY_Z85_LEN + 1];
    memcpy(tmp, s, CURVE_KEY_Z85_LEN);
    tmp[CURVE_KEY_Z85_LEN] = 0;
    return strlen(tmp) == CURVE_KEY_Z85_LEN && zmq_z85_decode(bin, tmp) != NULL;
}

/* Find `name = "KEY"` (quotes optional) in text; 1 found and valid. */
static int find_key(const char *text, const char *name, char out[CURVE_KEY_Z85_LEN + 1])
{
    size_t nl = strlen(name);
    for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
        if (p != text && p[-1] != ' ' && p[-1] != '\t' && p[-1] != '\n') continue;
        const char *q = p + nl;
        while (*q == ' ' || *q == '\t') q++;
        if (*q != '=') continue;
        q++;
        while (*q == ' ' || *q == '\t') q++;
        if (*q == '"') q++;
        if (strnlen(q, CURVE_KEY_Z85_LEN) < CURVE_KEY_Z85_LEN || !z85_valid(q)) return 0;
        memcpy(out, q, CURVE_KEY_Z85_LEN);
        out[CURVE_KEY_Z85_LEN] = 0;
        return 1;
    }
    return 0;
}

/* Read a small key file into buf (NUL-terminated).  secret: refuse a file
 * that group or others may read. */
static status read_key_file(const char *path, char *buf, size_t n, int secret)
{
    status st = STATUS_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return FAIL(STATUS_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = FAIL(STATUS_FORMAT, "%s: not a regular file", path);
        goto done;
    }
    if (secret && (sb.st_mode & 077)) {
        st = FAIL(STATUS_USAGE, "%s: secret key file may be read by group or others (mode %04o); chmod 600 it",
                  path, (unsigned)(sb.st_mode & 07777));
        goto done;
    }
    ssize_t got = read(fd, buf, n - 1);
    if (got < 0) { st = FAIL(STATUS_IO, "%s: %s", path, strerror(errno)); goto done; }
    buf[got] = 0;
done:
    close(fd);
    return st;
}

status curve_public_key_load(const char *path, char out[CURVE_KEY_Z85_LEN + 1])
{
    char text[4096];
    TRY(read_key_file(path, text, sizeof text, 0));
    status st = STATUS_OK;
    if (find_key(text, "public-key", out)) goto done;
    /* a bare key: 40 Z85 characters, optionally followed by a newline */
    size_t len = strcspn(text, "\r\n");
    if (len == CURVE_KEY_Z85_LEN && z85_valid(text) && text[len + strspn(text + len, "\r\n")] == 0) {
        memcpy(out, text, CURVE_KEY_Z85_LEN);
        out[CURVE_KEY_Z85_LEN] = 0;
        goto done;
    }
    st = FAIL(STATUS_FORMAT, "%s: no public key (expected a line public-key = \"<40 Z85 characters>\", "
              "as `deeper keygen` writes)", path);
done:
    explicit_bzero(text, sizeof text);
    return st;
}

status curve_secret_key_load(const char *path, char pub[CURVE_KEY_Z85_LEN + 1], char sec[CURVE_KEY_Z85_LEN + 1])
{
    char text[4096], listed[CURVE_KEY_Z85_LEN + 1];
    TRY(read_key_file(path, text, sizeof text, 1));
    status st = STATUS_OK;
    if (!find_key(text, "secret-key", sec)) {
        st = FAIL(STATUS_FORMAT, "%s: no secret key (expected a line secret-key = \"<40 Z85 characters>\"; "
                  "give the NAME.key_secret file `deeper keygen` wrote)", path);
        goto done;
    }
    if (zmq_curve_public(pub, sec) != 0) {
        st = FAIL(STATUS_ZMQ, "%s: zmq_curve_public: %s (libzmq built without CURVE?)", path, zmq_strerror(zmq_errno()));
        goto done;
    }
    if (find_key(text, "public-key", listed) && strcmp(listed, pub) != 0)
        st = FAIL(STATUS_CORRUPT, "%s: public-key does not belong to secret-key", path);
done:
    explicit_bzero(text, sizeof text);
    return st;
}

static status write_all(int fd, const char *path, const char *text)
{
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return FAIL(STATUS_IO, "%s: %s", path, strerror(errno));
        off += (size_t)w;
    }
    if (fsync(fd) != 0) return FAIL(STATUS_IO, "%s: fsync: %s", path, strerror(errno));
    return STATUS_OK;
}

status curve_keypair_write(const char *dir, const char *name, char *pub_path, char *sec_path, size_t path_n)
{
    char pub[CURVE_KEY_Z85_LEN + 1], sec[CURVE_KEY_Z85_LEN + 1], pp[4096], sp[4096], text[1024];
    int pfd = -1, sfd = -1;
    status st = STATUS_OK;
    if (!name[0] || strchr(name, '/')) return FAIL(STATUS_USAGE, "key name '%s' must be a plain file name", name);
    if (!zmq_has("curve")) return FAIL(STATUS_UNSUPPORTED, "this libzmq has no CURVE support");
    if (snprintf(pp, sizeof pp, "%s/%s.key", dir, name) >= (int)sizeof pp ||
        snprintf(sp, sizeof sp, "%s/%s.key_secret", dir, name) >= (int)sizeof sp)
        return FAIL(STATUS_USAGE, "%s: path too long", dir);
    if (zmq_curve_keypair(pub, sec) != 0) return FAIL(STATUS_ZMQ, "zmq_curve_keypair: %s", zmq_strerror(zmq_errno()));
    /* the secret file first, born 0600 (O_EXCL: never an existing file, never a symlink) */
    sfd = open(sp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (sfd < 0) {
        st = FAIL(STATUS_IO, "%s: %s%s", sp, strerror(errno), errno == EEXIST ? " (not overwriting a key)" : "");
        goto done;
    }
    if (fchmod(sfd, 0600) != 0) { st = FAIL(STATUS_IO, "%s: fchmod: %s", sp, strerror(errno)); goto done; }
    pfd = open(pp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (pfd < 0) {
        st = FAIL(STATUS_IO, "%s: %s%s", pp, strerror(errno), errno == EEXIST ? " (not overwriting a key)" : "");
        goto done;
    }
    snprintf(text, sizeof text,
             "#   ****  Generated by deeper keygen  ****\n"
             "#   ZeroMQ CURVE **Secret** Certificate\n"
             "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n"
             "metadata\n"
             "curve\n"
             "    public-key = \"%s\"\n"
             "    secret-key = \"%s\"\n", pub, sec);
    if ((st = write_all(sfd, sp, text)) != STATUS_OK) goto done;
    snprintf(text, sizeof text,
             "#   ****  Generated by deeper keygen  ****\n"
             "#   ZeroMQ CURVE Public Certificate\n"
             "#   Exchange securely, or use a secure mechanism to verify the contents\n"
             "#   of this file after exchange.\n\n"
             "metadata\n"
             "curve\n"
             "    public-key = \"%s\"\n", pub);
    if ((st = write_all(pfd, pp, text)) != STATUS_OK) goto done;
    if (pub_path) snprintf(pub_path, path_n, "%s", pp);
    if (sec_path) snprintf(sec_path, path_n, "%s", sp);
done:
    explicit_bzero(text, sizeof text);
    explicit_bzero(sec, sizeof sec);
    if (sfd >= 0) close(sfd);
    if (pfd >= 0) close(pfd);
    if (st != STATUS_OK) {          /* leave no half-written pair behind */
        if (sfd >= 0) unlink(sp);
        if (pfd >= 0) unlink(pp);
    }
    return st;
}

// ------------------------------------------------------------------ policy

static int network_transport(const char *ep)
{
    static const char *net[] = { "tcp://", "ws://", "wss://", "udp://", "pgm://", "epgm://", "tipc://", "vmci://" };
    for (size_t i = 0; i < sizeof net / sizeof net[0]; i++)
        if (strncmp(ep, net[i], strlen(net[i])) == 0) return 1;
    return 0;
}

status curve_policy_check(const char *endpoints, int have_keys, int insecure)
{
    if (have_keys && insecure)
        return FAIL(STATUS_USAGE, "--insecure and --curve_secret_key are exclusive (keys mean authenticated)");
    if (have_keys || insecure || !endpoints) return STATUS_OK;
    char eps[1024];
    snprintf(eps, sizeof eps, "%s", endpoints);
    char *save = NULL;
    for (char *ep = strtok_r(eps, ",", &save); ep; ep = strtok_r(NULL, ",", &save))
        if (network_transport(ep))
            return FAIL(STATUS_USAGE, "%s: listening on the network without CURVE keys would let any host that "
                        "reaches it in; give --curve_secret_key FILE --authorized_keys DIR (see `deeper keygen`), "
                        "or --insecure to allow it anyway", ep);
    return STATUS_OK;
}

status curve_opts_check(const struct curve_opts *o, int server)
{
    int sk = o->secret_key && o->secret_key[0];
    int other = server ? o->authorized_keys && o->authorized_keys[0] : o->server_key && o->server_key[0];
    const char *flag = server ? "--authorized_keys DIR" : "--curve_server_key FILE";
    if (sk && !other) return FAIL(STATUS_USAGE, "--curve_secret_key needs %s", flag);
    if (!sk && other) return FAIL(STATUS_USAGE, "%s needs --curve_secret_key FILE", flag);
    if (!server && o->authorized_keys && o->authorized_keys[0])
        return FAIL(STATUS_USAGE, "--authorized_keys is for the binding side; a connecting side takes --curve_server_key");
    if (server && o->server_key && o->server_key[0])
        return FAIL(STATUS_USAGE, "--curve_server_key is for the connecting side; a binding side takes --authorized_keys");
    return STATUS_OK;
}

status curve_ipc_dir_make(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return FAIL(STATUS_IO, "%s: mkdir: %s", dir, strerror(errno));
    struct stat sb;
    if (lstat(dir, &sb) != 0) return FAIL(STATUS_IO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return FAIL(STATUS_USAGE, "%s: not a directory", dir);
    if (sb.st_uid != geteuid()) return FAIL(STATUS_USAGE, "%s: owned by uid %u, not by us", dir, (unsigned)sb.st_uid);
    if (sb.st_mode & 077)
        return FAIL(STATUS_USAGE, "%s: mode %04o lets others reach its ipc sockets; it must be 0700", dir,
                    (unsigned)(sb.st_mode & 07777));
    return STATUS_OK;
}

// ------------------------------------------------------------------ server

struct conn { int fd; char addr[64]; };

struct watch {
    void *pair;                  /* connected to the applied socket's monitor */
    char endpoint[128];          /* what the event frames name (the bound endpoint) */
    char pending[160];           /* handshake failure not yet matched to a DISCONNECTED */
    int pending_skip;            /* the pending failure was a ZAP refusal (already logged) */
};

struct curve_server {
    void *ctx, *zap;
    char who[32];
    char pub[CURVE_KEY_Z85_LEN + 1], sec[CURVE_KEY_Z85_LEN + 1];
    char authorized_dir[512];
    uint8_t (*keys)[32];
    char (*names)[64];
    int nkeys;
    pthread_t thread;
    int started;
    atomic_int stop;
    pthread_mutex_t mu;          /* guards watches[] handover */
    struct watch watches[CURVE_MAX_WATCH];
    int nwatch, mon_seq;
    struct conn conns[CURVE_CONN_TABLE];  /* handler thread only */
    int conn_next;
    atomic_uint_fast64_t admitted, refused;
    atomic_int peers;
    double win_start;            /* rate limit (handler thread only) */
    int win_logged;
    uint64_t not_shown;
};

static void refusal_log(struct curve_server *cs, const char *addr, const char *where, const char *why)
{
    uint64_t total = atomic_fetch_add(&cs->refused, 1) + 1;
    double now = log_now();
    if (now - cs->win_start >= CURVE_LOG_WINDOW) { cs->win_start = now; cs->win_logged = 0; }
    if (cs->win_logged >= CURVE_LOG_BURST) { cs->not_shown++; return; }
    cs->win_logged++;
    char more[64] = "";
    if (cs->not_shown) snprintf(more, sizeof more, ", %llu not shown", (unsigned long long)cs->not_shown);
    cs->not_shown = 0;
    log_warn("%s: refused peer %s%s%s: %s (refused %llu, admitted %llu so far%s)", cs->who, addr,
             where ? " on " : "", where ? where : "", why,
             (unsigned long long)total, (unsigned long long)atomic_load(&cs->admitted), more);
}

static status keys_load(struct curve_server *cs, const char *dir, int admit_own)
{
    status st = STATUS_OK;
    DIR *d = opendir(dir);
    if (!d) return FAIL(STATUS_IO, "--authorized_keys %s: %s", dir, strerror(errno));
    cs->keys = calloc(CURVE_MAX_KEYS, sizeof *cs->keys);
    cs->names = calloc(CURVE_MAX_KEYS, sizeof *cs->names);
    if (!cs->keys || !cs->names) { st = FAIL(STATUS_NOMEM, "curve: key table"); goto done; }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 4 || strcmp(e->d_name + len - 4, ".key") != 0 || e->d_name[0] == '.') continue;
        if (cs->nkeys >= CURVE_MAX_KEYS - 1) { st = FAIL(STATUS_TOO_BIG, "--authorized_keys %s: more than %d keys", dir, CURVE_MAX_KEYS - 1); goto done; }
        char path[4096], z85[CURVE_KEY_Z85_LEN + 1];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if ((st = curve_public_key_load(path, z85)) != STATUS_OK) goto done;
        zmq_z85_decode(cs->keys[cs->nkeys], z85);
        snprintf(cs->names[cs->nkeys], sizeof cs->names[0], "%.*s", (int)(len - 4), e->d_name);
        cs->nkeys++;
    }
    if (cs->nkeys == 0) {
        st = FAIL(STATUS_USAGE, "--authorized_keys %s: no NAME.key public key files; no worker could connect", dir);
        goto done;
    }
    if (admit_own) {
        zmq_z85_decode(cs->keys[cs->nkeys], cs->pub);
        snprintf(cs->names[cs->nkeys], sizeof cs->names[0], "(own key)");
        cs->nkeys++;
    }
done:
    closedir(d);
    return st;
}

static int key_find(const struct curve_server *cs, const uint8_t *key)
{
    for (int i = 0; i < cs->nkeys; i++)
        if (memcmp(cs->keys[i], key, 32) == 0) return i;
    return -1;
}

/* Answer one ZAP request (all of its frames are read first). */
static void zap_serve(struct curve_server *cs)
{
    zmq_msg_t part[8];
    int n = 0, more = 1;
    while (more) {               /* frames past the eighth are read and dropped */
        zmq_msg_t *m = &part[n < 8 ? n : 7], extra;
        if (n >= 8) m = &extra;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, cs->zap, 0) < 0) { zmq_msg_close(m); break; }
        more = zmq_msg_more(m);
        if (n < 8) n++;
        else zmq_msg_close(m);
    }
    if (n < 2) goto done;   /* nothing we could even answer (REP would then be stuck) */
    const char *code = "400", *text = "malformed request";
    char user[64] = "", addr[64] = "?";
    if (n >= 7) {
        snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&part[3]), (const char *)zmq_msg_data(&part[3]));
        int is_curve = zmq_msg_size(&part[5]) == 5 && memcmp(zmq_msg_data(&part[5]), "CURVE", 5) == 0;
        if (zmq_msg_size(&part[0]) != 3 || memcmp(zmq_msg_data(&part[0]), "1.0", 3) != 0) {
            text = "ZAP version is not 1.0";
        } else if (!is_curve || zmq_msg_size(&part[6]) != 32) {
            text = "not a CURVE client";
        } else {
            int k = key_find(cs, zmq_msg_data(&part[6]));
            if (k >= 0) {
                code = "200";
                text = "OK";
                snprintf(user, sizeof user, "%s", cs->names[k]);
                atomic_fetch_add(&cs->admitted, 1);
            } else {
                char z85[CURVE_KEY_Z85_LEN + 1];
                zmq_z85_encode(z85, zmq_msg_data(&part[6]), 32);
                char why[640];
                snprintf(why, sizeof why, "client key %s is not in --authorized_keys %s", z85, cs->authorized_dir);
                refusal_log(cs, addr, NULL, why);
                text = "key not authorized";
            }
        }
    }
    const void *frames[6] = { "1.0", zmq_msg_data(&part[1]), code, text, user, "" };
    size_t sizes[6] = { 3, zmq_msg_size(&part[1]), 3, strlen(text), strlen(user), 0 };
    for (int i = 0; i < 6; i++) zmq_send(cs->zap, frames[i], sizes[i], i < 5 ? ZMQ_SNDMORE : 0);
done:
    for (int i = 0; i < n; i++) zmq_msg_close(&part[i]);
}

static void conn_remember(struct curve_server *cs, int fd)
{
    struct conn *c = &cs->conns[cs->conn_next++ % CURVE_CONN_TABLE];
    c->fd = fd;
    snprintf(c->addr, sizeof c->addr, "(address unknown)");
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) return;
    char host[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(c->addr, sizeof c->addr, "%s:%u", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(c->addr, sizeof c->addr, "[%s]:%u", host, ntohs(a->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        snprintf(c->addr, sizeof c->addr, "(local ipc peer)");
    }
}

static const char *conn_addr(struct curve_server *cs, int fd)
{
    for (int k = 1; k <= CURVE_CONN_TABLE; k++) {
        struct conn *c = &cs->conns[(cs->conn_next - k + CURVE_CONN_TABLE * 2) % CURVE_CONN_TABLE];
        if (c->addr[0] && c->fd == fd) return c->addr;
    }
    return "(address unknown)";
}

void curve_handshake_describe(uint16_t event, uint32_t value, char *buf, size_t n)
{
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        snprintf(buf, n, "ZAP refused it (status %u)", value);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        snprintf(buf, n, "the peer does not use CURVE (a worker without --curve_secret_key/--curve_server_key?)");
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
        snprintf(buf, n, "CURVE handshake does not decrypt: the peer's --curve_server_key is not this server's public key");
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        snprintf(buf, n, "handshake protocol error 0x%x", value);
    else
        snprintf(buf, n, "the peer hung up during the handshake (%s): it does not use CURVE, or not this server's key",
                 strerror((int)value));
}

/* One monitor event of watch w. */
static void watch_serve(struct curve_server *cs, struct watch *w)
{
    uint8_t ev[6];
    char where[256];
    int n = zmq_recv(w->pair, ev, sizeof ev, 0);
    int wn = zmq_recv(w->pair, where, sizeof where - 1, 0);
    if (n < 6) return;
    where[wn > 0 ? (wn < (int)sizeof where ? wn : (int)sizeof where - 1) : 0] = 0;
    uint16_t event = le_get_u16(ev);
    uint32_t value;
    memcpy(&value, ev + 2, 4);
    switch (event) {
    case ZMQ_EVENT_ACCEPTED:
        conn_remember(cs, (int)value);
        atomic_fetch_add(&cs->peers, 1);
        break;
    case ZMQ_EVENT_DISCONNECTED:
        if (atomic_load(&cs->peers) > 0) atomic_fetch_sub(&cs->peers, 1);
        if (w->pending[0] && !w->pending_skip) refusal_log(cs, conn_addr(cs, (int)value), where, w->pending);
        w->pending[0] = 0;
        w->pending_skip = 0;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        curve_handshake_describe(event, value, w->pending, sizeof w->pending);
        w->pending_skip = 1;    /* logged by zap_serve with the key */
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        curve_handshake_describe(event, value, w->pending, sizeof w->pending);
        w->pending_skip = 0;
        break;
    default:
        break;
    }
}

static void *handler_thread(void *arg)
{
    struct curve_server *cs = arg;
    zmq_pollitem_t items[1 + CURVE_MAX_WATCH];
    struct watch *ws[CURVE_MAX_WATCH];
    while (!atomic_load(&cs->stop)) {
        int n = 0;
        items[n++] = (zmq_pollitem_t){ cs->zap, 0, ZMQ_POLLIN, 0 };
        pthread_mutex_lock(&cs->mu);
        for (int i = 0; i < cs->nwatch; i++) {
            ws[n - 1] = &cs->watches[i];
            items[n++] = (zmq_pollitem_t){ cs->watches[i].pair, 0, ZMQ_POLLIN, 0 };
        }
        pthread_mutex_unlock(&cs->mu);
        int rc = zmq_poll(items, n, 100);
        if (rc < 0) {
            if (zmq_errno() == ETERM) break;
            continue;
        }
        if (items[0].revents & ZMQ_POLLIN) zap_serve(cs);
        for (int i = 1; i < n; i++)
            if (items[i].revents & ZMQ_POLLIN) watch_serve(cs, ws[i - 1]);
    }
    return NULL;
}

status curve_server_new(void *ctx, const struct curve_opts *o, const char *who, int admit_own,
                        struct curve_server **out)
{
    *out = NULL;
    TRY(curve_opts_check(o, 1));
    if (!curve_opts_enabled(o)) return FAIL(STATUS_USAGE, "%s: CURVE server without --curve_secret_key", who);
    if (!zmq_has("curve")) return FAIL(STATUS_UNSUPPORTED, "%s: this libzmq has no CURVE support", who);
    status st = STATUS_OK;
    struct curve_server *cs = calloc(1, sizeof *cs);
    if (!cs) return FAIL(STATUS_NOMEM, "curve: server");
    cs->ctx = ctx;
    pthread_mutex_init(&cs->mu, NULL);
    snprintf(cs->who, sizeof cs->who, "%s", who);
    snprintf(cs->authorized_dir, sizeof cs->authorized_dir, "%s", o->authorized_keys);
    if ((st = curve_secret_key_load(o->secret_key, cs->pub, cs->sec)) != STATUS_OK) goto fail;
    if ((st = keys_load(cs, o->authorized_keys, admit_own)) != STATUS_OK) goto fail;
    cs->zap = zmq_socket(ctx, ZMQ_REP);
    if (!cs->zap) { st = FAIL(STATUS_ZMQ, "%s: ZAP socket: %s", who, zmq_strerror(zmq_errno())); goto fail; }
    int linger = 0;
    zmq_setsockopt(cs->zap, ZMQ_LINGER, &linger, sizeof linger);
    /* a second handler on this context would mean someone else decides who gets in */
    if (zmq_bind(cs->zap, CURVE_ZAP_ENDPOINT) != 0) {
        st = FAIL(STATUS_ZMQ, "%s: bind %s: %s", who, CURVE_ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (pthread_create(&cs->thread, NULL, handler_thread, cs) != 0) { st = FAIL(STATUS_NOMEM, "%s: ZAP thread", who); goto fail; }
    cs->started = 1;
    log_info("%s: CURVE on, server key %s, %d authorized client key%s from %s", who, cs->pub, cs->nkeys - (admit_own != 0),
             cs->nkeys - (admit_own != 0) == 1 ? "" : "s", o->authorized_keys);
    *out = cs;
    return STATUS_OK;
fail:
    curve_server_free(&cs);
    return st;
}

status curve_server_secure(struct curve_server *cs, void *sock)
{
    ASSERT(cs && cs->started);
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, cs->sec, CURVE_KEY_Z85_LEN) != 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, CURVE_DOMAIN, strlen(CURVE_DOMAIN)) != 0)
        return FAIL(STATUS_ZMQ, "%s: CURVE server options: %s", cs->who, zmq_strerror(zmq_errno()));
    /* where the library has it (draft API), also fail closed if the handler ever went away */
    (void)zmq_setsockopt(sock, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one);
    return STATUS_OK;
}

status curve_server_apply(struct curve_server *cs, void *sock)
{
    TRY(curve_server_secure(cs, sock));
    pthread_mutex_lock(&cs->mu);
    status st = STATUS_OK;
    if (cs->nwatch >= CURVE_MAX_WATCH) { st = FAIL(STATUS_TOO_BIG, "%s: more than %d CURVE sockets", cs->who, CURVE_MAX_WATCH); goto done; }
    struct watch *w = &cs->watches[cs->nwatch];
    memset(w, 0, sizeof *w);
    char ep[96];
    snprintf(ep, sizeof ep, "inproc://deeper-curve-monitor-%p-%d", (void *)cs, cs->mon_seq++);
    int events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor(sock, ep, events) != 0 || !(w->pair = zmq_socket(cs->ctx, ZMQ_PAIR)) ||
        zmq_connect(w->pair, ep) != 0) {
        st = FAIL(STATUS_ZMQ, "%s: socket monitor: %s", cs->who, zmq_strerror(zmq_errno()));
        if (w->pair) zmq_close(w->pair);
        w->pair = NULL;
        goto done;
    }
    int linger = 0;
    zmq_setsockopt(w->pair, ZMQ_LINGER, &linger, sizeof linger);
    cs->nwatch++;
done:
    pthread_mutex_unlock(&cs->mu);
    return st;
}

const char *curve_server_public_key(const struct curve_server *cs) { return cs->pub; }

void curve_server_counts(struct curve_server *cs, struct curve_counts *out)
{
    out->admitted = atomic_load(&cs->admitted);
    out->refused = atomic_load(&cs->refused);
}

int curve_server_peers(struct curve_server *cs) { return atomic_load(&cs->peers); }

void curve_server_free(struct curve_server **csp)
{
    struct curve_server *cs = csp ? *csp : NULL;
    if (!cs) return;
    if (cs->started) {
        atomic_store(&cs->stop, 1);
        pthread_join(cs->thread, NULL);
    }
    for (int i = 0; i < cs->nwatch; i++)
        if (cs->watches[i].pair) zmq_close(cs->watches[i].pair);
    if (cs->zap) zmq_close(cs->zap);
    explicit_bzero(cs->sec, sizeof cs->sec);
    free(cs->keys);
    free(cs->names);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
    *csp = NULL;
}

// ------------------------------------------------------------------ client

status curve_client_apply(void *sock, const struct curve_opts *o)
{
    TRY(curve_opts_check(o, 0));
    if (!curve_opts_enabled(o)) return FAIL(STATUS_USAGE, "CURVE client without --curve_secret_key");
    if (!zmq_has("curve")) return FAIL(STATUS_UNSUPPORTED, "this libzmq has no CURVE support");
    char pub[CURVE_KEY_Z85_LEN + 1], sec[CURVE_KEY_Z85_LEN + 1], server[CURVE_KEY_Z85_LEN + 1];
    status st = curve_secret_key_load(o->secret_key, pub, sec);
    if (st == STATUS_OK) st = curve_public_key_load(o->server_key, server);
    if (st == STATUS_OK &&
        (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, CURVE_KEY_Z85_LEN) != 0 ||
         zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, CURVE_KEY_Z85_LEN) != 0 ||
         zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, CURVE_KEY_Z85_LEN) != 0))
        st = FAIL(STATUS_ZMQ, "CURVE client options: %s", zmq_strerror(zmq_errno()));
    explicit_bzero(sec, sizeof sec);
    return st;
}

status curve_listen_check(const char *listen, const struct curve_opts *o)
{
    if (!listen) {
        if (curve_opts_enabled(o) || o->insecure) return FAIL(STATUS_USAGE, "--curve_secret_key/--insecure go with --listen");
        return STATUS_OK;
    }
    TRY(curve_opts_check(o, 1));
    TRY(curve_policy_check(listen, curve_opts_enabled(o), o->insecure));
    if (o->insecure) log_warn("--insecure: %s accepts batches from anyone who reaches it", listen);
    return STATUS_OK;
}
