"""Many users: each of 8 concurrent browser sessions' Overview ready time against one session alone.

    python bench/bench_concurrency.py [--sessions 8] [--runs 1]

A real `streamlit run app.py` on the real fold (../shared/real-trash fold3_gt.json +
fold3_deta_swinL.csv), driven by Debian's headless chromium. Per run, two fresh servers:
one session opening the Overview alone, then SESSIONS sessions opening it at the same time.
A session is ready when its page last changed (the app rendered, nothing running, stale or
skeleton, text stable for 1.5 s), timed in the page itself so that waiting for one session
does not delay another's figure. Prints each figure, the median and worst, and the ratio
worst / alone (issue 16's target: within 3x), with the CPU seconds the server and the browsers
spent. The peer, in the same run and rig: a bare Streamlit page with one plotly chart opened by
one session alone, then by SESSIONS at once; the browsers share this machine's cores with the
server, so the peer's ratio is the floor the rig allows.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_memory import REAL_TRASH, server  # noqa: E402
from tests.browser import (chromium_browser, new_page, page_problems, streamlit_server,  # noqa: E402
                           wait_until_idle)

PEER_SCRIPT = '''
import plotly.graph_objects as go
import streamlit as st
st.title("peer")
st.plotly_chart(go.Figure(go.Bar(x=[1, 2, 3], y=[3, 1, 2])), key="peer_chart")
'''

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


def _process_tree(pid: int) -> set[int]:
    """pid and all its descendants (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    tree, grown = {pid}, True
    while grown:
        grown = False
        for child, parent in parents.items():
            if parent in tree and child not in tree:
                tree.add(child)
                grown = True
    return tree


def _cpu_seconds(pids) -> float:
    """utime + stime of the processes (those gone since count nothing)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _browsers(server_pid: int | None) -> set[int]:
    """The chromium processes this benchmark drives (its descendants but the server's)."""
    mine = _process_tree(os.getpid()) - {os.getpid()}
    return mine - _process_tree(server_pid) if server_pid is not None else mine


def open_sessions(browser, url: str, n: int, server_pid: int | None, expect: str
                  ) -> tuple[list[float], float | None, float]:
    """(seconds from the common start to each of n sessions' page being ready, server CPU s,
    browser CPU s) on the server at url, whose page must show `expect`."""
    pages = [new_page(browser) for _ in range(n)]
    for page in pages:
        page.add_init_script(LAST_CHANGE)
    browsers = _browsers(server_pid)
    server0 = _cpu_seconds([server_pid]) if server_pid is not None else None
    browser0 = _cpu_seconds(browsers)
    started = time.time()
    for page in pages:  # all navigations start before any is waited for
        page.goto(url, wait_until="commit")
    seconds = []
    for page in pages:
        wait_until_idle(page, timeout_ms=600_000, quiet_ms=1500)
        text = page.inner_text("body")
        problems = page_problems(page)
        if problems or expect not in text:
            raise SystemExit(f"a session did not render {url}: {problems}")
        seconds.append(page.evaluate("window.__benchChanged") / 1000 - started)
    server_cpu = _cpu_seconds([server_pid]) - server0 if server_pid is not None else None
    browser_cpu = _cpu_seconds(browsers | _browsers(server_pid)) - browser0
    for page in pages:
        page.context.close()
    return seconds, server_cpu, browser_cpu


def _detlens(browser, data_dir: Path, n: int):
    with server(REPO, data_dir, None) as (url, pid):  # a fresh server: nothing cached yet
        return open_sessions(browser, f"{url}/Overview", n, pid, "mAP@0.5 (competition)")


def _line(name: str, n: int, alone, together) -> str:
    (one,), server_one, browser_one = alone
    many, server_many, browser_many = together
    worst, median = max(many), statistics.median(many)
    cpu = f"; browser CPU {browser_one:.1f} s alone, {browser_many:.1f} s for {n}"
    if server_one is not None:
        cpu = f"; server CPU {server_one:.1f} s alone, {server_many:.1f} s for {n}" + cpu
    return (f"{name}: one session alone {one:.1f} s; {n} at once: "
            f"{', '.join(f'{s:.1f}' for s in sorted(many))} s (median {median:.1f}, worst {worst:.1f}) "
            f"-> worst / alone {worst / one:.1f}x, median / alone {median / one:.1f}x{cpu}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, chromium_browser() as browser:
        for name in ("fold3_gt.json", "fold3_deta_swinL.csv"):
            shutil.copy(REAL_TRASH / name, Path(tmp) / name)
        peer = Path(tmp) / "peer.py"
        peer.write_text(PEER_SCRIPT)
        for run in range(args.runs):
            with streamlit_server(script=peer) as url:
                open_sessions(browser, url, 1, None, "peer")  # warm: plotly's bundle is compiled once
                peer_alone = open_sessions(browser, url, 1, None, "peer")
                peer_many = open_sessions(browser, url, args.sessions, None, "peer")
            alone = _detlens(browser, Path(tmp), 1)
            together = _detlens(browser, Path(tmp), args.sessions)
            print(f"run {run + 1}:", flush=True)
            print("  " + _line("Overview, real fold", args.sessions, alone, together) + " (target <= 3x)")
            print("  " + _line("peer: bare page + one plotly chart", args.sessions, peer_alone, peer_many),
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
