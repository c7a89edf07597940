/*
 * regfile.c — type-checked opens for reading (see regfile.h).
 */
#include "shared/regfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

const char *regfile_kind(mode_t mode)
{
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

status regfile_open(const char *path, int *out, struct stat *out_sb)
{
    *out = -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == ENXIO) return FAIL(STATUS_FORMAT, "%s: not a regular file (a socket or device)", path);
        return FAIL(e == ENOENT ? STATUS_NOT_FOUND : STATUS_IO, "%s: open: %s", path, strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return FAIL(STATUS_IO, "%s: stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return FAIL(STATUS_FORMAT, "%s: not a regular file (%s); refusing to read it", path, regfile_kind(sb.st_mode));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *out = fd;
    if (out_sb) *out_sb = sb;
    return STATUS_OK;
}

status regfile_fopen(const char *path, FILE **out)
{
    *out = NULL;
    int fd;
    TRY(regfile_open(path, &fd, NULL));
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        int e = errno;
        close(fd);
        return FAIL(STATUS_IO, "%s: fdopen: %s", path, strerror(e));
    }
    *out = fp;
    return STATUS_OK;
}
