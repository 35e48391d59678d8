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


def _label_positions(fig) -> dict[str, str]:
    """label text -> its plotly textposition, over every labelled trace."""
    out = {}
    for trace in fig.data:
        if trace.text is None:
            continue
        positions = trace.textposition
        for i, text in enumerate(trace.text):
            if text:
                out[text] = positions if isinstance(positions, str) else positions[i]
    return out


def test_a_label_at_the_top_edge_goes_inside_its_box():
    # issue 11: a box at y1 = 1 had its label written above the image, cut off
    layer = BoxLayer("TP", "#00ff00", [[10, 1, 200, 150], [10, 300, 200, 400]], labels=["top 0.90", "lower 0.80"])
    positions = _label_positions(panels_figure([Panel("Pred", [layer])], 640, 480))
    assert positions == {"top 0.90": "bottom right", "lower 0.80": "top right"}


def test_a_label_over_another_moves_inside():
    # two boxes sharing their top-left corner (a duplicate, or GT class and a prediction)
    first = BoxLayer("TP", "#00ff00", [[100, 200, 300, 400]], labels=["Paper 0.91"])
    second = BoxLayer("duplicate", "#ff0000", [[102, 201, 290, 390]], labels=["Paper 0.40"])
    positions = _label_positions(panels_figure([Panel("Pred", [first, second])], 640, 480))
    assert positions == {"Paper 0.91": "top right", "Paper 0.40": "bottom right"}


def test_a_label_with_no_free_place_is_left_out_not_written_over_another():
    # issue 11: "a label under another label is hidden"; a third box on the same corner has
    # no free place above or inside: its text would cover one of the two, so it is not written
    first = BoxLayer("TP", "#00ff00", [[100, 200, 300, 400]], labels=["Paper 0.91"])
    second = BoxLayer("duplicate", "#ff0000", [[102, 201, 290, 390], [101, 202, 280, 380]],
                      labels=["Paper 0.40", "Paper 0.30"])
    fig = panels_figure([Panel("Pred", [first, second])], 640, 480)
    assert _label_positions(fig) == {"Paper 0.91": "top right", "Paper 0.40": "bottom right"}
    points = [t for t in fig.data if t.text is not None and len(t.text) == 4][0]  # the second layer's
    assert list(points.text[:2]) == ["Paper 0.40", ""]  # the third box: no text ...
    assert list(points.hovertext[:2]) == ["duplicate", "duplicate"]  # ... but its hover card


def test_a_label_that_would_run_past_the_right_edge_ends_at_its_box():
    # a box touching the image's right edge: its label ran off the image and was cut ("Pla")
    layer = BoxLayer("TP", "#00ff00", [[600, 100, 640, 200], [10, 100, 60, 200]],
                     labels=["Plastic bag 0.91", "Paper 0.80"])
    fig = panels_figure([Panel("Pred", [layer])], 640, 480)
    assert _label_positions(fig) == {"Plastic bag 0.91": "top left", "Paper 0.80": "top right"}
    points = [t for t in fig.data if t.text is not None][0]
    assert list(points.x[:2]) == [640, 10]  # anchored at the box's right edge, else its left
