"""In chromium: a click on a slice bar and on a confusion-matrix cell opens the images behind
it in the explorer (Streamlit's own plotly selection events, no extra component)."""
from __future__ import annotations

import pytest

from tests.browser import chromium_browser, new_page, page_problems, streamlit_server, wait_until_idle
from tests.conftest import REPO

SCREENSHOTS = REPO / "tests" / "screenshots"


@pytest.fixture(scope="module")
def app():
    with streamlit_server() as url, chromium_browser() as browser:
        yield url, browser


def _open(app, name: str):
    """A new tab on page `name` (its URL path) of the shared server, once it is drawn."""
    url, browser = app
    page = new_page(browser)
    page.goto(f"{url}/{name}")
    wait_until_idle(page, timeout_ms=180_000)  # a first run may build the kernels
    return page


def _click_first(page, selector: str, last: bool = False) -> None:
    point = page.locator(selector).last if last else page.locator(selector).first
    point.wait_for(state="attached", timeout=60_000)
    box = point.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def _wait_for_page(page, name: str, timeout_s: float = 60) -> None:
    """st.switch_page changes the URL in place (history API), no load event to wait for."""
    import time

    deadline = time.monotonic() + timeout_s
    while not page.url.rstrip("/").endswith(name):
        assert time.monotonic() < deadline, f"still on {page.url}"
        page.wait_for_timeout(200)
    wait_until_idle(page)


def test_slice_bar_opens_the_explorer(app):
    page = _open(app, "Slices")
    page.get_by_text("Click to open: bar chart of ΔAP and a selectable table", exact=True).click()
    wait_until_idle(page)
    _click_first(page, '[data-testid="stPlotlyChart"] .bars .point path')
    _wait_for_page(page, "Image_explorer")
    assert "Showing the" in page.inner_text("body")
    assert not page_problems(page)


def test_confusion_cell_opens_the_explorer(app):
    page = _open(app, "Overview")
    chart = page.locator('[data-testid="stPlotlyChart"]').last
    chart.scroll_into_view_if_needed()
    # the diagonal's first cell: ground truth and prediction of the first class
    _click_first(page, '[data-testid="stPlotlyChart"] >> nth=-1 >> .scatterlayer .point')
    _wait_for_page(page, "Image_explorer")
    assert "Showing the" in page.inner_text("body") and "confusion cell" in page.inner_text("body")


def test_reliability_bin_opens_the_explorer(app):
    page = _open(app, "Calibration")
    page.screenshot(path=str(SCREENSHOTS / "sample_calibration.png"), full_page=True)
    _click_first(page, '[data-testid="stPlotlyChart"] >> nth=0 >> .bars .point path', last=True)  # a tall bar
    _wait_for_page(page, "Image_explorer")
    assert "Showing the" in page.inner_text("body") and "boxes scoring" in page.inner_text("body")


def test_slices_page_screenshot(app):
    page = _open(app, "Slices")
    page.screenshot(path=str(SCREENSHOTS / "sample_slices.png"), full_page=True)
    assert not page_problems(page)


def test_pr_curve_point_opens_the_boxes_at_that_score(app):
    page = _open(app, "Class_errors")
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.scroll_into_view_if_needed()
    points = chart.locator(".scatterlayer .trace").first.locator(".point")
    box = points.nth(points.count() // 3).bounding_box()  # a mid-score point of the curve
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    _wait_for_page(page, "Image_explorer")
    assert "Showing the" in page.inner_text("body") and "boxes scoring" in page.inner_text("body")


def test_tide_bar_opens_the_images_with_that_error(app):
    page = _open(app, "Overview")
    bars = page.locator('[data-testid="stPlotlyChart"]').first.locator(".bars .point path")
    bars.nth(0).scroll_into_view_if_needed()
    box = bars.nth(0).bounding_box()  # classification errors, the first of TIDE's order
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 2)
    _wait_for_page(page, "Image_explorer")
    body = page.inner_text("body")
    assert "Showing the" in body and "classification boxes only" in body.lower()
