"""ui/image_panels/index.html on its own in chromium (no server): it answers Streamlit's render
messages as a component does, draws the figure once per new figure, writes the table as text,
and reports its height."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ui.image_panels import FOLDER, table_json

pytestmark = pytest.mark.skipif(not Path("/usr/bin/chromium").exists(),
                                reason="Debian chromium (/usr/bin/chromium) is not installed")

FIGURE = {"data": [{"type": "scatter", "x": [1, 2], "y": [3, 4], "mode": "lines", "name": "TP"}],
          "layout": {"title": {"text": "panel"}}}
# The page is its own parent here: collect what it sends to Streamlit, and render as Streamlit does.
LISTEN = """window.sent = []; window.addEventListener('message', e => {
    if (e.data && e.data.isStreamlitMessage) window.sent.push(e.data); });"""
RENDER = """(args) => window.postMessage({type: 'streamlit:render', args: args,
    theme: {textColor: '#123456', backgroundColor: '#ffffff', font: 'serif'}}, '*')"""


def _render(page, **args) -> None:
    draws = page.evaluate("() => window.detlensPanels.draws")
    page.evaluate(RENDER, {"config": {}, "height": 300, "table": None, **args})
    page.wait_for_function("(n) => window.detlensPanels.draws > n && !window.detlensPanels.busy", arg=draws)


def test_the_page_draws_the_figure_and_the_table_as_text():
    import pandas as pd

    from tests.browser import chromium_page

    table = pd.DataFrame({"kind": ["prediction", "ground truth"], "class": ["<img src=x onerror=alert(1)>", "Paper"],
                          "score": [0.91234, float("nan")]})
    with chromium_page() as page:
        page.add_init_script(LISTEN)
        page.goto((FOLDER / "index.html").as_uri())
        page.wait_for_function("() => window.sent && window.sent.some(m => m.type === 'streamlit:componentReady')")
        _render(page, spec=json.dumps(FIGURE), table=table_json(table, {"score": 3}))
        assert page.evaluate("() => document.getElementById('panels').data.length") == 1
        cells = page.locator("#boxes tbody tr").all_inner_texts()
        assert cells[0].split("\t") == ["prediction", "<img src=x onerror=alert(1)>", "0.912"]  # text, not HTML
        assert cells[1].split("\t")[2] == ""  # NaN: blank
        assert page.locator("#boxes img").count() == 0
        heights = [m["height"] for m in page.evaluate("() => window.sent") if m["type"] == "streamlit:setFrameHeight"]
        assert heights and heights[-1] >= 300 + 2 * 20, "the chart and the table's rows"
        # the modebar's Fullscreen button: the chart fills the screen, and back
        page.hover("#panels")
        page.locator('.modebar-btn[data-title="Fullscreen"]').click()
        page.wait_for_function("() => document.fullscreenElement !== null && "
                               "document.getElementById('panels')._fullLayout.height === window.innerHeight")
        page.locator('.modebar-btn[data-title="Fullscreen"]').click()
        page.wait_for_function("() => document.fullscreenElement === null && "
                               "document.getElementById('panels')._fullLayout.height === 300")
        # the same figure again: nothing redrawn (the chart keeps its state); a new one: drawn in place
        page.evaluate("() => { document.getElementById('panels').mark = 1; }")
        _render(page, spec=json.dumps(FIGURE), table=None)
        assert page.locator("#boxes").is_hidden()
        _render(page, spec=json.dumps({**FIGURE, "data": FIGURE["data"] * 2}), table=None)
        assert page.evaluate("() => [document.getElementById('panels').data.length, document.getElementById('panels').mark]") == [2, 1]
        assert page.locator("#problem").is_hidden()
        _render(page, spec="{not json", table=None)  # a broken figure: said on the page, no exception
        assert "could not be drawn" in page.inner_text("#problem")
