"""The ``cnnc`` command line: ``cnnc info``, ``cnnc train``, ``cnnc predict``."""
