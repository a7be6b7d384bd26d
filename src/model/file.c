/* Reading and checking the model file container; see file.h. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "crc32.h"
#include "file.h"

static const struct { const char *name; int size; } dtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
    {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1},
};

static cnnc_status bad(const char *fmt, const char *detail)
{
    return cnnc_error(CNNC_ERR_FORMAT, fmt, detail);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(((const file_tensor *)a)->name, ((const file_tensor *)b)->name);
}

typedef struct span { int64_t begin, end; size_t index; } span;

static int compare_spans(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static uint64_t read_u64_le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

/* One tensor entry: dtype, shape and offsets, checked against the data size. */
static cnnc_status read_entry(const char *name, const json_value *entry, const unsigned char *data,
                              int64_t data_size, file_tensor *t, span *s)
{
    if (entry->type != JSON_OBJECT || entry->count != 3) return bad("tensor \"%.200s\": the entry must hold exactly dtype, shape and data_offsets", name);
    const char *dtype = json_get_string(entry, "dtype");
    const json_value *shape = json_get_array(entry, "shape");
    const json_value *offsets = json_get_array(entry, "data_offsets");
    if (!dtype || !shape || !offsets) return bad("tensor \"%.200s\": the entry must hold exactly dtype, shape and data_offsets", name);
    int itemsize = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; ++i)
        if (strcmp(dtype, dtypes[i].name) == 0) itemsize = dtypes[i].size;
    if (!itemsize) return bad("tensor \"%.200s\": unknown dtype", name);
    if (shape->count > MODEL_MAX_RANK) return bad("tensor \"%.200s\": more than 8 axes", name);
    memset(t, 0, sizeof *t);
    t->name = name;
    t->is_f32 = strcmp(dtype, "F32") == 0;
    t->rank = (int)shape->count;
    int64_t count = 1;
    for (size_t i = 0; i < shape->count; ++i) {
        const json_value *d = &shape->items[i];
        if (d->type != JSON_NUMBER || !d->is_integer || d->integer < 0) return bad("tensor \"%.200s\": the shape must hold non-negative integers", name);
        t->shape[i] = d->integer;
        if (d->integer && count > INT64_MAX / d->integer) return bad("tensor \"%.200s\": the shape's size overflows", name);
        count *= d->integer;
    }
    if (count > INT64_MAX / itemsize) return bad("tensor \"%.200s\": the shape's size overflows", name);
    t->count = count;
    t->nbytes = count * itemsize;
    if (offsets->count != 2) return bad("tensor \"%.200s\": data_offsets must be [begin, end]", name);
    const json_value *b = &offsets->items[0], *e = &offsets->items[1];
    if (b->type != JSON_NUMBER || !b->is_integer || e->type != JSON_NUMBER || !e->is_integer || b->integer < 0 ||
        e->integer < b->integer)
        return bad("tensor \"%.200s\": data_offsets must be integers with 0 <= begin <= end", name);
    if (e->integer - b->integer != count * itemsize)
        return bad("tensor \"%.200s\": data_offsets do not span dtype size x shape bytes", name);
    if (e->integer > data_size) return bad("tensor \"%.200s\": the data ends past the end of the file (truncated?)", name);
    t->data = data ? data + b->integer : NULL;
    t->offset = b->integer;
    s->begin = b->integer;
    s->end = e->integer;
    return CNNC_OK;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Reads bytes [offset, offset + size) of the open file into dst. */
static cnnc_status read_at(int fd, int64_t offset, void *dst, size_t size)
{
    unsigned char *p = dst;
    while (size) {
        ssize_t got = pread(fd, p, size, (off_t)offset);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return cnnc_error(CNNC_ERR_IO, "model file: cannot read %zu bytes at offset %lld (%s)", size,
                                        (long long)offset, got < 0 ? strerror(errno) : "the file got shorter");
        p += got;
        size -= (size_t)got;
        offset += got;
    }
    return CNNC_OK;
}

/* The bytes of a tensor read at a time from an open file: its checksum
 * needs no buffer of the tensor's size. */
#define FILE_CRC_CHUNK ((size_t)1 << 20)

static cnnc_status tensor_crc(const model_file *file, const file_tensor *t, uint32_t *crc)
{
    if (file->fd < 0) {
        *crc = model_crc32(t->data, (size_t)t->nbytes);
        return CNNC_OK;
    }
    unsigned char *chunk = malloc(FILE_CRC_CHUNK);
    if (!chunk) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model file: out of memory");
    cnnc_status status = CNNC_OK;
    uint32_t c = 0;
    for (int64_t done = 0; done < t->nbytes && status == CNNC_OK; done += (int64_t)FILE_CRC_CHUNK) {
        size_t n = (size_t)(t->nbytes - done < (int64_t)FILE_CRC_CHUNK ? t->nbytes - done : (int64_t)FILE_CRC_CHUNK);
        status = read_at(file->fd, t->offset + done, chunk, n);
        if (status == CNNC_OK) c = model_crc32_update(c, chunk, n);
    }
    free(chunk);
    *crc = c;
    return status;
}

