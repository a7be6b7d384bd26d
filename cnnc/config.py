"""Where the installed C core lives, for building C programs against it.

    cnnc config --cflags      # -I<include dir>  (or: python -m cnnc.config ...)
    cnnc config --libs               # -L<lib dir> -lcnnc -Wl,-rpath,<lib dir>
    cnnc config --cmakedir       # for -Dcnnc_DIR=... or CMAKE_PREFIX_PATH
    cnnc config --pkgconfigdir # for PKG_CONFIG_PATH
    cnnc config --includedir | --libdir | --version

Several options print their answers on one line, space-separated, in the
order given (so ``cc $(cnnc config --cflags --libs)`` works). The ``cnnc`` command
imports the installed package wherever it runs; ``python -m cnnc.config``
imports whatever ``cnnc/`` the current directory holds first, so use it
outside a source checkout.
"""
import argparse
import os
import shlex
import sys

from cnnc._paths import get_cmake_dir, get_include, get_library_dir, get_pkgconfig_dir


def cflags():
    """Compiler flags: the include directory."""
    return "-I" + shlex.quote(get_include())


def libs():
    """Linker flags: the library, with an rpath so programs find it at run time."""
    lib = shlex.quote(get_library_dir())
    return f"-L{lib} -lcnnc -Wl,-rpath,{lib}"


def _version():
    """Version of the installed package."""
    from cnnc import __version__
    return __version__


_QUERIES = {
    "cflags": cflags,
    "libs": libs,
    "cmakedir": get_cmake_dir,
    "pkgconfigdir": get_pkgconfig_dir,
    "includedir": get_include,
    "libdir": get_library_dir,
    "version": _version,
}


def add_arguments(parser):
    """The query flags, for this module's parser and the ``cnnc config`` command."""
    for name in _QUERIES:
        parser.add_argument(f"--{name}", dest="queries", action="append_const", const=name,
                            help=(_QUERIES[name].__doc__ or name).strip().splitlines()[0])


def run(args):
    """Print the flags and paths for building C programs against the installed C core."""
    if not args.queries:
        print("cnnc config: give one or more of " + ", ".join(f"--{n}" for n in _QUERIES), file=sys.stderr)
        return 1
    for name in args.queries:
        path = _QUERIES[name]()
        if name in ("cmakedir", "pkgconfigdir", "includedir", "libdir") and not os.path.isdir(path):
            print(f"cnnc.config: {path} does not exist (is cnnc installed from a wheel?)", file=sys.stderr)
            return 1
    print(" ".join(_QUERIES[name]() for name in args.queries))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cnnc.config",
                                     description="Paths and flags of the installed cnnc C core.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
