"""Command line: ``cnnc <command>`` (or ``python -m cnnc <command>``).

Each command is one function taking the parsed arguments and returning the
exit status; add a command by registering it in COMMANDS.
"""
import argparse
import sys

from cnnc.cli import predict as _predict
from cnnc.cli import train as _train


def cmd_info(args):
    """Print the version, the instruction-set path and the thread count."""
    import cnnc

    print(f"cnnc {cnnc.__version__}")
    print(f"isa: {cnnc.isa()} (best on this CPU: {cnnc.max_isa()})")
    print(f"threads: {cnnc.get_num_threads()}")
    return 0


COMMANDS = {
    "info": (cmd_info, None),
    "train": (_train.run, _train.add_arguments),
    "predict": (_predict.run, _predict.add_arguments),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="cnnc", description="cnnc: convolutional networks on the CPU.")
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, (fn, add_arguments) in COMMANDS.items():
        p = sub.add_parser(name, help=fn.__doc__.strip().splitlines()[0], description=fn.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if add_arguments:
            add_arguments(p)
        p.set_defaults(func=fn)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