cnnc_status model_file_read(const model_file *file, const file_tensor *t, void *dst)
{
    if (file->fd < 0) {
        memcpy(dst, t->data, (size_t)t->nbytes);
        return CNNC_OK;
    }
    return read_at(file->fd, t->offset, dst, (size_t)t->nbytes);
}

static cnnc_status check_checksums(const model_file *file, const char *text)
{
    json_value *sums;
    CNNC_TRY(json_parse(text, strlen(text), "the checksums metadata", &sums));
    cnnc_status status = CNNC_OK;
    if (sums->type != JSON_OBJECT) {
        status = bad("%s", "the checksums metadata must be a JSON object");
        goto done;
    }
    if (sums->count != file->count) {
        status = bad("%s", "the checksums metadata must name every tensor exactly once");
        goto done;
    }
    for (size_t i = 0; i < sums->count; ++i) {
        const json_value *v = &sums->items[i];
        const file_tensor *t = model_file_find(file, sums->keys[i]);
        if (!t) { status = bad("the checksums metadata names \"%.200s\", which is no tensor", sums->keys[i]); goto done; }
        if (v->type != JSON_STRING || v->length != 8) { status = bad("checksum of \"%.200s\": not 8 lowercase hex digits", t->name); goto done; }
        uint32_t want = 0;
        for (int k = 0; k < 8; ++k) {
            int d = hex_digit(v->string[k]);
            if (d < 0) { status = bad("checksum of \"%.200s\": not 8 lowercase hex digits", t->name); goto done; }
            want = want << 4 | (uint32_t)d;
        }
        uint32_t got = 0;
        if ((status = tensor_crc(file, t, &got)) != CNNC_OK) goto done;
        if (got != want) { status = bad("tensor \"%.200s\": its data does not match its CRC-32 checksum (corrupt file)", t->name); goto done; }
    }
done:
    json_free(sums);
    return status;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* metadata_checksum: the CRC-32 of key NUL value NUL over the other entries,
 * keys in increasing byte order (docs/format.md). */
static cnnc_status check_metadata_checksum(const json_value *meta, const char *want)
{
    if (strlen(want) != 8) return bad("%s", "metadata_checksum is not 8 lowercase hex digits");
    uint32_t expected = 0;
    for (int k = 0; k < 8; ++k) {
        int d = hex_digit(want[k]);
        if (d < 0) return bad("%s", "metadata_checksum is not 8 lowercase hex digits");
        expected = expected << 4 | (uint32_t)d;
    }
    const char **keys = malloc((meta->count ? meta->count : 1) * sizeof *keys);
    if (!keys) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model file: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < meta->count; ++i)
        if (strcmp(meta->keys[i], "metadata_checksum") != 0) keys[n++] = meta->keys[i];
    qsort(keys, n, sizeof *keys, compare_strings);
    uint32_t crc = 0;
    for (size_t i = 0; i < n; ++i) {
        const json_value *v = json_get(meta, keys[i]);
        crc = model_crc32_update(crc, keys[i], strlen(keys[i]) + 1);
        crc = model_crc32_update(crc, v->string, v->length + 1);
    }
    free(keys);
    if (crc != expected) return bad("%s", "the metadata does not match its metadata_checksum (corrupt file)");
    return CNNC_OK;
}

static cnnc_status check_metadata(const json_value *meta, int *version)
{
    if (!meta || meta->type != JSON_OBJECT) return bad("%s", "the header has no __metadata__ object: not a cnnc model file");
    for (size_t i = 0; i < meta->count; ++i)
        if (meta->items[i].type != JSON_STRING) return bad("__metadata__ entry \"%.200s\" is not a string", meta->keys[i]);
    const char *format = json_get_string(meta, "format");
    const char *v = json_get_string(meta, "format_version");
    const char *kind = json_get_string(meta, "kind");
    if (!format || strcmp(format, "cnnc") != 0) return bad("%s", "__metadata__.format is not \"cnnc\": not a cnnc model file");
    if (!v || (strcmp(v, "1") != 0 && strcmp(v, "2") != 0)) return bad("%s", "unsupported cnnc format_version (this library reads 1 and 2)");
    if (!kind || strcmp(kind, "model") != 0 || !json_get_string(meta, "model_config"))
        return bad("%s", "the file holds weights only (no model_config): save it with model.save");
    *version = v[0] - '0';
    return CNNC_OK;
}

