"""Two browsers on the Submissions page edit the same submission at once: no edit is lost."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.catalog.store import Catalog
from tests.browser import chromium_browser, new_page, page_problems, streamlit_server, wait_until_idle
from tests.conftest import SAMPLE

pytestmark = pytest.mark.skipif(not Path("/usr/bin/chromium").exists(),
                                reason="needs Debian's chromium (apt-get install chromium)")


def _edit_cell(page, column: str, text: str) -> None:
    """Select the first row's cell of `column` (keyboard from the id cell), type text, commit it."""
    from ui.catalog import TABLE_COLUMNS

    index = TABLE_COLUMNS.index(column)
    grid = page.locator('[data-testid="stDataFrameResizable"]').first.bounding_box()
    page.mouse.click(grid["x"] + 15, grid["y"] + 36 + 18)  # the id cell of row 1 (header row: 36 px)
    for _ in range(index):
        page.keyboard.press("ArrowRight")
    time.sleep(0.3)
    page.keyboard.press("Enter")
    time.sleep(0.5)
    page.keyboard.type(text, delay=30)
    page.keyboard.press("Enter")
    time.sleep(1.0)
    wait_until_idle(page)


def test_two_browsers_edit_the_same_row(tmp_path, monkeypatch):
    url_db = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    monkeypatch.setenv("DETLENS_DB_URL", url_db)  # inherited by the server
    catalog = Catalog(url_db)
    sub, _ = catalog.register((SAMPLE / "predictions_weak.csv").read_bytes(), "predictions_weak.csv",
                              display_name="weak")
    with streamlit_server() as url, chromium_browser() as browser:
        a, b = new_page(browser), new_page(browser)
        for page in (a, b):  # both sessions show the row before either edits
            page.goto(f"{url}/Submissions")
            wait_until_idle(page)
        _edit_cell(a, "LB score", "0.733")
        _edit_cell(b, "model", "tuned NMS")
        assert page_problems(a) == [] and page_problems(b) == []
    got = catalog.get(sub.id)
    assert (got.lb_score, got.model, got.display_name) == (0.733, "tuned NMS", "weak")
    catalog.close()
