/*
 * dispatch_ipc.c — the private folder of a consumer's local endpoint.
 *
 * Local workers reach the dispatcher over ipc:// inside a folder of mode 0700
 * made for the run (`TMPDIR/deeper-train-PID-XXXXXX/workers`), so no other
 * user can connect to it.  A run killed with kill -9 leaves its folder
 * behind; the next run of the same program removes every such folder whose
 * PID is no longer alive and that belongs to this user.
 */
#include "trainer/dispatcher.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/log.h"

/* Remove the endpoint folders `prefix-PID-XXXXXX` that runs killed with
 * kill -9 left in tmp: ours, and their PID no longer alive. */
static void ipc_dirs_remove_stale(const char *tmp, const char *prefix)
{
    DIR *d = opendir(tmp);
    if (!d) return;
    size_t lp = strlen(prefix);
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, lp) != 0 || e->d_name[lp] != '-') continue;
        char *end = NULL;
        errno = 0;
        long pid = strtol(e->d_name + lp + 1, &end, 10);
        if (errno || pid <= 0 || pid > INT32_MAX || pid == (long)getpid() || *end != '-' || strlen(end) != 7) continue;
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(sb.st_mode) ||
            sb.st_uid != geteuid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;   /* alive (or not ours to judge) */
        char path[600];
        snprintf(path, sizeof path, "%s/%s", tmp, e->d_name);
        dispatcher_ipc_dir_remove(path);
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) removed++;
    }
    closedir(d);
    if (removed) log_info("removed %d stale endpoint folder(s) of killed runs from %s", removed, tmp);
}

status dispatcher_ipc_dir_make(const char *prefix, char *dir, size_t dir_n, char *endpoint, size_t ep_n)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || strlen(tmp) > 60) tmp = "/tmp";
    ipc_dirs_remove_stale(tmp, prefix);
    snprintf(dir, dir_n, "%s/%s-%d-XXXXXX", tmp, prefix, (int)getpid());
    if (!mkdtemp(dir)) return FAIL(STATUS_IO, "%s: mkdtemp: %s", dir, strerror(errno));
    chmod(dir, 0700);
    snprintf(endpoint, ep_n, "ipc://%s/workers", dir);
    return STATUS_OK;
}

void dispatcher_ipc_dir_remove(const char *dir)
{
    if (!dir || !dir[0]) return;
    char path[512];
    snprintf(path, sizeof path, "%s/workers", dir);
    unlink(path);
    rmdir(dir);
}
