"""The image panels' chart: a Streamlit component that keeps one plotly chart for the page's life
and updates it in place (Plotly.react) when a rerun sends a new figure.

st.plotly_chart builds a new chart for every new figure (its element id hashes the figure), which
cost 50-110 ms of every score-slider move in the browser, and lost the zoom. The boxes' table is
written under the chart by the same page: as a separate st.table it cost ~20 ms to style on the
server and ~35 ms to redraw in the browser per move. The page (index.html) speaks Streamlit's
component protocol directly and loads plotly.js' basic bundle (plotly-basic.min.js: scatter,
layout images, shapes, annotations; plotly.js-basic-dist-min 4.1.1, MIT, PLOTLY_LICENSE), which a
browser sets up in a fraction of the full bundle's time.
"""
from __future__ import annotations

import functools
from pathlib import Path

import orjson
import pandas as pd
import plotly.graph_objects as go
import streamlit.components.v1 as components

from ui.charts import figure_json

FOLDER = Path(__file__).parent


@functools.cache
def _component():
    return components.declare_component("image_panels", path=str(FOLDER))


def table_json(table: pd.DataFrame, digits: dict[str, int], max_height: int | None = None) -> str:
    """A table for the page to write under the chart: its columns, rows of values (NaN: blank),
    digits after the point of the number columns named in `digits`, and the height (px) of its
    scroll box (None: every row shown)."""
    rows = table.astype(object).where(table.notna(), None).to_numpy().tolist()
    return orjson.dumps({"columns": [str(c) for c in table.columns], "rows": rows,
                         "digits": [digits.get(c) for c in table.columns], "max_height": max_height},
                        option=orjson.OPT_SERIALIZE_NUMPY).decode()


def draw_figure(figure: go.Figure, *, key: str, height: int, config: dict, view_id: str,
                table: str | None = None) -> None:
    """Draw `figure` (height px) in the chart kept under `key`, and `table` (table_json) under it.
    view_id: what the panels show (the image); the zoom, pan and hidden legend entries are kept
    while it stays the same."""
    figure.layout.uirevision = view_id
    spec = figure_json(figure)
    _component()(spec=spec, table=table, config=config, height=height, key=key, default=None)
