"""Browser-measured latency of a score-threshold move on the Slices page at competition scale
(4,883 images, ~490,000 predictions), next to a bare Streamlit slider (the peer, same run).

    python bench/bench_slices_browser.py [--moves 10]

Same method as bench/bench_slider.py (Debian's headless chromium, arrow key on the sidebar's
score slider, time to the last change of the main area): the slices are matched once on the
first load (timed), then each move only re-reads the TPs at the new threshold. Goal: a median
under 300 ms.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_slider import DATA, PEER_SCRIPT, _move_times, _summary  # noqa: E402
from tests.browser import chromium_page, streamlit_server, wait_until_idle  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=10)
    args = parser.parse_args(argv)
    if not (DATA / "train.json").exists() or not (DATA / "submission.csv").exists():
        subprocess.run([sys.executable, str(REPO / "bench" / "make_competition_scale.py"),
                        "--out", str(DATA)], check=True, cwd=REPO)
    with tempfile.TemporaryDirectory() as tmp:
        peer = Path(tmp) / "peer.py"
        peer.write_text(PEER_SCRIPT)
        with streamlit_server(script=peer) as url, chromium_page() as page:
            page.goto(url)
            wait_until_idle(page)
            _move_times(page, 1)  # warm-up
            peer_median = _summary("bare Streamlit slider (peer)", _move_times(page, args.moves))
    with streamlit_server(DATA) as url, chromium_page() as page:
        started = time.perf_counter()
        page.goto(f"{url}/Slices")
        wait_until_idle(page, timeout_ms=600_000)
        print(f"first load of Slices (parse, evaluate, slices, TIDE per class, COCO analyze once): "
              f"{time.perf_counter() - started:.1f} s")
        _move_times(page, 2)  # warm-up
        median = _summary("Slices slider move", _move_times(page, args.moves))
    print(f"ratio Slices / bare slider: {median / peer_median:.2f}x; "
          f"Slices median {'<' if median < 300 else '>='} 300 ms goal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
