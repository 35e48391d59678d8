"""Shared test fixtures: paths to the project's sample data and the read-only shared data."""
from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
SHARED = REPO.parent / "shared"
REAL_TRASH = SHARED / "real-trash"
EXTERNAL = SHARED / "external"


@pytest.fixture(autouse=True, scope="session")
def _temporary_catalog(tmp_path_factory):
    """Pages register every file they load in the catalog: tests use a throwaway one, never the
    user's ~/.detlens (CI sets DETLENS_DB_URL itself; a test may still override it)."""
    if "DETLENS_DB_URL" not in os.environ:
        folder = tmp_path_factory.mktemp("catalog")
        os.environ["DETLENS_DB_URL"] = f"sqlite:///{folder}/catalog.sqlite"
        yield
        os.environ.pop("DETLENS_DB_URL", None)
    else:
        yield


def need(path: Path) -> Path:
    """Skip (loudly) when a shared file is absent; CI has ../shared beside the clone."""
    if not path.exists():
        pytest.skip(f"missing shared data: {path}")
    return path


def panel_figures(at) -> list[dict]:
    """The figures of an AppTest page's image panels (ui.image_panels, a component), parsed, in
    page order."""
    return [json.loads(json.loads(element.proto.json_args)["spec"]) for element in at.get("component_instance")
            if element.proto.component_name.endswith(".image_panels")]


def chart_figures(at) -> list[dict]:
    """The figures of an AppTest page's plotly charts (ui.charts, a component), parsed, in page
    order."""
    return [json.loads(json.loads(element.proto.json)["spec"]) for element in at.get("bidi_component")
            if element.proto.component_name == "detlens_chart"]


@functools.cache
def bundle_trace_types() -> frozenset[str]:
    """The trace types ui.charts' plotly.js bundle registers."""
    from ui import charts

    bundle = (charts.FOLDER / charts.BUNDLE).read_text()
    return frozenset(re.findall(r'moduleType:"trace",name:"(\w+)"', bundle))


def assert_charts_drawable(at) -> None:
    """Every trace of an AppTest page's plotly charts is of a type ui.charts' bundle draws."""
    used = {trace.get("type", "scatter") for figure in chart_figures(at) for trace in figure["data"]}
    assert used <= bundle_trace_types(), used - bundle_trace_types()


def panel_tables(at) -> list:
    """The tables written under an AppTest page's image panels (ui.image_panels.table_json), as
    DataFrames of the values sent, in page order."""
    import pandas as pd

    tables = [json.loads(element.proto.json_args).get("table") for element in at.get("component_instance")
              if element.proto.component_name.endswith(".image_panels")]
    return [pd.DataFrame(t["rows"], columns=t["columns"]) for t in map(json.loads, filter(None, tables))]


def figure_image_sources(spec: dict) -> list[str]:
    """The image URI each panel of a plotly figure spec shows: its own `source`, or that of the
    template item it names (core.drawing sends a panels figure's image once, in the template)."""
    layout = spec.get("layout", {})
    shared = {im.get("name"): im.get("source", "")
              for im in layout.get("template", {}).get("layout", {}).get("images", [])}
    return [im.get("source") or shared.get(im.get("templateitemname"), "") for im in layout.get("images", [])]
