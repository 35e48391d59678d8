"""Issue 11, lost key presses: a run started by a slider move must not send the slider its value
back (proto set_value), or the browser sets the slider to it and drops the presses made since.
The browser-level check is tests/test_browser_explorer.py (10 right + 10 left taps end at 0.05)."""
from __future__ import annotations

import pytest

from tests.test_app import open_app
from ui import state as S


@pytest.mark.parametrize("page", ["pages/2_Image_explorer.py", "pages/1_Overview.py"])
def test_a_slider_move_is_not_sent_back_to_the_browser(page):
    at = open_app(page)
    slider = at.slider(key=S.widget_key(S.SCORE_THR))
    for value in (0.06, 0.07, 0.3):
        slider.set_value(value).run()
        slider = at.slider(key=S.widget_key(S.SCORE_THR))
        assert not at.exception
        assert at.session_state[S.SCORE_THR] == value and slider.value == value
        assert not slider.proto.set_value, f"the run at {value} sends the browser its value back"


def test_a_threshold_set_by_code_still_reaches_the_slider():
    """The other way stays: a value set from code (a button, a page switch) is sent to it."""
    at = open_app("pages/1_Overview.py")
    at.slider(key=S.widget_key(S.SCORE_THR)).set_value(0.4).run()
    at.session_state[S.SCORE_THR] = 0.2  # as S.set_value does from a button
    at.run()
    slider = at.slider(key=S.widget_key(S.SCORE_THR))
    assert slider.value == 0.2 and slider.proto.set_value
    at.switch_page("pages/5_Export.py").run()
    assert at.slider(key=S.widget_key(S.SCORE_THR)).value == 0.2
