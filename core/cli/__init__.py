"""Command-line entry point. Each subcommand is a module here with `add_parser` and `run`."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys

# name -> module under core.cli; each module defines add_parser(subparsers) and run(args) -> int
SUBCOMMANDS = ("validate", "evaluate", "infer", "ensemble", "convert", "agree", "catalog", "report", "label-issues", "apply-review")
# subcommands whose process starts pandas without pyarrow (their start-up time matters)
ARROW_FREE = ("evaluate",)


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
            module = importlib.import_module(f"core.cli.{name.replace('-', '_')}")
        except ModuleNotFoundError as exc:
            if exc.name != f"core.cli.{name.replace('-', '_')}":
                raise
            continue  # subcommand not built yet
        module.add_parser(subparsers)
    return parser


class _ClosedPipeTolerant:
    """A text stream whose reader may go away (`| head -1`): later writes go nowhere, the work
    goes on, and the output file is still written."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._discard()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard()

    def _discard(self) -> None:
        # the bytes still buffered would raise again at exit: point the descriptor at /dev/null
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (_ClosedPipeTolerant(s) for s in streams)
    try:
        return _main(argv)
    finally:
        for stream in (sys.stdout, sys.stderr):  # flushed here, where a closed pipe is tolerated
            stream.flush()
        sys.stdout, sys.stderr = streams


def _pandas_without_pyarrow() -> None:
    """Import pandas without pyarrow (~0.1 s of a ~1 s `evaluate`): these commands read and write
    no arrow data, and pandas' strings behave the same on its python storage. The None entry
    (pandas takes the ImportError as "not installed") goes afterwards: later code may import it."""
    if "pandas" in sys.modules or "pyarrow" in sys.modules:
        return
    sys.modules["pyarrow"] = None
    try:
        import pandas  # noqa: F401
    finally:
        del sys.modules["pyarrow"]


def _main(argv: list[str]) -> int:
    if argv and argv[0] in ARROW_FREE:
        _pandas_without_pyarrow()
    parser = build_parser(argv[0] if argv and argv[0] in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: a message, not a traceback
        if os.environ.get("DETLENS_DEBUG"):
            raise
        print(f"python -m core {args.command}: internal error: {type(exc).__name__}: {exc}\n"
              "This is a bug in DetLens; rerun with DETLENS_DEBUG=1 for the traceback.", file=sys.stderr)
        return 1
