"""A test set in a real browser (issue 12): the real test.json and test submission, every page, no
exception text, and the no-ground-truth views actually drawn. Screenshots in tests/screenshots/."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import charts_drawn, chromium_browser, new_page, page_problems, streamlit_server, wait_until_idle
from tests.conftest import REAL_TRASH, REPO, need

SHOTS = REPO / "tests" / "screenshots"
pytestmark = pytest.mark.skipif(not Path("/usr/bin/chromium").exists(),
                                reason="Debian chromium (/usr/bin/chromium) is not installed")
# URL path -> text the page must show on a test set
EXPECTED = {
    "": "the image with the most predicted boxes",
    "Overview": "Label-free threshold suggestion",
    "Image_explorer": "top score",
    "Class_errors": "errors need ground-truth boxes",
    "Dataset": "has no annotations",
    "Export": "Download",
    "Compare": "Submissions to compare",
    "Ensemble": "Apply to the test set",
}


@pytest.fixture(scope="module")
def test_folder(tmp_path_factory):
    """The real test.json and submission, the one real image, and the fold as the training json
    (named so that test.json sorts first and is the folder's default ground truth)."""
    folder = tmp_path_factory.mktemp("real_test")
    for name in ("test.json", "test_submission_cascade.csv", "test"):
        (folder / name).symlink_to(need(REAL_TRASH / name))
    (folder / "val_fold3.json").symlink_to(need(REAL_TRASH / "fold3_gt.json"))
    return folder


def test_every_page_on_the_real_test_submission(test_folder):
    with streamlit_server(test_folder) as url, chromium_browser() as browser:
        page = new_page(browser)
        SHOTS.mkdir(exist_ok=True)
        for path, text in EXPECTED.items():
            page.goto(f"{url}/{path}")
            wait_until_idle(page, quiet_ms=500)
            page.screenshot(path=str(SHOTS / f"no_gt_{path or 'home'}.png"), full_page=path == "Overview")
            assert page_problems(page) == [], f"{path}: {page_problems(page)}"
            body = page.inner_text("body")
            assert text in body, f"{path or 'home'}: {text!r} not on the page"
            if path == "Overview":
                assert charts_drawn(page) >= 5
                assert "val_fold3.json" in body
