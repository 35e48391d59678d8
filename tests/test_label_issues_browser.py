"""The Label review page in a real browser: the keyboard shortcuts decide and move on."""
from __future__ import annotations

import json
import shutil
import time

import pytest

from core.review import review_path
from tests.browser import chromium_page, page_problems, streamlit_server, wait_until_idle
from tests.conftest import REPO, SAMPLE

pytest.importorskip("playwright")


def decisions(folder) -> list[dict]:
    path = review_path(folder / "train.json")
    return json.loads(path.read_text())["decisions"] if path.exists() else []


def wait_for(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not record the decision")
        time.sleep(0.2)


def test_keys_accept_and_reject(tmp_path):
    for name in ("train.json", "predictions_trained_fcos.csv"):
        shutil.copy(SAMPLE / name, tmp_path / name)
    (tmp_path / "train").symlink_to(SAMPLE / "train")  # the images, for the screenshot
    with streamlit_server(tmp_path) as url, chromium_page() as page:
        page.goto(f"{url}/Label_review")
        wait_until_idle(page)
        assert "0 of" in page.inner_text("body") and not page_problems(page)
        page.mouse.click(5, 600)  # focus the page, not a widget
        page.keyboard.press("a")
        wait_for(lambda: len(decisions(tmp_path)) == 1)
        wait_until_idle(page)
        page.keyboard.press("x")
        wait_for(lambda: len(decisions(tmp_path)) == 2)
        wait_until_idle(page)
        assert [d["action"] for d in decisions(tmp_path)] == ["accept", "reject"]
        assert "2 of" in page.inner_text("body") and not page_problems(page)
        shots = REPO / "tests" / "screenshots"
        if shots.is_dir():
            page.screenshot(path=str(shots / "label_review.png"), full_page=False)
