"""`python -m core`: the DetLens command line."""
import contextlib
import os
import sys

from core.cli import main

# commands whose every output is written, closed and flushed when main() returns
FAST_EXIT = ("evaluate",)

if __name__ == "__main__":
    code = main()
    if sys.argv[1:2] and sys.argv[1] in FAST_EXIT:
        # Skip the interpreter's teardown (freeing every module and the evaluation's arrays one by
        # one): ~50 ms of a ~1 s `evaluate`, and nothing is left to write.
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
