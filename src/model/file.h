/* The model file container (docs/format.md): an 8-byte little-endian header
 * length N, N bytes of JSON, then the tensors, tiling bytes [8 + N, end)
 * exactly in data_offsets order. Everything is checked against the buffer
 * (or the open file) before it is used; the tensors point into the
 * caller's buffer, or are read from the file one at a time
 * (model_file_read), so that a model loaded from a file never holds the
 * file's bytes whole beside its own copies. */
#ifndef CNNC_MODEL_FILE_H
#define CNNC_MODEL_FILE_H

#include "json.h"

/* Headers above this are refused (the limit of the reference safetensors
 * implementation). */
#define MODEL_FILE_MAX_HEADER (100u << 20)
#define MODEL_MAX_RANK 8

typedef struct file_tensor {
    const char *name;          /* owned by the header tree (or the caller of model_file_from_tensors) */
    int is_f32;
    int rank;
    int64_t shape[MODEL_MAX_RANK];
    int64_t count;             /* elements */
    int64_t nbytes;
    const unsigned char *data; /* little-endian bytes inside the buffer (native floats from model_file_from_tensors);
                                * NULL for a tensor of an open file */
    int64_t offset;            /* in the file, for model_file_open_fd */
} file_tensor;

typedef struct model_file {
    json_value *header;
    json_value *config;        /* parsed __metadata__.model_config */
    file_tensor *tensors;      /* sorted by name */
    size_t count;
    int borrowable;            /* the caller lends the tensors for the model's lifetime */
    int fd;                    /* the open file the tensors are read from (model_file_open_fd), else -1 */
} model_file;

/* Validates bytes[0, size) as a cnnc model file (format "cnnc", version 1 or
 * 2, kind "model", CRC-32 checksums checked when present and required by
 * version 2) and parses its model_config. */
CNNC_INTERNAL cnnc_status model_file_open(const void *bytes, size_t size, model_file *file);
/* The same from the open file fd of `size` bytes (not closed here): the
 * header is read and checked, then every tensor's checksum by reading the
 * file through a small buffer; the tensors are left in the file. */
CNNC_INTERNAL cnnc_status model_file_open_fd(int fd, uint64_t size, model_file *file);
/* Tensor t's nbytes bytes into dst: copied from the buffer, or read from the
 * file (CNNC_ERR_IO if it is shorter than when it was opened). */
CNNC_INTERNAL cnnc_status model_file_read(const model_file *file, const file_tensor *t, void *dst);
/* The same container over float32 arrays held by the caller (see
 * cnnc_model_load_tensors): the shapes and names are checked, the config
 * parsed; the tensors point into the caller's arrays. */
CNNC_INTERNAL cnnc_status model_file_from_tensors(const char *config, size_t n, const char *const *names,
                                                  const int *ranks, const int64_t *shapes,
                                                  const float *const *data, model_file *file);
CNNC_INTERNAL void model_file_close(model_file *file);
/* The tensor called name, or NULL. */
CNNC_INTERNAL const file_tensor *model_file_find(const model_file *file, const char *name);

#endif
