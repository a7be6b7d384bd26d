/* The public model API: load (file -> graph -> plan), shapes, and the
 * executor that walks the planned graph over one arena per call. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "ops.h"
#include "plan.h"

/* Arenas not in use, kept for the next call; a call that finds none (or only
 * small ones) allocates, so concurrent calls never share one. */
#define ARENA_POOL 8

struct cnnc_model {
    model_graph graph;
    model_plan plan;
    pthread_mutex_t lock;
    float *arenas[ARENA_POOL];
    size_t arena_bytes[ARENA_POOL];
    int n_arenas;
};

/* Builds the model from an opened container, which it closes. */
static cnnc_status load_file(model_file *file, cnnc_model **model)
{
    cnnc_model *m = calloc(1, sizeof *m);
    if (!m) { model_file_close(file); return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory"); }
    cnnc_status s = graph_build(file, &m->graph);
    model_file_close(file);
    if (s == CNNC_OK) s = plan_optimize(&m->graph);
    if (s == CNNC_OK) s = plan_pack_weights(&m->graph);
    if (s == CNNC_OK) s = plan_buffers(&m->graph, &m->plan);
    if (s == CNNC_OK && pthread_mutex_init(&m->lock, NULL) != 0) s = cnnc_error(CNNC_ERR_INTERNAL, "model: cannot create a mutex");
    if (s != CNNC_OK) {
        plan_free(&m->plan);
        graph_free(&m->graph);
        free(m);
        return s;
    }
    *model = m;
    return CNNC_OK;
}

cnnc_status cnnc_model_load_memory(const void *bytes, size_t size, cnnc_model **model)
{
    CNNC_CHECK_PTR(model);
    *model = NULL;
    if (!bytes && size) return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "cnnc_model_load_memory: bytes is NULL");
    model_file file;
    CNNC_TRY(model_file_open(bytes ? bytes : "", size, &file));
    return load_file(&file, model);
}

static cnnc_status load_tensors(const char *config, size_t n_tensors, const char *const *names, const int *ranks,
                                const int64_t *shapes, const float *const *data, int borrow, cnnc_model **model)
{
    CNNC_CHECK_PTR(model);
    *model = NULL;
    model_file file;
    CNNC_TRY(model_file_from_tensors(config, n_tensors, names, ranks, shapes, data, &file));
    file.borrowable = borrow;
    return load_file(&file, model);
}

cnnc_status cnnc_model_load_tensors(const char *config, size_t n_tensors, const char *const *names, const int *ranks,
                                    const int64_t *shapes, const float *const *data, cnnc_model **model)
{
    return load_tensors(config, n_tensors, names, ranks, shapes, data, 0, model);
}

cnnc_status cnnc_model_load_tensors_borrowed(const char *config, size_t n_tensors, const char *const *names,
                                             const int *ranks, const int64_t *shapes, const float *const *data,
                                             cnnc_model **model)
{
    return load_tensors(config, n_tensors, names, ranks, shapes, data, 1, model);
}

size_t cnnc_model_weight_bytes(const cnnc_model *model)
{
    return model ? plan_weight_bytes(&model->graph) : 0;
}

cnnc_status cnnc_model_load(const char *path, cnnc_model **model)
{
    CNNC_CHECK_PTR(path);
    CNNC_CHECK_PTR(model);
    *model = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cnnc_error(CNNC_ERR_IO, "cannot open %.300s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cnnc_error(CNNC_ERR_IO, "%.300s is not a regular file", path);
    }
    /* The tensors are read from the file one at a time into the model's
     * own arrays: the file's bytes are never held whole beside them. */
    model_file file;
    cnnc_status s = model_file_open_fd(fd, (uint64_t)st.st_size, &file);
    if (s == CNNC_OK) s = load_file(&file, model);
    close(fd);
    if (s == CNNC_ERR_IO) {
        char detail[320];
        snprintf(detail, sizeof detail, "%s", cnnc_last_error());
        return cnnc_error(CNNC_ERR_IO, "cannot read %.300s: %s", path, detail);
    }
    return s;
}

void cnnc_model_free(cnnc_model *model)
{
    if (!model) return;
    for (int i = 0; i < model->n_arenas; ++i) cnnc_free(model->arenas[i]);
    pthread_mutex_destroy(&model->lock);
    plan_free(&model->plan);
    graph_free(&model->graph);
    free(model);
}

int cnnc_model_num_inputs(const cnnc_model *model) { return model ? model->graph.n_inputs : 0; }
int cnnc_model_num_outputs(const cnnc_model *model) { return model ? model->graph.n_outputs : 0; }

