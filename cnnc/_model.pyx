# cython: language_level=3, boundscheck=False, wraparound=False
"""Loaded models (src/include/cnnc/model.h): the C inference runtime that
Python's predict runs on."""
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cnnc._common cimport cnnc_status, check_status
from cnnc._pointers cimport in_ptr, out_ptr
import numpy as np

cdef extern from "cnnc.h" nogil:
    ctypedef struct cnnc_model:
        pass
    cnnc_status cnnc_model_load(const char *path, cnnc_model **model)
    cnnc_status cnnc_model_load_memory(const void *bytes, size_t size, cnnc_model **model)
    cnnc_status cnnc_model_load_tensors(const char *config, size_t n_tensors, const char *const *names,
                                        const int *ranks, const int64_t *shapes, const float *const *data,
                                        cnnc_model **model)
    cnnc_status cnnc_model_load_tensors_borrowed(const char *config, size_t n_tensors, const char *const *names,
                                                 const int *ranks, const int64_t *shapes, const float *const *data,
                                                 cnnc_model **model)
    void cnnc_model_free(cnnc_model *model)
    size_t cnnc_model_weight_bytes(const cnnc_model *model)
    int cnnc_model_num_inputs(const cnnc_model *model)
    int cnnc_model_num_outputs(const cnnc_model *model)
    cnnc_status cnnc_model_input_shape_at(const cnnc_model *model, int index, int *rank, int64_t *shape)
    cnnc_status cnnc_model_output_shape_at(const cnnc_model *model, int index, int *rank, int64_t *shape)
    cnnc_status cnnc_model_predict_multi(const cnnc_model *model, int64_t batch, const float *const *xs,
                                         float *const *ys)
    int cnnc_model_num_nodes(const cnnc_model *model)
    cnnc_status cnnc_model_node_info(const cnnc_model *model, int index, const char **name, const char **kind)
    cnnc_status cnnc_model_predict_profile(const cnnc_model *model, int64_t batch, const float *const *xs,
                                           float *const *ys, double *wall_seconds, double *cpu_seconds)

__all__ = ["LoadedModel"]


