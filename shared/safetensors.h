/*
 * safetensors.h — write and read the safetensors format (checkpoints, exports).
 *
 * Layout (huggingface/safetensors; proto/checkpoint.md): an 8-byte
 * little-endian header length N, N bytes of UTF-8 JSON (right-padded with
 * spaces; we pad to a multiple of 8 so the data buffer starts 8-aligned),
 * then the data buffer.  The header maps each tensor name to
 * {"dtype","shape","data_offsets":[begin,end]} (offsets relative to the
 * buffer, end exclusive) plus an optional "__metadata__" string->string map.
 * Data is little-endian, row-major.
 *
 * Writer: collect tensors (borrowed pointers) and metadata, then
 * safetensors_writer_save() writes PATH atomically: PATH.tmp.<pid>, fsync,
 * rename over PATH, fsync the directory.  A reader therefore sees the old
 * file, the new file, or no file, never a half-written one.  Tensors are laid
 * out sorted by descending dtype size, then by name (the reference writer's
 * order), so every tensor's data is aligned to its element size.
 *
 * Reader: safetensors_open() refuses anything but a regular file without
 * blocking on it (shared/regfile.h), maps the file read-only and validates it the way
 * the reference reader does before handing out anything: N <= 100,000,000,
 * header is a JSON object, no duplicate names, known dtypes, non-negative
 * integral shapes, end - begin == numel * dtype size, the offsets sorted are
 * contiguous from 0, and the file size is exactly 8 + N + last end.  Every
 * failure is STATUS_FORMAT/STATUS_CORRUPT with the path and the field.
 */
#ifndef DEEPER_SAFETENSORS_H
#define DEEPER_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "shared/status.h"

enum st_dtype {
    ST_BOOL = 0, ST_U8, ST_I8, ST_I16, ST_U16, ST_F16, ST_BF16, ST_I32, ST_U32,
    ST_F32, ST_F64, ST_I64, ST_U64, ST_DTYPE_COUNT
};

#define ST_MAX_DIMS 8

/* "F32" etc.; NULL for an invalid value. */
const char *st_dtype_name(enum st_dtype dt);
/* Bytes per element (BOOL = 1). */
size_t st_dtype_size(enum st_dtype dt);

struct st_tensor {
    const char *name;          /* borrowed from the owning writer/file */
    enum st_dtype dtype;
    int ndim;                  /* 0 = scalar */
    int64_t shape[ST_MAX_DIMS];
    const void *data;          /* file: inside the read-only mapping */
    size_t nbytes;
};

/* ---- writer ---- */
struct st_writer;

status safetensors_writer_new(struct st_writer **out);
/* Add a tensor; `data` (nbytes = numel * dtype size) is borrowed until save.
 * The name is copied.  Duplicate names and "__metadata__" are refused. */
status safetensors_writer_add(struct st_writer *w, const char *name, enum st_dtype dt,
                              const int64_t *shape, int ndim, const void *data);
/* Shorthand for a float32 tensor. */
status safetensors_writer_add_f32(struct st_writer *w, const char *name, const int64_t *shape,
                                  int ndim, const float *data);
/* Set a metadata string (both copied; a later value for the same key wins). */
status safetensors_writer_meta(struct st_writer *w, const char *key, const char *value);
/* Write everything to `path` atomically (see above). */
status safetensors_writer_save(struct st_writer *w, const char *path);
void safetensors_writer_free(struct st_writer **w);

/* ---- reader ---- */
struct st_file;

/* Open and validate `path`; caller closes with safetensors_free. */
status safetensors_open(struct st_file **out, const char *path);
void safetensors_free(struct st_file **f);

/* The path the file was opened with (borrowed). */
const char *safetensors_path(const struct st_file *f);

int safetensors_count(const struct st_file *f);
/* The i-th tensor in data-offset order (0 <= i < count).  Borrowed. */
const struct st_tensor *safetensors_at(const struct st_file *f, int i);
/* Tensor by name, or NULL.  Borrowed. */
const struct st_tensor *safetensors_find(const struct st_file *f, const char *name);
/* Metadata value, or NULL.  Borrowed. */
const char *safetensors_meta(const struct st_file *f, const char *key);
int safetensors_meta_count(const struct st_file *f);
/* The i-th metadata pair (borrowed). */
void safetensors_meta_at(const struct st_file *f, int i, const char **key, const char **value);

/* Copy a float32 tensor `name` of exactly `numel` elements into dst (which
 * need not be aligned the way the file is).  STATUS_NOT_FOUND when absent,
 * STATUS_FORMAT with both shapes when the dtype or size differs. */
status safetensors_read_f32(const struct st_file *f, const char *name, float *dst, int64_t numel);

/* Atomic small-file write helper (tmp + fsync + rename + fsync dir), also used
 * for the checkpoint index file. */
status safetensors_write_file_atomic(const char *path, const void *data, size_t n);

#endif
