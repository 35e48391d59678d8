"""In chromium: a click on a slice bar and on a confusion-matrix cell opens the images behind
it in the explorer (the click events of DetLens' charts, ui/charts)."""
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
    _click_first(page, '.detlens-chart .bars .point path')
    _wait_for_page(page, "Image_explorer")
    assert "Showing the" in page.inner_text("body")
    assert not page_problems(page)


def test_confusion_cell_opens_the_explorer(app):
    page = _open(app, "Overview")
    chart = page.locator('.detlens-chart').last
    chart.scroll_into_view_if_needed()
    # the diagonal's first cell: ground truth and prediction of the first class
    _click_first(page, '.detlens-chart >> nth=-1 >> .scatterlayer .point')
    _wait_for_page(page, "Image_explorer")
    assert "Showing the" in page.inner_text("body") and "confusion cell" in page.inner_text("body")


def test_reliability_bin_opens_the_explorer(app):
    page = _open(app, "Calibration")
    page.screenshot(path=str(SCREENSHOTS / "sample_calibration.png"), full_page=True)
    _click_first(page, '.detlens-chart >> nth=0 >> .bars .point path', last=True)  # a tall bar
    _wait_for_page(page, "Image_explorer")
    assert "Showing the" in page.inner_text("body") and "boxes scoring" in page.inner_text("body")


def test_slices_page_screenshot(app):
    page = _open(app, "Slices")
    page.screenshot(path=str(SCREENSHOTS / "sample_slices.png"), full_page=True)
    assert not page_problems(page)


def test_pr_curve_point_opens_the_boxes_at_that_score(app):
    page = _open(app, "Class_errors")
    chart = page.locator('.detlens-chart').first
    chart.scroll_into_view_if_needed()
    points = chart.locator(".scatterlayer .trace").first.locator(".point")
    box = points.nth(points.count() // 3).bounding_box()  # a mid-score point of the curve
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    _wait_for_page(page, "Image_explorer")
    assert "Showing the" in page.inner_text("body") and "boxes scoring" in page.inner_text("body")


def test_tide_bar_opens_the_images_with_that_error(app):
    page = _open(app, "Overview")
    bars = page.locator('.detlens-chart').first.locator(".bars .point path")
    bars.nth(0).scroll_into_view_if_needed()
    box = bars.nth(0).bounding_box()  # classification errors, the first of TIDE's order
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 2)
    _wait_for_page(page, "Image_explorer")
    body = page.inner_text("body")
    assert "Showing the" in body and "classification boxes only" in body.lower()
    # back on Overview, the click is over: the page stays (a kept selection would reopen the explorer)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Overview").first.click()
    _wait_for_page(page, "Overview")
    page.wait_for_timeout(1000)
    wait_until_idle(page)
    assert page.url.rstrip("/").endswith("Overview")


CHART_STATE = """() => [...document.querySelectorAll('.detlens-chart')].map(chart => ({
    mark: chart.detlensMark ?? null,
    x_range: chart._fullLayout.xaxis.range.map(v => Math.round(v * 100) / 100),
    traces: chart.data.map(trace => JSON.stringify([trace.x, trace.y])),
    // the theme's colours replaced Streamlit's template placeholders (#000001 ... #000040)
    placeholders: [...chart.querySelectorAll('[style*="fill"], [style*="stroke"]')].filter(
        e => /rgb\\(0, 0, ([1-9]|[1-3][0-9]|40)\\)/.test(e.getAttribute('style'))).length,
}))"""


def test_a_score_move_updates_the_class_charts_in_place_and_keeps_the_zoom(app):
    """ui.charts keeps each chart: a score move redraws the PR curve's marker and the confusion bars
    in the same elements, the zoom kept; the charts are drawn in the theme's colours."""
    page = _open(app, "Class_errors")
    page.evaluate("() => document.querySelectorAll('.detlens-chart').forEach((c, i) => { c.detlensMark = i; })")
    pr = page.locator(".detlens-chart").first
    pr.scroll_into_view_if_needed()
    area = pr.locator(".nsewdrag").first.bounding_box()  # drag a zoom box, as a user does
    page.mouse.move(area["x"] + area["width"] * 0.5, area["y"] + area["height"] * 0.1)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.9, area["y"] + area["height"] * 0.9, steps=8)
    page.mouse.up()
    wait_until_idle(page, quiet_ms=500)
    before = page.evaluate(CHART_STATE)
    assert before[0]["x_range"][0] > 0.3, before[0]["x_range"]  # zoomed in on the curve's right half
    draws = page.evaluate("() => window.detlensCharts.draws")
    page.locator('[data-testid="stSidebar"] [data-testid="stSlider"] input[type="range"]').first.focus()
    for _ in range(30):  # 0.05 -> 0.35: the current point moves along the curve
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(30)
    # a quiet page could be seen before the first move's rerun: wait until a chart was redrawn
    page.wait_for_function("before => window.detlensCharts.draws > before", arg=draws, timeout=30_000)
    wait_until_idle(page, quiet_ms=500)
    after = page.evaluate(CHART_STATE)
    assert [c["mark"] for c in after] == [0, 1], "the same chart elements"
    assert after[0]["x_range"] == before[0]["x_range"], "the zoom kept"
    assert after[0]["traces"] != before[0]["traces"], "the current point moved"
    assert page.evaluate("() => window.detlensCharts.draws") > draws
    assert all(c["placeholders"] == 0 for c in before + after), before + after
    assert not page_problems(page)
    # a click after those renders still reaches the page (the listeners use the latest render's)
    page.mouse.dblclick(area["x"] + area["width"] * 0.7, area["y"] + area["height"] * 0.5)  # zoom out
    wait_until_idle(page, quiet_ms=500)
    points = pr.locator(".scatterlayer .trace").first.locator(".point")
    box = points.nth(points.count() // 3).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    _wait_for_page(page, "Image_explorer")
    assert "boxes scoring" in page.inner_text("body")
