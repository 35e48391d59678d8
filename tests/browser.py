"""Helpers for real-browser checks: a Streamlit server on 127.0.0.1 and Debian's headless chromium.

Used by tests/test_browser.py and bench/bench_slider.py. The server is stopped by its own pid.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PAGES = {  # URL path of each page (Streamlit names pages/N_Name.py "Name")
    "home": "",
    "overview": "Overview",
    "explorer": "Image_explorer",
    "class_errors": "Class_errors",
    "dataset": "Dataset",
    "export": "Export",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def streamlit_server(data_dir: Path | None = None, *, script: Path | None = None,
                     timeout_s: float = 60.0, cwd: Path = REPO):
    """Run `streamlit run app.py [-- --data DIR]` (or another script) on a free port; yields its URL.

    cwd: the folder it starts in; Streamlit reads its `.streamlit/config.toml` (the repository's by
    default; a folder without one gives Streamlit's default settings)."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(script or REPO / "app.py"),
               "--server.address", "127.0.0.1", "--server.port", str(port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    if data_dir is not None:
        command += ["--", "--data", str(data_dir)]
    log = open(REPO / "tests" / "screenshots" / f"server_{port}.log", "w") \
        if (REPO / "tests" / "screenshots").is_dir() else subprocess.DEVNULL
    process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        with served(process, f"http://127.0.0.1:{port}", timeout_s) as url:
            yield url
    finally:
        if log is not subprocess.DEVNULL:
            log.close()


@contextmanager
def served(process: subprocess.Popen, url: str, timeout_s: float):
    """Wait until the Streamlit `process` answers its health check on `url`, yield url, and stop
    it (its whole session, by its pid) on the way out, whatever happened."""
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit did not answer on {url} within {timeout_s} s")
            time.sleep(0.3)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the session we started, by its pid
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def chromium_browser():
    """Debian's headless chromium driven by Playwright (never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, width: int = 1600, height: int = 1100):
    """A page in a fresh context (own cookies, so its own Streamlit session)."""
    return browser.new_context(viewport={"width": width, "height": height}).new_page()


@contextmanager
def chromium_page(width: int = 1600, height: int = 1100):
    """A Playwright page in its own headless chromium."""
    with chromium_browser() as browser:
        yield new_page(browser, width, height)


def wait_until_idle(page, timeout_ms: int = 60_000, quiet_ms: int = 1000) -> None:
    """Wait until the script run is over and the page stopped changing for quiet_ms: the app is
    rendered, no 'running' status, no stale or skeleton elements, the image panels and plotly charts
    drawn, the text is stable."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        """([quietMs, panelsFrame]) => {
            // each image panels frame (ui/image_panels/index.html) counts its draws
            const panels = [...document.querySelectorAll(panelsFrame)].map(
                f => (f.contentWindow && f.contentWindow.detlensPanels) || {draws: 0, busy: true});
            const busy = document.querySelector('[data-testid="stStatusWidget"]')
                || document.querySelector('[data-stale="true"]')
                || document.querySelector('[data-testid="stSkeleton"]')
                || !document.querySelector('h1')
                || panels.some(p => p.busy || !p.draws)
                // each plotly chart (ui/charts/chart.js) drawn, its problem said, or off screen
                || (window.detlensCharts && window.detlensCharts.busy)
                || [...document.querySelectorAll('.detlens-chart')].some(
                    c => !c.querySelector('.main-svg') && c.nextElementSibling.hidden && !c.dataset.offscreen);
            const text = document.body.innerText.length + ':' +
                document.querySelectorAll('.js-plotly-plot, canvas, img').length + ':' +
                panels.map(p => p.draws).join(',') + ':' + (window.detlensCharts || {}).draws;
            const now = performance.now();
            if (busy || window.__detlensText !== text) {
                window.__detlensText = text;
                window.__detlensSince = now;
                return false;
            }
            return now - window.__detlensSince >= quietMs;
        }""",
        arg=[quiet_ms, PANELS_FRAME], timeout=timeout_ms, polling=100,
    )


PANELS_FRAME = 'iframe[title="ui.image_panels.image_panels"]'  # ui.image_panels' component


def panels_frames(page) -> list:
    """The frames of the page's image panels (ui.image_panels), in page order."""
    return [handle.content_frame() for handle in page.query_selector_all(PANELS_FRAME)]


def charts_drawn(page) -> int:
    """Scroll to each plotly chart of the page (ui.charts: one off screen waits to be seen) until it
    is drawn; how many are drawn."""
    charts = page.locator(".detlens-chart")
    for i in range(charts.count()):
        charts.nth(i).scroll_into_view_if_needed()
        charts.nth(i).locator(".main-svg").first.wait_for(state="attached", timeout=30_000)
    return page.locator(".detlens-chart.js-plotly-plot").count()


def panel_images(page) -> int:
    """Background images the page's image panels drew (data URIs in plotly's image layer)."""
    return sum(frame.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot image')]
                   .filter(i => (i.getAttribute('href') || '').startsWith('data:image')).length""")
               for frame in panels_frames(page))


def page_problems(page) -> list[str]:
    """Exception boxes or traceback text on the page (should be none)."""
    problems = [e.inner_text()[:500] for e in page.query_selector_all('[data-testid="stException"]')]
    problems += [frame.inner_text("#problem") for frame in panels_frames(page)
                 if frame.is_visible("#problem")]  # a figure the image panels could not draw
    problems += [e.inner_text() for e in page.query_selector_all(".detlens-chart-problem") if e.is_visible()]
    text = page.inner_text("body")
    for marker in ("Traceback (most recent call last)", "StreamlitAPIException", "Error running app"):
        if marker in text:
            problems.append(f"page text contains {marker!r}")
    return problems
