/*
 * trainer/main_keygen.c — `deeper keygen DIR [--name NAME]`: write a CURVE key
 * pair for the batch stream (shared/curve.c does the work).
 *
 * DIR/NAME.key is the public certificate (give it to the other side: a
 * consumer's NAME.key goes to its workers as --curve_server_key, a worker's
 * goes into the consumer's --authorized_keys DIR); DIR/NAME.key_secret stays
 * where it is, mode 0600, and is given as --curve_secret_key.  Both are
 * czmq zcert text files.  DIR is created (0700) when missing; existing keys
 * are never overwritten.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/curve.h"    /* defines: curve_keypair_write, curve_public_key_load */
#include "shared/flags.h"    /* defines: flags_parse */

int main(int argc, char **argv)
{
    char host[64] = "deeper";
    const char *name = NULL;
    const struct flag flags[] = {
        { "name", FLAG_STRING, &name, "file name stem: writes NAME.key and NAME.key_secret (default: the host name)", NULL },
    };
    const struct flags_spec spec = {
        .prog = "deeper keygen", .usage = "[--name NAME] DIR",
        .summary = "Writes a ZeroMQ CURVE key pair for the batch stream: DIR/NAME.key (public; hand it to the\n"
                   "other side) and DIR/NAME.key_secret (mode 0600; --curve_secret_key).  A consumer's\n"
                   "NAME.key is its workers' --curve_server_key; a worker's NAME.key goes into the\n"
                   "consumer's --authorized_keys DIR.  Existing files are never overwritten.",
        .flags = flags, .nflags = FLAGS_COUNT(flags), .min_positional = 1, .max_positional = 1,
    };
    char *args[argc > 0 ? argc : 1];
    int npos = 0;
    char pub[4096] = "", sec[4096] = "", key[CURVE_KEY_Z85_LEN + 1] = "";
    status st = flags_parse(&spec, argc, argv, args, &npos);
    if (st == STATUS_HELP) return 0;
    if (st == STATUS_OK && !name) {
        if (gethostname(host, sizeof host) != 0 || !host[0]) snprintf(host, sizeof host, "deeper");
        host[strcspn(host, ".")] = 0;
        name = host;
    }
    if (st == STATUS_OK) {   /* "keys/" and "keys" name the same folder: no "keys//NAME.key" in the lines below */
        size_t n = strlen(args[0]);
        while (n > 1 && args[0][n - 1] == '/') args[0][--n] = 0;
    }
    if (st == STATUS_OK && mkdir(args[0], 0700) != 0 && errno != EEXIST)
        st = FAIL(STATUS_IO, "%s: mkdir: %s", args[0], strerror(errno));
    if (st == STATUS_OK) st = curve_keypair_write(args[0], name, pub, sec, sizeof pub);
    if (st == STATUS_OK) st = curve_public_key_load(pub, key);
    if (st == STATUS_OK) printf("public key %s\n  public: %s\n  secret: %s (mode 0600)\n", key, pub, sec);
    fflush(stdout);
    return status_report("deeper keygen", st, st == STATUS_USAGE ? "see deeper keygen --help" : NULL);
}
