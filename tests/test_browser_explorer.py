"""The explorer in chromium: the image shown never changes because the score moved (issue 11)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser import PAGES, chromium_page, page_problems, streamlit_server, wait_until_idle
from tests.conftest import SAMPLE

pytestmark = pytest.mark.skipif(not Path("/usr/bin/chromium").exists(),
                                reason="Debian chromium (/usr/bin/chromium) is not installed")


def _shown_image(page) -> str:
    """The file name in the explorer's facts line (`train/0017.jpg` · 3 / 100 · ...)."""
    match = re.search(r"(train/\d+\.jpg)\s*·\s*\d+ / ", page.inner_text("body"))
    assert match, "the facts line names the image shown"
    return match.group(1)


def test_key_presses_on_the_score_slider_keep_the_image():
    """Jump to an image, then tap ArrowRight on the score slider 10 times, 60 ms apart: the
    sort by errors reorders the list at each step, and the image shown must stay the same."""
    with streamlit_server(SAMPLE) as url, chromium_page() as page:
        page.goto(f"{url}/{PAGES['explorer']}")
        wait_until_idle(page, quiet_ms=500)
        jump = page.get_by_placeholder("jump to file name or image id")
        jump.fill("0017")  # the name without folder and extension
        jump.press("Enter")
        wait_until_idle(page, quiet_ms=500)
        assert _shown_image(page) == "train/0017.jpg"
        slider = page.locator('[data-testid="stSidebar"] [data-testid="stSlider"] input[type="range"]').first
        slider.focus()
        for _ in range(10):
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(60)
        page.wait_for_timeout(300)
        wait_until_idle(page, quiet_ms=800)
        assert page_problems(page) == []
        assert _shown_image(page) == "train/0017.jpg"