/* The header length of a file of `size` bytes whose first 8 are b. */
static cnnc_status header_length(const unsigned char *b, uint64_t size, uint64_t *header_size)
{
    if (size < 8) return cnnc_error(CNNC_ERR_FORMAT, "model file: %llu bytes, shorter than the 8-byte header length",
                                    (unsigned long long)size);
    *header_size = read_u64_le(b);
    if (*header_size > MODEL_FILE_MAX_HEADER)
        return cnnc_error(CNNC_ERR_FORMAT, "model file: header length %llu is above the %u-byte limit",
                          (unsigned long long)*header_size, MODEL_FILE_MAX_HEADER);
    if (*header_size > size - 8)
        return cnnc_error(CNNC_ERR_FORMAT, "model file: truncated, the header needs %llu bytes and the file has %llu",
                          (unsigned long long)*header_size, (unsigned long long)(size - 8));
    return CNNC_OK;
}

/* The rest of model_file_open, its header's text given: the tensors lie at
 * data (NULL: in file->fd, from data_start on), data_size bytes. */
static cnnc_status open_header(const char *text, uint64_t header_size, const unsigned char *data, int64_t data_size,
                               int64_t data_start, model_file *file)
{
    CNNC_TRY(json_parse(text, (size_t)header_size, "model file header", &file->header));
    cnnc_status status = CNNC_OK;
    span *spans = NULL;
    const json_value *h = file->header;
    if (h->type != JSON_OBJECT) { status = bad("%s", "model file header is not a JSON object"); goto fail; }
    const json_value *meta = json_get(h, "__metadata__");
    int version = 0;
    if ((status = check_metadata(meta, &version)) != CNNC_OK) goto fail;
    size_t n = h->count - 1;
    file->tensors = calloc(n ? n : 1, sizeof *file->tensors);
    spans = calloc(n ? n : 1, sizeof *spans);
    if (!file->tensors || !spans) { status = cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model file: out of memory"); goto fail; }
    for (size_t i = 0, k = 0; i < h->count; ++i) {
        if (&h->items[i] == meta) continue;
        if ((status = read_entry(h->keys[i], &h->items[i], data, data_size, &file->tensors[k], &spans[k])) != CNNC_OK) goto fail;
        file->tensors[k].offset += data_start;
        ++k;
    }
    file->count = n;
    /* The tensors must tile the data exactly: no gap, no overlap, nothing after. */
    span *order = malloc((n ? n : 1) * sizeof *order);
    if (!order) { status = cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model file: out of memory"); goto fail; }
    memcpy(order, spans, n * sizeof *order);
    for (size_t i = 0; i < n; ++i) order[i].index = i;
    qsort(order, n, sizeof *order, compare_spans);
    int64_t end = 0;
    for (size_t i = 0; i < n && status == CNNC_OK; ++i) {
        if (order[i].begin != end) status = bad("tensor \"%.200s\": its data overlaps another tensor or leaves a gap", file->tensors[order[i].index].name);
        end = order[i].end;
    }
    free(order);
    if (status != CNNC_OK) goto fail;
    if (end != data_size) { status = cnnc_error(CNNC_ERR_FORMAT, "model file: %lld bytes after the last tensor (the file must end there)", (long long)(data_size - end)); goto fail; }
    /* Sorted by name for lookups by binary search; header keys are unique
     * (the JSON parser refuses duplicates), so the names are too. */
    qsort(file->tensors, n, sizeof *file->tensors, compare_names);
    {
        const char *sums = json_get_string(meta, "checksums");
        const char *meta_sum = json_get_string(meta, "metadata_checksum");
        if (version >= 2 && !sums) { status = bad("%s", "format_version 2 requires the checksums metadata"); goto fail; }
        if (version >= 2 && !meta_sum) { status = bad("%s", "format_version 2 requires the metadata_checksum metadata"); goto fail; }
        if (meta_sum && (status = check_metadata_checksum(meta, meta_sum)) != CNNC_OK) goto fail;
        if (sums && (status = check_checksums(file, sums)) != CNNC_OK) goto fail;
    }
    free(spans);
    spans = NULL;
    {
        const char *config = json_get_string(meta, "model_config");
        if ((status = json_parse(config, strlen(config), "model_config", &file->config)) != CNNC_OK) goto fail;
    }
    return CNNC_OK;
fail:
    free(spans);
    model_file_close(file);
    return status;
}

cnnc_status model_file_open(const void *bytes, size_t size, model_file *file)
{
    memset(file, 0, sizeof *file);
    file->fd = -1;
    const unsigned char *b = bytes;
    uint64_t header_size = 0;
    CNNC_TRY(header_length(b, size, &header_size));
    return open_header((const char *)b + 8, header_size, b + 8 + header_size, (int64_t)(size - 8 - header_size), 0,
                       file);
}

cnnc_status model_file_open_fd(int fd, uint64_t size, model_file *file)
{
    memset(file, 0, sizeof *file);
    file->fd = fd;
    unsigned char head[8];
    uint64_t header_size = 0;
    CNNC_TRY(read_at(fd, 0, head, size < 8 ? (size_t)size : 8));
    CNNC_TRY(header_length(head, size, &header_size));
    if (size - 8 - header_size > (uint64_t)INT64_MAX) return cnnc_error(CNNC_ERR_FORMAT, "model file: too large");
    /* The file's real size bounds this allocation, not anything it claims. */
    char *text = malloc(header_size ? (size_t)header_size : 1);
    if (!text) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model file: out of memory for the header");
    cnnc_status status = read_at(fd, 8, text, (size_t)header_size);
    if (status == CNNC_OK)
        status = open_header(text, header_size, NULL, (int64_t)(size - 8 - header_size), (int64_t)(8 + header_size),
                             file);
    free(text);
    if (status != CNNC_OK) file->fd = -1;
    return status;
}

cnnc_status model_file_from_tensors(const char *config, size_t n, const char *const *names, const int *ranks,
                                    const int64_t *shapes, const float *const *data, model_file *file)
{
    memset(file, 0, sizeof *file);
    file->fd = -1;
    CNNC_CHECK_PTR(config);
    if (n && (!names || !ranks || !shapes || !data))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "model tensors: names, ranks, shapes and data must not be NULL");
    if (n > SIZE_MAX / sizeof *file->tensors) return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "model tensors: too many");
    size_t config_len = strlen(config);
    if (config_len > MODEL_FILE_MAX_HEADER)
        return cnnc_error(CNNC_ERR_FORMAT, "model_config: %zu bytes, above the %u-byte limit", config_len, MODEL_FILE_MAX_HEADER);
    file->tensors = calloc(n ? n : 1, sizeof *file->tensors);
    if (!file->tensors) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model tensors: out of memory");
    cnnc_status status = CNNC_OK;
    for (size_t i = 0; i < n; ++i) {
        file_tensor *t = &file->tensors[i];
        if (!names[i]) { status = cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "model tensor %zu: the name is NULL", i); goto fail; }
        if (ranks[i] < 0 || ranks[i] > MODEL_MAX_RANK) { status = cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "tensor \"%.200s\": rank %d is not in [0, 8]", names[i], ranks[i]); goto fail; }
        t->name = names[i];
        t->is_f32 = 1;
        t->rank = ranks[i];
        int64_t count = 1;
        for (int k = 0; k < ranks[i]; ++k) {
            int64_t d = shapes[(size_t)MODEL_MAX_RANK * i + (size_t)k];
            if (d < 0) { status = cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "tensor \"%.200s\": negative dimension", names[i]); goto fail; }
            if (d && count > INT64_MAX / 4 / d) { status = cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "tensor \"%.200s\": the shape's size overflows", names[i]); goto fail; }
            t->shape[k] = d;
            count *= d;
        }
        if (count && !data[i]) { status = cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "tensor \"%.200s\": data is NULL", names[i]); goto fail; }
        t->count = count;
        t->nbytes = count * 4;
        t->data = (const unsigned char *)data[i];
    }
    file->count = n;
    qsort(file->tensors, n, sizeof *file->tensors, compare_names);
    for (size_t i = 1; i < n; ++i)
        if (strcmp(file->tensors[i - 1].name, file->tensors[i].name) == 0) {
            status = cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "tensor \"%.200s\" is given twice", file->tensors[i].name);
            goto fail;
        }
    if ((status = json_parse(config, config_len, "model_config", &file->config)) != CNNC_OK) goto fail;
    return CNNC_OK;
fail:
    model_file_close(file);
    return status;
}

void model_file_close(model_file *file)
{
    json_free(file->header);
    json_free(file->config);
    free(file->tensors);
    memset(file, 0, sizeof *file);
    file->fd = -1;
}

const file_tensor *model_file_find(const model_file *file, const char *name)
{
    size_t lo = 0, hi = file->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(file->tensors[mid].name, name);
        if (c == 0) return &file->tensors[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}
