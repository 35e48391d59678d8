"""The repository's Streamlit config as Streamlit itself reads it when started in the repository."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _option_in_repository(name: str) -> str:
    """The value Streamlit gives option `name` in a process started in the repository folder."""
    code = ("from streamlit import config; config.get_config_options(force_reparse=True); "
            f"print(repr(config.get_option({name!r})))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_no_full_garbage_collection_after_every_script_run():
    """runner.postScriptGC is off: a full collection per run cost ~115 ms per explorer slider move at
    competition scale (bench/bench_slider.py), holding back the run's last messages."""
    assert _option_in_repository("runner.postScriptGC") == "False"
