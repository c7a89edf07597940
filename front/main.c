/*
 * front/main.c — `deeper`, the git-style front door.
 *
 * `deeper CMD ARGS...` runs `deeper-CMD ARGS...` from the directory this
 * binary lives in (so bin/deeper ingest runs bin/deeper-ingest), falling back
 * to $PATH.  `deeper` or `deeper --help` lists the commands found.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void front_self_dir(char *dir, size_t n)
{
    ssize_t len = readlink("/proc/self/exe", dir, n - 1);
    if (len <= 0) { snprintf(dir, n, "."); return; }
    dir[len] = 0;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
}

static void front_usage(const char *dir)
{
    printf("usage: deeper COMMAND [flags]\n\n"
           "Turns a folder of images into a trained image classifier.\n\n"
           "commands:\n");
    const char *order[] = { "ingest", "info", "augment", "train", "eval", "classify", "export", "keygen" };
    const char *what[] = {
        "decode images (class folders or MNIST idx files) into sharded LMDB",
        "describe a dataset directory (--verify re-reads every record)",
        "one augment worker: distort and stream batches over ZeroMQ",
        "train a model (CPU or CUDA), checkpoints and TensorBoard logs",
        "precision @ 1 / recall @ 5 of a checkpoint on a validation subset",
        "top-5 classes for image files",
        "write a checkpoint's EMA weights under torchvision's names",
        "write a CURVE key pair for authenticated remote workers",
    };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/deeper-%s", dir, order[i]);
        if (access(path, X_OK) == 0) printf("  %-10s %s\n", order[i], what[i]);
    }
    printf("\n`deeper COMMAND --help` shows a command's flags.\n");
}

int main(int argc, char **argv)
{
    char dir[PATH_MAX];
    front_self_dir(dir, sizeof dir);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        front_usage(dir);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strchr(cmd, '/') || cmd[0] == '-') {
        fprintf(stderr, "deeper: error: '%s' is not a command (see deeper --help)\n", cmd);
        return 2;
    }
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/deeper-%s", dir, cmd);
    argv[1] = path;
    execv(path, argv + 1);
    char name[128];
    snprintf(name, sizeof name, "deeper-%s", cmd);
    argv[1] = name;
    execvp(name, argv + 1);
    fprintf(stderr, "deeper: error: '%s' is not a deeper command (see deeper --help)\n", cmd);
    return 2;
}
