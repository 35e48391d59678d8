"""Many users: each of 8 concurrent browser sessions' Overview ready time against one session alone.

    python bench/bench_concurrency.py [--sessions 8] [--runs 1]

A real `streamlit run app.py` on the real fold (../shared/real-trash fold3_gt.json +
fold3_deta_swinL.csv), driven by Debian's headless chromium. Per run, two fresh servers:
one session opening the Overview alone, then SESSIONS sessions opening it at the same time.
A session is ready when its page last changed (the app rendered, nothing running, stale or
skeleton, text stable for 1.5 s), timed in the page itself so that waiting for one session
does not delay another's figure. Prints each figure, the median and worst, and the ratio
worst / alone (issue 16's target: within 3x).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_memory import REAL_TRASH, server  # noqa: E402
from tests.browser import chromium_browser, new_page, page_problems, wait_until_idle  # noqa: E402

# Records, from the first moment of the page, the wall time (epoch ms) of its last change, with
# the same notion of busy and change as tests.browser.wait_until_idle.
LAST_CHANGE = """
setInterval(() => {
    const busy = document.querySelector('[data-testid="stStatusWidget"]')
        || document.querySelector('[data-stale="true"]')
        || document.querySelector('[data-testid="stSkeleton"]')
        || !document.querySelector('h1');
    const text = (document.body ? document.body.innerText.length : 0) + ':' +
        document.querySelectorAll('.js-plotly-plot, canvas, img').length;
    if (busy || window.__benchText !== text) {
        window.__benchText = text;
        window.__benchChanged = Date.now();
    }
}, 50);
"""


def open_sessions(browser, data_dir: Path, n: int) -> list[float]:
    """Seconds from the common start to each of n sessions' Overview being ready, on a fresh server."""
    with server(REPO, data_dir, None) as (url, _pid):
        pages = [new_page(browser) for _ in range(n)]
        for page in pages:
            page.add_init_script(LAST_CHANGE)
        started = time.time()
        for page in pages:  # all navigations start before any is waited for
            page.goto(f"{url}/Overview", wait_until="commit")
        seconds = []
        for page in pages:
            wait_until_idle(page, timeout_ms=600_000, quiet_ms=1500)
            text = page.inner_text("body")
            problems = page_problems(page)
            if problems or "mAP@0.5 (competition)" not in text:
                raise SystemExit(f"a session did not render the Overview: {problems}")
            seconds.append(page.evaluate("window.__benchChanged") / 1000 - started)
        for page in pages:
            page.context.close()
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, chromium_browser() as browser:
        for name in ("fold3_gt.json", "fold3_deta_swinL.csv"):
            shutil.copy(REAL_TRASH / name, Path(tmp) / name)
        for run in range(args.runs):
            (alone,) = open_sessions(browser, Path(tmp), 1)
            together = open_sessions(browser, Path(tmp), args.sessions)
            worst, median = max(together), statistics.median(together)
            print(f"run {run + 1}: one session alone {alone:.1f} s; {args.sessions} at once: "
                  f"{', '.join(f'{s:.1f}' for s in sorted(together))} s (median {median:.1f}, worst {worst:.1f}) "
                  f"-> worst / alone {worst / alone:.1f}x, median / alone {median / alone:.1f}x (target <= 3x)",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
