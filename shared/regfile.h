/*
 * regfile.h — open a file for reading only if it is a regular file.
 *
 * open(2) on a FIFO blocks until a writer appears, and reading a character
 * device (/dev/zero, a terminal) never ends, so a checkpoint path or an
 * image name that points at one would hang the program before any check
 * could run.  regfile_open() opens with O_NONBLOCK (which makes open() of a
 * FIFO return at once), checks the type with fstat() on the descriptor it
 * holds (no window between the check and the use), refuses anything but a
 * regular file with one line naming the path and what it is, and then clears
 * O_NONBLOCK again.
 */
#ifndef DEEPER_REGFILE_H
#define DEEPER_REGFILE_H

#include <stdio.h>
#include <sys/stat.h>

#include "shared/status.h"

/* Open `path` read-only (O_CLOEXEC).  *fd gets the descriptor; *sb (optional)
 * its fstat.  STATUS_NOT_FOUND when absent, STATUS_IO on other open errors,
 * STATUS_FORMAT "PATH: not a regular file (a FIFO)" for anything but a
 * regular file. */
status regfile_open(const char *path, int *fd, struct stat *sb);

/* The same as a stdio stream ("rb"). */
status regfile_fopen(const char *path, FILE **fp);

/* "a FIFO", "a directory", ... for a st_mode. */
const char *regfile_kind(mode_t mode);

#endif
