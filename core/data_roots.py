"""Which files DetLens may open: everything for the local user, only the data roots on a network.

Served on the machine itself (`server.address` a loopback address, the default in
`.streamlit/config.toml`) the user is the machine's own user and may open any folder they can
read. Served on a network (`streamlit run app.py --server.address 0.0.0.0 -- --data-root DIR`)
or when data roots are given explicitly, every file the app opens must resolve, after symlinks,
inside a root: the folders of `DETLENS_DATA_ROOTS` (os.pathsep-separated) and `--data-root`,
the `--data` folder and the bundled `sample_data/`. The CLI is the local user: unrestricted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

ENV_VAR = "DETLENS_DATA_ROOTS"
CLI_FLAG = "--data-root"
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
LOOPBACK_ADDRESSES = frozenset({"127.0.0.1", "localhost", "::1"})
HOW_TO_ADD = (f"add its folder to the environment variable {ENV_VAR} (folders separated by "
              f"'{os.pathsep}') or start the app with `streamlit run app.py -- {CLI_FLAG} DIR`")


class PathRefused(ValueError):
    """A path outside every data root: the message names it, the roots and the setting to change."""


def _resolve(path: str | Path) -> Path:
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise PathRefused(f"{path}: cannot be resolved ({type(exc).__name__}: a symlink loop or "
                          "an unreadable parent folder); check the path") from None


@dataclass(frozen=True)
class DataRoots:
    """The folders files may be opened from. roots: resolved; restricted False = any path."""

    roots: tuple[Path, ...] = ()
    restricted: bool = False

    @classmethod
    def unrestricted(cls) -> "DataRoots":
        """Every path allowed: the machine's own user, who may read what they can read anyway."""
        return cls((), False)

    @classmethod
    def from_settings(cls, extra: Iterable[str | Path] = (), data_dir: str | Path | None = None,
                      env: Mapping[str, str] = os.environ, *, restricted: bool = True) -> "DataRoots":
        """Roots from DETLENS_DATA_ROOTS, `extra` (--data-root), the --data folder and sample_data/."""
        given = [p for p in env.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
        given += [str(p) for p in extra if str(p).strip()]
        if data_dir:
            given.append(str(data_dir))
        given.append(str(SAMPLE_DIR))
        roots: list[Path] = []
        for folder in given:
            try:
                resolved = _resolve(folder.strip())
            except PathRefused:
                continue  # an unresolvable root allows nothing
            if resolved not in roots:
                roots.append(resolved)
        return cls(tuple(roots), restricted)

    def allows(self, path: str | Path) -> bool:
        """Whether `path` (symlinks followed) may be opened."""
        try:
            self.check(path)
        except PathRefused:
            return False
        return True

    def check(self, path: str | Path) -> Path:
        """`path` resolved (symlinks followed); PathRefused when it is outside every root.

        The message names the path, the roots and how to add one; it never reads the file.
        """
        resolved = _resolve(path)
        if not self.restricted or any(resolved.is_relative_to(root) for root in self.roots):
            return resolved
        shown = ", ".join(str(r) for r in self.roots) or "none"
        via = f" (it resolves to {resolved})" if str(resolved) != str(path) else ""
        raise PathRefused(
            f"{path}: refused: it is outside DetLens' data roots ({shown}){via}. The app is served "
            f"on a network or with explicit data roots, so it opens only files inside them; to "
            f"allow this one, {HOW_TO_ADD}.")


def is_loopback(address: str | None) -> bool:
    """Whether a `server.address` serves only this machine (unset = every interface: no)."""
    return bool(address) and str(address).strip().strip("[]").lower() in LOOPBACK_ADDRESSES


def app_data_roots(server_address: str | None, *, extra: Iterable[str | Path] = (),
                   data_dir: str | Path | None = None,
                   env: Mapping[str, str] = os.environ) -> DataRoots:
    """The app's roots: restricted when served beyond loopback or when roots are given explicitly."""
    extra = [str(p) for p in extra if str(p).strip()]
    explicit = bool(extra) or bool(env.get(ENV_VAR, "").strip())
    restricted = explicit or not is_loopback(server_address)
    return DataRoots.from_settings(extra, data_dir, env, restricted=restricted)
