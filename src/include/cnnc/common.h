/* Conventions shared by every cnnc function: status codes, the last-error
 * message, threads, ISA selection and aligned memory. */
#ifndef CNNC_COMMON_H
#define CNNC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CNNC_STATIC)
#  define CNNC_API
#elif defined(_WIN32)
#  ifdef CNNC_BUILDING
#    define CNNC_API __declspec(dllexport)
#  else
#    define CNNC_API __declspec(dllimport)
#  endif
#else
#  define CNNC_API __attribute__((visibility("default")))
#endif

/* Every public function returns one of these. On failure a description of
 * the problem is available from cnnc_last_error() on the same thread. */
typedef enum cnnc_status {
    CNNC_OK = 0,
    CNNC_ERR_INVALID_ARGUMENT = 1, /* a size, stride, option or pointer is wrong */
    CNNC_ERR_SHAPE = 2,            /* shapes disagree with each other */
    CNNC_ERR_OVERFLOW = 3,         /* a size computation overflows int64/size_t */
    CNNC_ERR_OUT_OF_MEMORY = 4,
    CNNC_ERR_UNSUPPORTED = 5,      /* valid request this build cannot serve */
    CNNC_ERR_INTERNAL = 6,
    CNNC_ERR_FORMAT = 7,           /* a model file is corrupt, truncated or not a cnnc model */
    CNNC_ERR_IO = 8                /* a file cannot be opened or read */
} cnnc_status;

/* Instruction-set paths, in increasing order of capability. */
typedef enum cnnc_isa {
    CNNC_ISA_SCALAR = 0,
    CNNC_ISA_AVX2 = 1,   /* AVX2 + FMA */
    CNNC_ISA_AVX512 = 2  /* AVX-512 F/BW/DQ/VL */
} cnnc_isa;

CNNC_API const char *cnnc_version(void);
/* Message of the last failure on the calling thread ("" if none). */
CNNC_API const char *cnnc_last_error(void);
CNNC_API void cnnc_clear_error(void);
CNNC_API const char *cnnc_status_string(cnnc_status status);

/* The path in use: the best one the CPU and OS support, lowered by the
 * environment variable CNNC_ISA=scalar|avx2|avx512 or cnnc_set_isa(). */
CNNC_API cnnc_isa cnnc_get_isa(void);
CNNC_API const char *cnnc_isa_name(void);
/* Best path this CPU supports and this build contains. */
CNNC_API cnnc_isa cnnc_max_isa(void);
/* Fails with CNNC_ERR_UNSUPPORTED when isa is above cnnc_max_isa(). */
CNNC_API cnnc_status cnnc_set_isa(cnnc_isa isa);

/* Threads used by the parallel kernels (n >= 1); defaults to the OpenMP
 * default (OMP_NUM_THREADS or the number of cores). */
CNNC_API cnnc_status cnnc_set_num_threads(int n);
CNNC_API int cnnc_get_num_threads(void);

/* 64-byte-aligned memory; cnnc_free(NULL) is a no-op. */
CNNC_API void *cnnc_malloc(size_t bytes);
CNNC_API void cnnc_free(void *ptr);
/* Frees the scratch buffers kept by the calling thread between calls. */
CNNC_API void cnnc_release_workspace(void);

#ifdef __cplusplus
}
#endif
#endif
