/* Which stretches of time the contention monitor (src/core/contention.c)
 * measures: only cnnc's own work.
 *
 * Another library's thread pool in the process (OpenBLAS, PyTorch's
 * OpenMP, onnxruntime) runs between cnnc's operations on the same cores:
 * cnnc's threads then wait for CPUs that the process itself took, or serve
 * the other pool (a libgomp shared with PyTorch), and that wait says nothing
 * of the CPUs that cnnc's next operations find (the MNIST CNN between small
 * NumPy and PyTorch matrix products: cnnc's threads waited as if 0.56 CPUs
 * were busy during the other pools' calls and 0.08 during cnnc's own steps;
 * a 50 ms window holding both read 0.43, next to the 0.5 at which a
 * team of 2 drops to 1 thread).
 *
 * So the monitor reads its threads' counters only at the start and the end
 * of runs of cnnc's operations, pure header logic here so that tests can
 * replay timelines: a stretch opens at an operation's start, and is read at
 * the end of the first operation past its target length. A pause longer
 * than OWN_WORK_GAP_NS between two operations is other work: the stretch
 * opened before it is dropped and a new one opens at the next operation,
 * with a short target from then on (the work of a training step between
 * another library's calls lasts a millisecond or two). A sample is taken
 * once OWN_WORK_SAMPLE_NS of stretches were read, or gives up after
 * OWN_WORK_MAX_TRIES stretches. */
#ifndef CNNC_OWN_WORK_STRETCH_H
#define CNNC_OWN_WORK_STRETCH_H
#include <stdint.h>

#define OWN_WORK_GAP_NS 200000      /* longer than cnnc's own pauses between a step's operations */
#define OWN_WORK_SHORT_NS 1000000   /* a stretch's target once other work interleaves */
#define OWN_WORK_SAMPLE_NS 16000000 /* stretch time a sample reads: longer than a time slice or two */
#define OWN_WORK_MAX_TRIES 40       /* stretches a sample opens: a short one or two per training step */

typedef struct {
    int open;            /* a stretch is being measured */
    int short_target;    /* other work interleaves: stretches of OWN_WORK_SHORT_NS */
    int tries;           /* stretches opened in this sample */
    int64_t start_ns;    /* the open stretch's start */
    int64_t last_end_ns; /* the end of cnnc's last operation */
    int64_t read_ns;     /* stretch time read in this sample */
} own_work_stretch;

enum {
    OWN_WORK_NOTHING,    /* no counters to read */
    OWN_WORK_BASELINE,   /* read the counters: a stretch starts */
    OWN_WORK_ADD,        /* read the counters and add the stretch; the next one starts there */
    OWN_WORK_ADD_SAMPLE, /* read and add the stretch; the sample ends: decide on what was read */
    OWN_WORK_GIVE_UP,    /* the sample ends with no read: decide on what was read */
};

/* A sample starts: its first stretch opens at this operation's start. */
static inline int own_work_begin(own_work_stretch *s, int64_t now)
{
    s->open = 1;
    s->short_target = 0;
    s->tries = 1;
    s->start_ns = now;
    s->last_end_ns = now;
    s->read_ns = 0;
    return OWN_WORK_BASELINE;
}

/* An operation starts at `now` during a sample. */
static inline int own_work_operation_start(own_work_stretch *s, int64_t now)
{
    if (!s->open || now - s->last_end_ns <= OWN_WORK_GAP_NS)
        return OWN_WORK_NOTHING;
    /* Other work ran since cnnc's last operation: the stretch holds it. */
    s->short_target = 1;
    if (++s->tries > OWN_WORK_MAX_TRIES) {
        s->open = 0;
        return OWN_WORK_GIVE_UP;
    }
    s->start_ns = now;
    s->last_end_ns = now;
    return OWN_WORK_BASELINE;
}

/* An operation ends at `now` during a sample. */
static inline int own_work_operation_end(own_work_stretch *s, int64_t now)
{
    if (!s->open)
        return OWN_WORK_NOTHING;
    s->last_end_ns = now;
    int64_t length = now - s->start_ns;
    int64_t target = s->short_target ? OWN_WORK_SHORT_NS : OWN_WORK_SAMPLE_NS - s->read_ns;
    if (length < target)
        return OWN_WORK_NOTHING;
    s->read_ns += length;
    if (s->read_ns >= OWN_WORK_SAMPLE_NS || s->tries >= OWN_WORK_MAX_TRIES) {
        s->open = 0;
        return OWN_WORK_ADD_SAMPLE;
    }
    ++s->tries;
    s->start_ns = now;
    return OWN_WORK_ADD;
}

#endif
