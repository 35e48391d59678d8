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
