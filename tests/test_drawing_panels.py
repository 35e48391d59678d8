"""panels_figure sends the image once, however many panels show it (issue 16)."""
from __future__ import annotations

import json

import plotly.io as pio

from core.drawing import BoxLayer, Panel, panels_figure

PAYLOAD = "UEFORUxTX0lNQUdF"
URI = "data:image/jpeg;base64," + PAYLOAD


def test_the_image_travels_once_and_every_panel_shows_it():
    layer = BoxLayer("TP", "#00ff00", [[0, 0, 10, 10]])
    fig = panels_figure([Panel("GT", [layer]), Panel("Pred", [layer]), Panel("Other")], 100, 50, image_uri=URI)
    spec = fig.to_json()
    assert spec.count(PAYLOAD) == 1                  # was once per panel
    layout = json.loads(spec)["layout"]
    shared = layout["template"]["layout"]["images"]
    assert [image["source"] for image in shared] == [URI]
    # each panel places the shared image on its own axes (plotly: `templateitemname`)
    assert [(i["templateitemname"], i["xref"], i["yref"]) for i in layout["images"]] == [
        (shared[0]["name"], "x", "y"), (shared[0]["name"], "x2", "y2"), (shared[0]["name"], "x3", "y3")]
    assert (shared[0]["sizex"], shared[0]["sizey"]) == (100, 50)


def test_the_default_template_is_kept():
    # the app's theme (Streamlit sets plotly's default template) still styles the figure
    default = pio.templates[pio.templates.default].to_plotly_json() if pio.templates.default else {}
    fig = panels_figure([Panel("GT")], 100, 50, image_uri=URI)
    template = json.loads(fig.to_json())["layout"]["template"]
    for key, value in default.get("layout", {}).items():
        assert key in template["layout"], key
    assert set(default.get("data", {})) <= set(template.get("data", {}))


def test_without_an_image_nothing_is_shared():
    fig = panels_figure([Panel("GT"), Panel("Pred")], 100, 50, image_uri=None, missing_notice="missing")
    assert len(fig.layout.images) == 0
    assert not fig.layout.template.layout.images