static cnnc_status shape_of(const cnnc_model *model, int output, int index, int *rank, int64_t shape[8])
{
    CNNC_CHECK_PTR(model);
    CNNC_CHECK_PTR(rank);
    CNNC_CHECK_PTR(shape);
    int count = output ? model->graph.n_outputs : model->graph.n_inputs;
    if (index < 0 || index >= count)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "model: %s index %d out of range (the model has %d)",
                          output ? "output" : "input", index, count);
    const model_value *v = &model->graph.values[output ? model->graph.output_values[index] : model->graph.input_values[index]];
    *rank = v->rank;
    for (int k = 0; k < 8; ++k) shape[k] = k < v->rank ? v->shape[k] : 0;
    return CNNC_OK;
}

cnnc_status cnnc_model_input_shape_at(const cnnc_model *model, int index, int *rank, int64_t shape[8])
{
    return shape_of(model, 0, index, rank, shape);
}

cnnc_status cnnc_model_output_shape_at(const cnnc_model *model, int index, int *rank, int64_t shape[8])
{
    return shape_of(model, 1, index, rank, shape);
}

static cnnc_status single(const cnnc_model *model, const char *what)
{
    CNNC_CHECK_PTR(model);
    if (model->graph.n_inputs != 1 || model->graph.n_outputs != 1)
        return cnnc_error(CNNC_ERR_UNSUPPORTED, "%s: the model has %d inputs and %d outputs; use the _multi / _at forms",
                          what, model->graph.n_inputs, model->graph.n_outputs);
    return CNNC_OK;
}

cnnc_status cnnc_model_input_shape(const cnnc_model *model, int *rank, int64_t shape[8])
{
    CNNC_TRY(single(model, "cnnc_model_input_shape"));
    return shape_of(model, 0, 0, rank, shape);
}

cnnc_status cnnc_model_output_shape(const cnnc_model *model, int *rank, int64_t shape[8])
{
    CNNC_TRY(single(model, "cnnc_model_output_shape"));
    return shape_of(model, 1, 0, rank, shape);
}

