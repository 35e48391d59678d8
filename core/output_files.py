"""Output files are written whole or not at all: checked before the work, renamed into place after.

    check_writable(args.out, "--out")      # before minutes of inference: fail now, not then
    with atomic_output(args.out) as handle:  # a temporary file beside it, renamed on success
        write_submission(preds, handle)

A full disk, a crash or Ctrl-C mid-write leaves the previous file (or none) at the path, never
a truncated one that looks complete.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class OutputError(ValueError):
    """An output path that cannot be written; the message names the option and what to do."""


def check_writable(path: Path | str, option: str) -> Path:
    """`path` as a Path when a file can be created there (its folder is made); else OutputError."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file path such as {path / 'out.csv'}")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot create the folder {folder}: "
                          f"{exc.strerror or exc}; give a path in a writable folder") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: the folder {folder} is not writable; "
                          "give a path in a writable folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{option} {path}: the file exists and is read-only; "
                          "give another path or make it writable")
    return path


@contextlib.contextmanager
def atomic_output(path: Path | str, *, binary: bool = False):
    """A handle on a temporary file beside `path`, renamed onto `path` only if the block succeeds."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with (os.fdopen(fd, "wb") if binary else
              os.fdopen(fd, "w", newline="", encoding="utf-8")) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())  # the data is on disk before the name points at it
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path | str, text: str) -> None:
    """Write `text` to `path` whole (UTF-8), or leave `path` as it was."""
    with atomic_output(path) as handle:
        handle.write(text)
