"""The image panels' chart: a Streamlit component that keeps one plotly chart for the page's life
and updates it in place (Plotly.react) when a rerun sends a new figure.

st.plotly_chart builds a new chart for every new figure (its element id hashes the figure), which
cost 50-110 ms of every score-slider move in the browser, and lost the zoom. The page
(index.html) speaks Streamlit's component protocol directly and loads plotly.js' basic bundle
(plotly-basic.min.js: scatter, layout images, shapes, annotations; plotly.js-basic-dist-min 4.1.1,
MIT, PLOTLY_LICENSE), which a browser sets up in a fraction of the full bundle's time.
"""
from __future__ import annotations

import functools
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import streamlit.components.v1 as components

FOLDER = Path(__file__).parent


@functools.cache
def _component():
    return components.declare_component("image_panels", path=str(FOLDER))


def draw_figure(figure: go.Figure, *, key: str, height: int, config: dict, view_id: str) -> None:
    """Draw `figure` (height px) in the chart kept under `key`. view_id: what the panels show (the
    image); the zoom, pan and hidden legend entries are kept while it stays the same."""
    figure.layout.uirevision = view_id
    spec = pio.to_json(figure, validate=False, engine="orjson")
    _component()(spec=spec, config=config, height=height, key=key, default=None)
