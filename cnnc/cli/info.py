"""``cnnc info``: version, instruction set and threads."""
import platform


def add_parser(subparsers):
    parser = subparsers.add_parser("info", help="print the version, the ISA path and the threads")
    parser.set_defaults(run=run)
    return parser


def run(args):
    import numpy as np

    import cnnc
    from cnnc.visualize import have_matplotlib
    try:
        import PIL
        pillow = PIL.__version__
    except ImportError:
        pillow = "not installed (PNG only)"
    print(f"cnnc {cnnc.__version__}")
    print(f"  ISA path:   {cnnc.isa()} (best available: {cnnc.max_isa()})")
    print(f"  threads:    {cnnc.get_num_threads()}")
    print(f"  python:     {platform.python_version()}, numpy {np.__version__}")
    print(f"  pillow:     {pillow}")
    print(f"  matplotlib: {'yes' if have_matplotlib() else 'not installed (built-in PNG plots)'}")
    print(f"  C headers:  {cnnc.get_include()}")
    return 0
