"""Streamlit loses slider key presses while the browser draws a large plotly figure (issue 11).

A bare page (no DetLens code): a slider, one plotly figure of 8,000 text points redrawn at each
value, the value written below. 10 ArrowRight then 10 ArrowLeft taps, 60 ms apart, leave the
slider at 0.05 but the page's last run at 0.08-0.10 (this machine, Streamlit 1.67), with or
without st.fragment; without the figure every run ends at 0.05. DetLens' own part (the server
echoing a value back to the slider) is fixed and held by tests/test_slider_echo.py.

    python scripts/repro_lost_slider_presses.py          # prints (slider, page) per burst
"""
from __future__ import annotations

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
figure = go.Figure()
for _ in range(20):
    figure.add_scatter(x=np.random.rand(400) * 1000, y=np.random.rand(400) * 1000,
                       mode="markers+text", text=[f"Paper {value:.2f}"] * 400)
st.title("bare page")
st.plotly_chart(figure, key="figure")
st.write(f"ran at {value:.2f}")
'''


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "bare_slider_page.py"
        script.write_text(PAGE)
        with streamlit_server(script=script) as url, chromium_page() as page:
            page.goto(url)
            wait_until_idle(page, quiet_ms=500)
            slider = page.locator('[data-testid="stSidebar"] [data-testid="stSlider"] input[type="range"]').first
            for burst in range(3):
                slider.focus()
                for key in ["ArrowRight"] * 10 + ["ArrowLeft"] * 10:
                    page.keyboard.press(key)
                    page.wait_for_timeout(60)
                page.wait_for_timeout(4000)
                ran = re.search(r"ran at (\d\.\d\d)", page.inner_text("body"))
                print(f"burst {burst + 1}: slider {float(slider.input_value()):.2f}, "
                      f"page ran at {ran.group(1) if ran else '?'} (both should be 0.05)")


if __name__ == "__main__":
    main()
