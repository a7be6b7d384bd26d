"""The ``cnnc`` command (also ``python -m cnnc``): info, train, predict."""
import argparse
import sys


def build_parser():
    from cnnc.cli import info, predict, train
    parser = argparse.ArgumentParser(
        prog="cnnc", description="Convolutional neural networks on the CPU with a C core.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info.add_parser(sub)
    train.add_parser(sub)
    predict.add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, ImportError, OSError) as exc:
        print(f"cnnc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cnnc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
