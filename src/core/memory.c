#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "cnnc_internal.h"

void *cnnc_malloc(size_t bytes)
{
    void *ptr = NULL;
    size_t rounded = (bytes + CNNC_ALIGN - 1) & ~(size_t)(CNNC_ALIGN - 1);
    if (rounded < bytes)
        return NULL;
    if (posix_memalign(&ptr, CNNC_ALIGN, rounded ? rounded : CNNC_ALIGN) != 0)
        return NULL;
    return ptr;
}

void cnnc_free(void *ptr) { free(ptr); }

/* Scratch buffers are per thread, so kernels running on OpenMP workers or
 * several Python threads never share them; a pthread key frees them when a
 * thread exits. */
struct workspace {
    void *buffer[CNNC_WORKSPACE_SLOTS];
    size_t size[CNNC_WORKSPACE_SLOTS];
};

/* Buffers of a megabyte or more get a mapping of their own, given back
 * whole when outgrown: the C library keeps a freed block below its adaptive
 * mmap threshold (up to 32 MiB) in its heap, where, under later blocks, its
 * pages stay resident. A workspace grows several times in a first training
 * step, and its outgrown buffers stayed beside the step's arrays (ResNet-50
 * and VGG16 at batch 8: 5 MiB off the peak). */
#define WORKSPACE_MAP_MIN ((size_t)1 << 20)

static size_t mapping_length(size_t bytes)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (bytes + page - 1) / page * page;
}

static void *workspace_alloc(size_t bytes)
{
    if (bytes < WORKSPACE_MAP_MIN)
        return cnnc_malloc(bytes);
    if (bytes > SIZE_MAX - (1u << 16))
        return NULL;
    void *p = mmap(NULL, mapping_length(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void workspace_free(void *buffer, size_t bytes)
{
    if (!buffer)
        return;
    if (bytes < WORKSPACE_MAP_MIN)
        cnnc_free(buffer);
    else
        munmap(buffer, mapping_length(bytes));
}

static pthread_key_t workspace_key;
static pthread_once_t workspace_once = PTHREAD_ONCE_INIT;

static void workspace_destroy(void *arg)
{
    struct workspace *ws = arg;
    if (!ws)
        return;
    for (int i = 0; i < CNNC_WORKSPACE_SLOTS; ++i)
        workspace_free(ws->buffer[i], ws->size[i]);
    free(ws);
}

static void workspace_key_create(void) { pthread_key_create(&workspace_key, workspace_destroy); }

void *cnnc_workspace(int slot, size_t bytes)
{
    if (slot < 0 || slot >= CNNC_WORKSPACE_SLOTS) {
        cnnc_error(CNNC_ERR_INTERNAL, "workspace slot %d out of range", slot);
        return NULL;
    }
    pthread_once(&workspace_once, workspace_key_create);
    struct workspace *ws = pthread_getspecific(workspace_key);
    if (!ws) {
        ws = calloc(1, sizeof *ws);
        if (!ws || pthread_setspecific(workspace_key, ws) != 0) {
            free(ws);
            cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "cannot allocate the workspace table");
            return NULL;
        }
    }
    if (ws->size[slot] < bytes) {
        /* Grow geometrically so that slowly increasing sizes do not
         * reallocate on every call. */
        size_t grown = ws->size[slot] + ws->size[slot] / 2;
        size_t want = bytes > grown ? bytes : grown;
        workspace_free(ws->buffer[slot], ws->size[slot]);
        ws->buffer[slot] = workspace_alloc(want);
        ws->size[slot] = ws->buffer[slot] ? want : 0;
        if (!ws->buffer[slot]) {
            cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes of workspace", want);
            return NULL;
        }
    }
    return ws->buffer[slot];
}

void cnnc_release_workspace(void)
{
    pthread_once(&workspace_once, workspace_key_create);
    struct workspace *ws = pthread_getspecific(workspace_key);
    if (ws) {
        pthread_setspecific(workspace_key, NULL);
        workspace_destroy(ws);
    }
}
