"""Lost slider key presses (issue 11): Streamlit 1.67's message cache, on a bare page.

    python scripts/repro_lost_slider_presses.py            # Streamlit's default cache: lost
    python scripts/repro_lost_slider_presses.py --no-cache # DetLens' setting: every press kept

A bare page (no DetLens code): a slider and one plotly figure that depends only on its value.
In chromium slowed 10x (what a loaded machine or a slow laptop does), 3 bursts of 10 ArrowRight
then 10 ArrowLeft taps, 60 ms apart. Measured on this machine (2 cores, shared with others'
benchmarks): default cache, the page disconnected ("Cached ForwardMsg MISS" in the console) in 4
of 6 runs (6x and 10x), in burst 1, 2 or 3, and stayed where it was (slider / page 0.14 / 0.09,
0.15 / 0.10, 0.05 / 0.10, 0.05 / 0.08); --no-cache: 0.05 / 0.05 in every burst of 2 runs. The
app fails the same way and more often (explorer 4 of 4 runs, Overview 2 of 3, at 6x and 10x);
DetLens turns the cache off in .streamlit/config.toml (global.minCachedMessageSize), held by
tests/test_browser_explorer.py and tests/test_slider_echo.py.

Upstream bug report (Streamlit 1.67.0, frontend/connection/src/ForwardMessageCache.ts):
  Each rerun BackMsg lists the hashes the browser has cached (frontend/app/src/App.tsx,
  sendRerunBackMsg -> getCachedMessageHashes), and the server answers an element with one of
  those hashes by a reference (lib/streamlit/runtime/scriptrunner_utils/script_run_context.py,
  ScriptRunContext.enqueue: `msg.hash in self.cached_message_hashes` -> create_reference_msg).
  While that rerun is on its way, the browser keeps handling the earlier runs' messages; each
  script_finished calls ForwardMsgCache.incrementRunCount, which deletes entries older than
  maxCachedMessageAge (2) runs, including ones it has just listed as held. The reference then
  arrives for a deleted entry: processMessagePayload throws "Cached ForwardMsg MISS", the
  websocket handler treats it as fatal, the page disconnects, and every later key press is lost.
  Frames recorded from the explorer (chromium at 6x): rerun [0.11] sent listing hash c96323 (a
  148 kB plotly chart, first drawn at 0.11); script_finished of the 0.12 run evicts c96323; the
  next rerun [0.10] no longer lists it; the 0.11 run answers `ref_hash c96323` -> MISS.
  Revisiting values (right then left taps) is what makes a run's element equal an older one.
  Fix upstream: keep entries listed in a rerun request until that run's script_finished, or
  fetch / rerun on a miss instead of failing.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.browser import chromium_page, streamlit_server, wait_until_idle  # noqa: E402

PAGE = '''
import numpy as np
import plotly.graph_objects as go
import streamlit as st

value = st.sidebar.slider("Score threshold", 0.0, 1.0, 0.05, step=0.01, format="%.2f", key="s")
points = np.random.default_rng(round(value * 100)).random((2, 3000))  # one figure per value
st.title("bare page")
st.plotly_chart(go.Figure(go.Scatter(x=points[0], y=points[1], mode="markers")), key="figure")
st.write(f"ran at {value:.2f}")
'''
SLIDER = '[data-testid="stSidebar"] [data-testid="stSlider"] input[type="range"]'


def settled(page, slider, seconds: float = 120.0) -> tuple[str, str | None]:
    """(slider, value the page last ran at) once unchanged for 5 s, or after `seconds`."""
    seen, since = None, 0.0
    for step in range(int(seconds * 4)):
        ran = re.search(r"ran at (\d\.\d\d)", page.inner_text("body"))
        now = (f"{float(slider.input_value()):.2f}", ran.group(1) if ran else None)
        if now != seen:
            seen, since = now, step / 4
        elif step / 4 - since >= 5:
            break
        page.wait_for_timeout(250)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-cache", action="store_true",
                        help="turn Streamlit's message cache off, as DetLens' config does")
    args = parser.parse_args()
    # Set either way: the server runs in the repository, whose config turns the cache off.
    os.environ["STREAMLIT_GLOBAL_MIN_CACHED_MESSAGE_SIZE"] = "1e12" if args.no_cache else "1e4"
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "bare_slider_page.py"
        script.write_text(PAGE)
        with streamlit_server(script=script, timeout_s=180) as url, chromium_page() as page:
            errors = []
            page.on("console", lambda msg: errors.append(msg.text) if "MISS" in msg.text else None)
            page.goto(url)
            wait_until_idle(page, quiet_ms=500, timeout_ms=180_000)
            page.context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": 10})
            slider = page.locator(SLIDER).first
            for burst in range(3):
                slider.focus()
                for key in ["ArrowRight"] * 10 + ["ArrowLeft"] * 10:
                    page.keyboard.press(key)
                    page.wait_for_timeout(60)
                shown, ran = settled(page, slider)
                print(f"burst {burst + 1}: slider {shown}, page ran at {ran} (both should be "
                      f"0.05); cache misses so far: {len(errors)}", flush=True)


if __name__ == "__main__":
    main()