/* An arena of at least `bytes`, from the pool if one is large enough. */
static float *take_arena(cnnc_model *m, size_t bytes, size_t *got)
{
    float *arena = NULL;
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < m->n_arenas; ++i) {
        if (m->arena_bytes[i] >= bytes) {
            arena = m->arenas[i];
            *got = m->arena_bytes[i];
            m->arenas[i] = m->arenas[m->n_arenas - 1];
            m->arena_bytes[i] = m->arena_bytes[m->n_arenas - 1];
            --m->n_arenas;
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (!arena) {
        arena = cnnc_malloc(bytes ? bytes : 64);
        *got = bytes;
    }
    return arena;
}

static void give_arena(cnnc_model *m, float *arena, size_t bytes)
{
    pthread_mutex_lock(&m->lock);
    if (m->n_arenas < ARENA_POOL) {
        m->arenas[m->n_arenas] = arena;
        m->arena_bytes[m->n_arenas] = bytes;
        ++m->n_arenas;
        arena = NULL;
    } else {
        /* Keep the larger ones: replace the smallest if this one beats it. */
        int smallest = 0;
        for (int i = 1; i < m->n_arenas; ++i) if (m->arena_bytes[i] < m->arena_bytes[smallest]) smallest = i;
        if (m->arena_bytes[smallest] < bytes) {
            float *old = m->arenas[smallest];
            m->arenas[smallest] = arena;
            m->arena_bytes[smallest] = bytes;
            arena = old;
        }
    }
    pthread_mutex_unlock(&m->lock);
    cnnc_free(arena);
}

static double seconds_of(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* predict_multi, timing each node into wall[i] / cpu[i] where they are not NULL. */
static cnnc_status run_graph(const cnnc_model *model, int64_t batch, const float *const *xs, float *const *ys,
                             double *wall, double *cpu)
{
    CNNC_CHECK_PTR(model);
    CNNC_CHECK_PTR(xs);
    CNNC_CHECK_PTR(ys);
    CNNC_CHECK_POS(batch);
    const model_graph *g = &model->graph;
    for (int i = 0; i < g->n_inputs; ++i)
        if (!xs[i]) return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "cnnc_model_predict: input %d is NULL", i);
    for (int i = 0; i < g->n_outputs; ++i)
        if (!ys[i]) return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "cnnc_model_predict: output %d is NULL", i);
    int64_t floats;
    size_t bytes;
    CNNC_TRY(cnnc_mul_sizes(&floats, 2, batch, model->plan.per_sample));
    for (int i = 0; i < g->n_values; ++i) {
        int64_t n;
        CNNC_TRY(cnnc_mul_sizes(&n, 2, batch, g->values[i].size));
        CNNC_TRY(cnnc_float_bytes(n, &bytes));
    }
    CNNC_TRY(cnnc_float_bytes(floats, &bytes));
    /* The arena pool is the only state a call changes, under the lock. */
    cnnc_model *m = (cnnc_model *)model;
    size_t arena_bytes;
    float *arena = take_arena(m, bytes, &arena_bytes);
    if (!arena) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "cnnc_model_predict: cannot allocate %zu bytes of activations", bytes);
    const float *stack_in[8];
    const float **in = stack_in;
    int max_in = 1;
    for (int i = 0; i < g->n_nodes; ++i) if (g->nodes[i].n_inputs > max_in) max_in = g->nodes[i].n_inputs;
    if (max_in > 8 && !(in = malloc((size_t)max_in * sizeof *in))) {
        give_arena(m, arena, arena_bytes);
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "cnnc_model_predict: out of memory");
    }
    cnnc_status s = CNNC_OK;
    for (int i = 0; i < g->n_nodes; ++i) {
        if (wall) wall[i] = 0.0;
        if (cpu) cpu[i] = 0.0;
    }
    for (int i = 0; i < g->n_nodes && s == CNNC_OK; ++i) {
        const model_node *node = &g->nodes[i];
        if (node->op == OP_IDENTITY) continue;  /* aliases its input's buffer */
        double wall0 = wall ? seconds_of(CLOCK_MONOTONIC) : 0.0, cpu0 = cpu ? seconds_of(CLOCK_THREAD_CPUTIME_ID) : 0.0;
        for (int k = 0; k < node->n_inputs; ++k) {
            int v = node->inputs[k];
            /* Walk identity aliases of a model input back to the caller's array. */
            while (g->values[v].storage < 0 && g->values[v].producer >= 0) v = g->nodes[g->values[v].producer].inputs[0];
            in[k] = g->values[v].storage >= 0 ? arena + model->plan.offset[g->values[v].storage] * batch : xs[g->values[v].input_index];
        }
        float *out = arena + model->plan.offset[g->values[node->output].storage] * batch;
        s = op_run(g, node, batch, in, out);
        if (wall) wall[i] = seconds_of(CLOCK_MONOTONIC) - wall0;
        if (cpu) cpu[i] = seconds_of(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    }
    for (int j = 0; j < g->n_outputs && s == CNNC_OK; ++j) {
        int v = g->output_values[j];
        int64_t n = batch * g->values[v].size;
        while (g->values[v].storage < 0 && g->values[v].producer >= 0) v = g->nodes[g->values[v].producer].inputs[0];
        const float *src = g->values[v].storage >= 0 ? arena + model->plan.offset[g->values[v].storage] * batch : xs[g->values[v].input_index];
        memmove(ys[j], src, (size_t)n * sizeof(float));
    }
    if (in != stack_in) free(in);
    give_arena(m, arena, arena_bytes);
    return s;
}

cnnc_status cnnc_model_predict_multi(const cnnc_model *model, int64_t batch, const float *const *xs, float *const *ys)
{
    return run_graph(model, batch, xs, ys, NULL, NULL);
}

cnnc_status cnnc_model_predict_profile(const cnnc_model *model, int64_t batch, const float *const *xs,
                                       float *const *ys, double *wall_seconds, double *cpu_seconds)
{
    return run_graph(model, batch, xs, ys, wall_seconds, cpu_seconds);
}

int cnnc_model_num_nodes(const cnnc_model *model) { return model ? model->graph.n_nodes : 0; }

cnnc_status cnnc_model_node_info(const cnnc_model *model, int index, const char **name, const char **kind)
{
    CNNC_CHECK_PTR(model);
    CNNC_CHECK_PTR(name);
    CNNC_CHECK_PTR(kind);
    if (index < 0 || index >= model->graph.n_nodes)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "model: node index %d out of range (the model has %d)", index,
                          model->graph.n_nodes);
    const model_node *node = &model->graph.nodes[index];
    *name = node->name;
    *kind = op_kind_name(node);
    return CNNC_OK;
}

cnnc_status cnnc_model_predict(const cnnc_model *model, int64_t batch, const float *x, float *y)
{
    CNNC_TRY(single(model, "cnnc_model_predict"));
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(y);
    const float *xs[1] = {x};
    float *ys[1] = {y};
    return cnnc_model_predict_multi(model, batch, xs, ys);
}
