"""The image panels' chart: a Streamlit component that keeps one plotly chart for the page's life
and updates it in place (Plotly.react) when a rerun sends a new figure.

st.plotly_chart builds a new chart for every new figure (its element id hashes the figure), which
cost 50-110 ms of every score-slider move in the browser, and lost the zoom. The page
(index.html, here) speaks Streamlit's component protocol directly; plotly.js comes from the
installed plotly package, the one that built the figure.
"""
from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

import plotly
import plotly.graph_objects as go
import plotly.io as pio
import streamlit.components.v1 as components

PAGE = Path(__file__).with_name("index.html")
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _write_atomically(path: Path, content: bytes) -> None:
    """Another server starting at the same time may write the same file: never serve half of it."""
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.replace(partial, path)
    except OSError:
        Path(partial).unlink(missing_ok=True)
        raise


def _filled(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, content in files.items():
        target = folder / file_name
        if not target.is_file() or target.stat().st_size != len(content):  # absent, or cut short
            _write_atomically(target, content)
    return folder


def _frontend_folder() -> Path:
    """A folder holding index.html and plotly.min.js (a component serves one folder, and plotly's
    file lives in the plotly package); named by both contents, so an upgrade gets a new one."""
    files = {"plotly.min.js": PLOTLY_JS.read_bytes(), "index.html": PAGE.read_bytes()}
    name = "detlens-image-panels-" + hashlib.sha256(b"".join(files.values())).hexdigest()[:16]
    try:
        return _filled(Path(tempfile.gettempdir()) / name, files)
    except OSError:  # the shared name is taken (another user's copy, say): a private folder
        return _filled(Path(tempfile.mkdtemp(prefix="detlens-")) / name, files)


@functools.cache
def _component():
    return components.declare_component("image_panels", path=str(_frontend_folder()))


def draw_figure(figure: go.Figure, *, key: str, height: int, config: dict, view_id: str) -> None:
    """Draw `figure` (height px) in the chart kept under `key`. view_id: what the panels show (the
    image); the zoom, pan and hidden legend entries are kept while it stays the same."""
    figure.layout.uirevision = view_id
    spec = pio.to_json(figure, validate=False, engine="orjson")
    _component()(spec=spec, config=config, height=height, key=key, default=None)
