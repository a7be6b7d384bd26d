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
    void cnnc_model_free(cnnc_model *model)
    int cnnc_model_num_inputs(const cnnc_model *model)
    int cnnc_model_num_outputs(const cnnc_model *model)
    cnnc_status cnnc_model_input_shape_at(const cnnc_model *model, int index, int *rank, int64_t *shape)
    cnnc_status cnnc_model_output_shape_at(const cnnc_model *model, int index, int *rank, int64_t *shape)
    cnnc_status cnnc_model_predict_multi(const cnnc_model *model, int64_t batch, const float *const *xs,
                                         float *const *ys)

__all__ = ["LoadedModel"]


cdef class LoadedModel:
    """A model file loaded into the C runtime: ``LoadedModel.from_bytes(data)``
    or ``LoadedModel.from_file(path)``; ``predict([x, ...])`` returns the list
    of outputs (float32, batch first). Calls may run concurrently."""
    cdef cnnc_model *ptr
    cdef readonly tuple input_shapes, output_shapes

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

    def predict(self, inputs):
        """Outputs for the list of input arrays (each (batch, *input_shape))."""
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
        cdef cnnc_status status
        cdef int64_t b = batch
        if xs == NULL or ys == NULL:
            free(xs)
            free(ys)
            raise MemoryError()
        try:
            for i in range(n_in):
                xs[i] = in_ptr(arrays[i])
            for i in range(n_out):
                ys[i] = out_ptr(outputs[i])
            with nogil:
                status = cnnc_model_predict_multi(self.ptr, b, xs, ys)
            check_status(status)
        finally:
            free(xs)
            free(ys)
        return outputs
