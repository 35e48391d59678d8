"""Command-line entry point. Each subcommand is a module here with `add_parser` and `run`."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> module under core.cli; each module defines add_parser(subparsers) and run(args) -> int
SUBCOMMANDS = ("validate", "evaluate", "infer", "ensemble")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or with `only` that one (its siblings' imports can be slow)."""
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="DetLens: error analysis for object-detection submissions.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(f"core.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"core.cli.{name}":
                raise
            continue  # subcommand not built yet
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv and argv[0] in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except BrokenPipeError:
        # stdout was closed early (e.g. piped into `head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: a message, not a traceback
        if os.environ.get("DETLENS_DEBUG"):
            raise
        print(f"python -m core {args.command}: internal error: {type(exc).__name__}: {exc}\n"
              "This is a bug in DetLens; rerun with DETLENS_DEBUG=1 for the traceback.", file=sys.stderr)
        return 1