cdef class LoadedModel:
    """A model file loaded into the C runtime: ``LoadedModel.from_bytes(data)``
    or ``LoadedModel.from_file(path)``; ``predict([x, ...])`` returns the list
    of outputs (float32, batch first). Calls may run concurrently."""
    cdef cnnc_model *ptr
    cdef readonly tuple input_shapes, output_shapes
    cdef list _lent  # the arrays a borrowing load reads in place, kept alive with it

    def __dealloc__(self):
        cnnc_model_free(self.ptr)

    cdef _describe(self):
        cdef int rank
        cdef int64_t shape[8]
        shapes = []
        for i in range(cnnc_model_num_inputs(self.ptr)):
            check_status(cnnc_model_input_shape_at(self.ptr, i, &rank, shape))
            shapes.append(tuple(shape[k] for k in range(rank)))
        self.input_shapes = tuple(shapes)
        shapes = []
        for i in range(cnnc_model_num_outputs(self.ptr)):
            check_status(cnnc_model_output_shape_at(self.ptr, i, &rank, shape))
            shapes.append(tuple(shape[k] for k in range(rank)))
        self.output_shapes = tuple(shapes)

    @staticmethod
    def from_bytes(data):
        cdef LoadedModel m = LoadedModel.__new__(LoadedModel)
        cdef Py_buffer view
        cdef cnnc_status status
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            with nogil:
                status = cnnc_model_load_memory(view.buf, <size_t>view.len, &m.ptr)
        finally:
            PyBuffer_Release(&view)
        check_status(status)
        m._describe()
        return m

    @property
    def weight_bytes(self):
        """Bytes of weights the runtime holds itself: its copies and the
        packed and transformed forms, not the arrays lent to it
        (``cnnc_model_weight_bytes``)."""
        return cnnc_model_weight_bytes(self.ptr)

    @staticmethod
    def from_tensors(config, tensors, borrow=False):
        """From a model's parts without a file image: ``config`` the
        model_config JSON text, ``tensors`` a dict name -> float32 array (the
        weights, as model.save names them). The arrays are copied, or with
        ``borrow=True`` the kernels are read in place (the loaded model keeps
        the arrays alive; the caller must not change them while it is in
        use: cnnc.models.inference makes them read-only)."""
        cdef LoadedModel m = LoadedModel.__new__(LoadedModel)
        cdef bytes config_bytes = str(config).encode()
        if b"\0" in config_bytes:
            raise ValueError("the model config holds a NUL character")
        cdef const char *config_ptr = config_bytes
        names = [str(k).encode() for k in tensors]
        arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in tensors.values()]
        cdef size_t n = len(arrays), i
        for name, a in zip(names, arrays):
            if b"\0" in name:
                raise ValueError(f"tensor name {name!r} holds a NUL character")
            if a.ndim > 8:
                raise ValueError(f"tensor {name.decode()!r} has more than 8 axes")
        cdef const char **name_ptrs = <const char **>malloc((n or 1) * sizeof(char *))
        cdef const float **data = <const float **>malloc((n or 1) * sizeof(float *))
        cdef int *ranks = <int *>malloc((n or 1) * sizeof(int))
        cdef int64_t *shapes = <int64_t *>malloc((n or 1) * 8 * sizeof(int64_t))
        cdef cnnc_status status
        cdef const float[::1] flat
        try:
            if name_ptrs == NULL or data == NULL or ranks == NULL or shapes == NULL:
                raise MemoryError()
            for i in range(n):
                name_ptrs[i] = <const char *>(<bytes>names[i])
                a = arrays[i]
                ranks[i] = a.ndim
                for k in range(8):
                    shapes[8 * i + k] = a.shape[k] if k < a.ndim else 0
                if a.size:
                    flat = a.reshape(-1)
                    data[i] = &flat[0]
                else:
                    data[i] = NULL
            if borrow:
                m._lent = arrays
                with nogil:
                    status = cnnc_model_load_tensors_borrowed(config_ptr, n, name_ptrs, ranks, shapes, data, &m.ptr)
            else:
                with nogil:
                    status = cnnc_model_load_tensors(config_ptr, n, name_ptrs, ranks, shapes, data, &m.ptr)
        finally:
            free(name_ptrs)
            free(data)
            free(ranks)
            free(shapes)
        check_status(status)
        m._describe()
        return m

    @staticmethod
    def from_file(path):
        cdef LoadedModel m = LoadedModel.__new__(LoadedModel)
        cdef bytes encoded = str(path).encode()
        cdef const char *p = encoded
        cdef cnnc_status status
        with nogil:
            status = cnnc_model_load(p, &m.ptr)
        check_status(status)
        m._describe()
        return m

    def nodes(self):
        """The runtime's nodes in execution order, as (layer name, kind)
        pairs; kind "folded" for a layer merged into another or an alias."""
        cdef const char *name
        cdef const char *kind
        out = []
        for i in range(cnnc_model_num_nodes(self.ptr)):
            check_status(cnnc_model_node_info(self.ptr, i, &name, &kind))
            out.append((name.decode(), kind.decode()))
        return out

    def predict(self, inputs):
        """Outputs for the list of input arrays (each (batch, *input_shape))."""
        return self._run(inputs, None, None)

    def profile(self, inputs):
        """``predict`` that also times each node: returns (outputs, wall,
        cpu), wall and cpu float64 arrays of seconds per node (as
        ``nodes()``), cpu the calling thread's CPU time."""
        n = cnnc_model_num_nodes(self.ptr)
        wall = np.zeros(n, np.float64)
        cpu = np.zeros(n, np.float64)
        outputs = self._run(inputs, wall, cpu)
        return outputs, wall, cpu

    def _run(self, inputs, wall, cpu):
        inputs = list(inputs)
        if len(inputs) != len(self.input_shapes):
            raise ValueError(f"the model takes {len(self.input_shapes)} inputs, got {len(inputs)}")
        arrays = [np.ascontiguousarray(x, dtype=np.float32) for x in inputs]
        batch = arrays[0].shape[0] if arrays[0].ndim else 0
        for x, shape in zip(arrays, self.input_shapes):
            if x.shape != (batch,) + shape:
                raise ValueError(f"expected inputs of shape (batch,) + {shape} with one batch size, "
                                 f"got {[a.shape for a in arrays]}")
        outputs = [np.empty((batch,) + shape, np.float32) for shape in self.output_shapes]
        if batch == 0:
            return outputs
        cdef int n_in = len(arrays), n_out = len(outputs), i
        cdef const float **xs = <const float **>malloc(n_in * sizeof(float *))
        cdef float **ys = <float **>malloc(n_out * sizeof(float *))
        cdef double *wall_ptr = NULL
        cdef double *cpu_ptr = NULL
        cdef double[::1] wall_view, cpu_view
        cdef cnnc_status status
        cdef int64_t b = batch
        if xs == NULL or ys == NULL:
            free(xs)
            free(ys)
            raise MemoryError()
        if wall is not None:
            wall_view = wall
            cpu_view = cpu
            if wall_view.shape[0]:
                wall_ptr = &wall_view[0]
                cpu_ptr = &cpu_view[0]
        try:
            for i in range(n_in):
                xs[i] = in_ptr(arrays[i])
            for i in range(n_out):
                ys[i] = out_ptr(outputs[i])
            with nogil:
                if wall_ptr != NULL:
                    status = cnnc_model_predict_profile(self.ptr, b, xs, ys, wall_ptr, cpu_ptr)
                else:
                    status = cnnc_model_predict_multi(self.ptr, b, xs, ys)
            check_status(status)
        finally:
            free(xs)
            free(ys)
        return outputs
