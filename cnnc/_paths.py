"""Locations of the C core inside the installed package (shared by
cnnc/__init__.py and cnnc/config.py, which must not import each other)."""
import os

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def get_include():
    """Directory holding cnnc.h and cnnc/*.h of the installed C core."""
    return os.path.join(_PACKAGE_DIR, "include")


def get_library_dir():
    """Directory holding the installed libcnnc shared library."""
    return os.path.join(_PACKAGE_DIR, "lib")


def get_cmake_dir():
    """Directory holding cnncConfig.cmake (``find_package(cnnc CONFIG)``)."""
    return os.path.join(get_library_dir(), "cmake", "cnnc")


def get_pkgconfig_dir():
    """Directory holding cnnc.pc (add it to PKG_CONFIG_PATH)."""
    return os.path.join(get_library_dir(), "pkgconfig")
