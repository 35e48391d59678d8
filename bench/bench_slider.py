"""Browser-measured latency of a score-threshold slider move on the Image explorer, Class errors
and Compare, at competition scale (4,883 images, ~490,000 predictions, images missing: blank
canvases).

    python bench/bench_slider.py [--moves 10] [--pages explorer,class_errors,compare]

Starts `streamlit run app.py -- --data bench/data/competition` (made by
bench/make_competition_scale.py when absent) and, as the peers measured in the same run, a bare
Streamlit script holding only the same slider, twice: with Streamlit's default settings (what a
bare Streamlit page is out of the box) and with DetLens' `.streamlit/config.toml` (no message
cache, no full garbage collection after each run: the bare page gains from them too). In
Debian's headless chromium it presses the slider's arrow key and times, from the key press, the
last change of the page's main area once the run is over. Each move goes to a new threshold (no
cached view). Prints the median and max for each page and the peers and the ratios; the goals
(issue 16): the explorer's median within 2x of the bare slider, Class errors' and Compare's
under 300 ms (`compare`: its first tab, Every set; `compare_ab`: its second, A against B with the
GT | A | B panels).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser import chromium_page, streamlit_server, wait_until_idle  # noqa: E402

DATA = REPO / "bench" / "data" / "competition"
PAGES = {"explorer": "Image_explorer", "class_errors": "Class_errors", "compare": "Compare",
         "compare_ab": "Compare"}
TABS = {"compare_ab": "A against B, per image"}  # a page's tab to open first (Compare's tabs are lazy)
PEER_SCRIPT = '''
import streamlit as st
st.title("peer")
value = st.sidebar.slider("Score threshold", 0.0, 1.0, 0.05, step=0.01, key="thr")
st.write(f"threshold {value:.2f}")
'''
OBSERVE_MAIN = """() => {
    window.__lastChange = performance.now();
    const main = document.querySelector('[data-testid="stMain"]') || document.body;
    if (window.__observer) window.__observer.disconnect();
    window.__observer = new MutationObserver(() => { window.__lastChange = performance.now(); });
    const what = {subtree: true, childList: true, attributes: true, characterData: true};
    window.__observer.observe(main, what);
    // the image panels draw inside their component's (same-origin) frame
    for (const frame of main.querySelectorAll('iframe')) {
        const body = frame.contentDocument && frame.contentDocument.body;
        if (body) window.__observer.observe(body, what);
    }
}"""


# The move is over: no run in progress and nothing changed for quietMs. Reads flags only:
# tests.browser.wait_until_idle reads the page's whole text every 100 ms, which makes the browser
# lay the page out while it is drawing the move being timed.
SETTLED = """(quietMs) => !document.querySelector('[data-testid="stStatusWidget"], [data-stale="true"]')
    && performance.now() - window.__lastChange >= quietMs"""


def _move_times(page, moves: int) -> list[float]:
    """ms from an ArrowRight on the first sidebar slider to the last change of the main area."""
    times = []
    thumb = page.locator('[data-testid="stSidebar"] [data-testid="stSlider"] input[type="range"]').first
    for _ in range(moves):
        page.evaluate(OBSERVE_MAIN)
        thumb.focus()
        start = page.evaluate("() => performance.now()")
        page.keyboard.press("ArrowRight")
        page.wait_for_function(SETTLED, arg=800, polling=100, timeout=120_000)
        elapsed = page.evaluate("() => window.__lastChange") - start
        if elapsed > 0:  # else the key press changed nothing in the main area: not a sample
            times.append(elapsed)
    return times


def _summary(name: str, times: list[float]) -> float:
    median = statistics.median(times)
    print(f"{name:<34} median {median:7.1f} ms   max {max(times):7.1f} ms   "
          f"({', '.join(f'{t:.0f}' for t in times)})")
    return median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--no-labels", action="store_true", help="switch box labels off first")
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated subset of " + ", ".join(PAGES))
    args = parser.parse_args(argv)
    if not (DATA / "train.json").exists() or not (DATA / "submission.csv").exists():
        subprocess.run([sys.executable, str(REPO / "bench" / "make_competition_scale.py"),
                        "--out", str(DATA)], check=True, cwd=REPO)
    peers = {}
    with tempfile.TemporaryDirectory() as tmp:
        peer = Path(tmp) / "peer.py"
        peer.write_text(PEER_SCRIPT)
        for settings, folder in (("Streamlit defaults", Path(tmp)), ("DetLens settings", REPO)):
            with streamlit_server(script=peer, cwd=folder) as url, chromium_page() as page:
                page.goto(url)
                wait_until_idle(page)
                _move_times(page, 1)  # warm-up
                peers[settings] = _summary(f"bare slider, {settings} (peer)", _move_times(page, args.moves))
    medians = {}
    with streamlit_server(DATA) as url:
        for name in [n for n in args.pages.split(",") if n]:
            with chromium_page() as page:  # a fresh session per page
                started = time.perf_counter()
                page.goto(f"{url}/{PAGES[name]}")
                wait_until_idle(page, timeout_ms=600_000)
                if name in TABS:
                    page.get_by_role("tab", name=TABS[name]).click()
                    wait_until_idle(page, timeout_ms=600_000)
                print(f"first load of {name} (parses and evaluates what is not cached yet): "
                      f"{time.perf_counter() - started:.1f} s")
                if args.no_labels and name == "explorer":
                    page.get_by_text("Labels", exact=True).click()
                    wait_until_idle(page)
                _move_times(page, 2)  # warm-up
                medians[name] = _summary(f"{name} slider move", _move_times(page, args.moves))
    default_peer, own_peer = peers["Streamlit defaults"], peers["DetLens settings"]
    for name, median in medians.items():
        goal = "2x the bare slider" if name == "explorer" else "300 ms"
        met = median <= 2 * default_peer if name == "explorer" else median < 300
        print(f"{name}: median {median:.0f} ms, {median / default_peer:.2f}x the bare slider with "
              f"Streamlit's defaults ({default_peer:.0f} ms), {median / own_peer:.2f}x with DetLens' "
              f"settings ({own_peer:.0f} ms); goal {goal}: {'met' if met else 'not met'}"
              + (f" (against the defaults peer; {'met' if median <= 2 * own_peer else 'not met'} against "
                 "the settings peer)" if name == "explorer" else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
