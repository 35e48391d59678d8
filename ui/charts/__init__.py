"""DetLens' plotly charts: a Streamlit (v2) component that keeps each chart for the life of its
element and updates it in place (Plotly.react) when a rerun sends a new figure.

st.plotly_chart builds a new chart for every new figure (its element id hashes the figure): every
score-slider move unmounted and rebuilt each threshold-dependent chart (~50-110 ms each in the
browser) and lost its zoom. chart.js draws in the app's own page (no frame), in Streamlit's plotly
look (its template's placeholder colours replaced from the theme), and returns a click as
st.plotly_chart's selection event does. plotly.js' cartesian bundle (scatter, bar, box, heatmap,
histogram; plotly.js-cartesian-dist-min 4.1.1, MIT, PLOTLY_LICENSE) is loaded once per browser
page, from this folder, which Streamlit serves as a (v1) component's files.
"""
from __future__ import annotations

import functools
from pathlib import Path

import orjson
import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st
import streamlit.components.v1 as components_v1

FOLDER = Path(__file__).parent
BUNDLE = "plotly-cartesian.min.js"
DEFAULT_HEIGHT = 450  # px, plotly.js' (and st.plotly_chart's) when a figure sets none
CSS = """
.detlens-chart:fullscreen { background: var(--st-background-color); }
.detlens-chart-problem { color: var(--st-red-color); padding: 8px; }
"""


@functools.cache
def _files_route() -> str:
    """The URL path under which Streamlit serves this folder's files."""
    files = components_v1.declare_component("plotly_files", path=str(FOLDER))
    return f"component/{files.name}"


@functools.cache
def _component():
    return st.components.v2.component("detlens_chart", js=(FOLDER / "chart.js").read_text(), css=CSS,
                                      isolate_styles=False)  # plotly.js styles the page's document


def bundle_url() -> str:
    """plotly.js' URL, from the page's origin (the app may be served under server.baseUrlPath)."""
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return "/" + "/".join(part for part in (base, _files_route(), BUNDLE) if part)


def figure_json(figure: go.Figure) -> str:
    """The figure as plotly.js reads it, written from the figure's own dicts: go.Figure.to_dict
    (what pio.to_json calls) deep-copies them and inspects every array, ~45 ms of each Compare
    move for the GT | A | B panels at competition scale (0.7 ms this way). Arrays go as lists, NaN
    as null (a gap to plotly.js, as pio's NaN is)."""
    try:
        return orjson.dumps({"data": figure._data, "layout": figure._layout},
                            option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:  # a value orjson cannot write (a non-contiguous array, a date): plotly's way
        return pio.to_json(figure, validate=False, engine="orjson")


def _selection_changed() -> None:
    """A click reruns the script (st.plotly_chart's on_select="rerun"); the page reads the event."""


def plotly_chart(figure: go.Figure, *, key: str, on_select: str = "ignore", config: dict | None = None) -> dict:
    """Draw `figure` in the chart kept under `key`, full width; a new figure with the same title
    keeps the user's zoom. on_select="rerun": a click on a point reruns, and the returned
    {"selection": {"points": [...]}} holds it (x, y, customdata, curve_number, point_index, as
    st.plotly_chart's); a double-click clears it."""
    if on_select not in ("ignore", "rerun"):
        raise ValueError(f"on_select {on_select!r}: only 'ignore' and 'rerun' are supported")
    selectable = on_select == "rerun"
    if figure.layout.uirevision is None:  # the zoom and hidden legend entries kept while the title stays
        figure.layout.uirevision = f"{key}: {figure.layout.title.text}"
    spec = figure_json(figure)
    height = figure.layout.height or DEFAULT_HEIGHT
    callbacks = {"on_selection_change": _selection_changed} if selectable else {}
    result = _component()(key=key, data={"spec": spec, "bundle": bundle_url(), "height": height,
                                         "selectable": selectable, "config": config or {}},
                          **callbacks)
    selection = result.get("selection") if selectable and result is not None else None
    return {"selection": selection or {"points": []}}
