"""ui.charts: the plotly.js it ships is the cartesian bundle of the plotly.js the installed plotly
writes figures for (same major version); what a page can ask of it. (Every page's traces are of
types the bundle draws: tests.conftest.assert_charts_drawable, in the every-page tests.)"""
from __future__ import annotations

import re

import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs_version

from ui import charts


def test_the_bundle_is_plotly_cartesian_of_the_installed_major_version():
    header = (charts.FOLDER / charts.BUNDLE).read_text()[:200]
    version = re.search(r"plotly\.js \(cartesian - minified\) v(\d+)\.(\d+)\.(\d+)", header)
    assert version, header
    assert version.group(1) == get_plotlyjs_version().split(".")[0], (version.group(0), get_plotlyjs_version())
    assert (charts.FOLDER / "PLOTLY_LICENSE").read_text().startswith("MIT License")


def test_only_click_selection_is_offered():
    with pytest.raises(ValueError, match="only 'ignore' and 'rerun'"):
        charts.plotly_chart(go.Figure(), key="chart", on_select="box")


def _plain(value):
    """A figure's json values with plotly's base64 arrays decoded and NaN as None."""
    import base64
    import math

    import numpy as np

    if isinstance(value, dict):
        if {"bdata", "dtype"} <= set(value):
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            return _plain(array.reshape([int(n) for n in str(value.get("shape", len(array))).split(",")]).tolist())
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def test_figure_json_holds_what_plotly_writes():
    """ui.charts.figure_json against pio.to_json: the image panels (plain dicts, NaN gaps between
    boxes), a validated chart, and a figure orjson cannot write as is (a strided array)."""
    import json

    import numpy as np
    import plotly.io as pio

    from core.charts import class_counts_figure
    from core.drawing import BoxLayer, Panel, panels_figure

    boxes = np.array([[10.0, 20.0, 110.0, 220.0], [300.0, 40.0, 380.0, 90.0]])
    layer = BoxLayer("TP", "#2ca02c", boxes, labels=["Paper 0.90", "Glass 0.40"], hovers=["a", "b"])
    figures = [panels_figure([Panel("GT", [layer]), Panel("A", [layer])], 1024, 768, missing_notice="no image"),
               class_counts_figure(["Paper", "Glass"], np.array([3, 1]), ["#111111", "#222222"], title="counts"),
               go.Figure(go.Scatter(x=np.arange(10.0)[::2], y=np.arange(5.0)))]
    for figure in figures:
        expected = _plain(json.loads(pio.to_json(figure, validate=False, engine="orjson")))
        assert _plain(json.loads(charts.figure_json(figure))) == expected
