"""Issue 11, lost key presses: a run started by a slider move must not send the slider its value
back (proto set_value), or the browser sets the slider to it and drops the presses made since;
and the server must never answer with a reference to a cached element, which a browser busy
drawing may have dropped (the page then disconnects). The browser-level check is
tests/test_browser_explorer.py (10 right + 10 left taps end at 0.05)."""
from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from tests.browser import streamlit_server
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


async def _run(socket, cached_hashes: list[str]) -> list[ForwardMsg]:
    """One script run asked for as the browser does (a rerun listing the hashes it holds)."""
    request = BackMsg()
    request.rerun_script.cached_message_hashes.extend(cached_hashes)
    await socket.send(request.SerializeToString())
    messages = []
    while not messages or messages[-1].WhichOneof("type") != "script_finished":
        messages.append(ForwardMsg.FromString(await asyncio.wait_for(socket.recv(), 60)))
    return messages


async def _two_runs(url: str) -> tuple[list[ForwardMsg], list[ForwardMsg]]:
    stream = url.replace("http://", "ws://") + "/_stcore/stream"
    async with websockets.connect(stream, subprotocols=["streamlit"], max_size=None) as socket:
        first = await _run(socket, [])
        return first, await _run(socket, [m.hash for m in first if m.hash])


def test_elements_are_sent_whole_even_to_a_browser_that_says_it_holds_them():
    """The repository's Streamlit config (.streamlit/config.toml: the server runs in the
    repository) keeps the message cache off: a 30 kB element (Streamlit caches from 10 kB) comes
    whole in the second run too, not as a reference (`ref_hash`) to the one sent in the first."""
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "large_element.py"
        script.write_text('import streamlit as st\nst.markdown("large " * 5000)\n')
        with streamlit_server(script=script, timeout_s=180) as url:
            first, second = asyncio.run(_two_runs(url))
    assert [m.ref_hash for m in second if m.WhichOneof("type") == "ref_hash"] == []
    for run in (first, second):
        sizes = [m.ByteSize() for m in run if m.WhichOneof("type") == "delta"]
        assert sizes and max(sizes) > 30_000, "the large element is sent whole"
