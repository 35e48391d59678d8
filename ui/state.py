"""Every session-state key of the dashboard, declared in one place, and the widget binding.

Streamlit forgets a widget's value when the user switches page. So each setting lives under a
canonical key (below); the widget that edits it uses `widget_key(KEY)`, is loaded from the
canonical key before it is drawn and writes back `on_change` (Streamlit docs, "Working with
widgets in multipage apps").
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.data_roots import ENV_VAR as DATA_ROOTS_ENV
from core.data_roots import DataRoots, app_data_roots

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "sample_data"

# --- settings shared by every page (canonical keys) ---
SCORE_THR = "score_thr"                # float: predictions below it are dropped from views
IOU_THR = "iou_thr"                    # float: IoU to count a match; a change re-evaluates
DATA_DIR = "data_dir"                  # str: the dataset root folder
GT_CHOICE = "gt_choice"                # str: label of the chosen ground truth (file or upload)
ACTIVE_PREDICTIONS = "active_predictions"  # str: label of the active prediction set
UPLOADED_GT = "uploaded_gt"            # dict label -> ui.sidebar.UploadedFile (name, sha256, size)
UPLOADED_PREDICTIONS = "uploaded_predictions"  # dict label -> UploadedFile; bytes in ui.loaders' store
UPLOAD_IMAGE_DIRS = "upload_image_dirs"  # dict uploaded-GT label -> its image folder ("": none)
EXTRA_PREDICTIONS = "extra_predictions"  # dict label -> RegisteredPredictions (ui.sidebar)
PREDICTIONS_FOR_GT = "predictions_for_gt"  # str: the GT label ACTIVE_PREDICTIONS was chosen for

# --- per-page state ---
EXPLORER_IMAGE = "explorer_image"      # str: key (file name) of the image the explorer shows
EXPLORER_SORT = "explorer_sort"        # str: image order in the explorer
EXPLORER_CLASSES = "explorer_classes"  # list[str]: class names shown (empty = all)
EXPLORER_OUTCOMES = "explorer_outcomes"  # list[str]: outcomes shown (empty = all)
EXPLORER_COLOR_BY = "explorer_color_by"  # "outcome" | "class"
EXPLORER_LABELS = "explorer_labels"    # bool: write class and score on the boxes
EXPLORER_SUBSET = "explorer_subset"    # (label, tuple of image keys) the explorer is limited to, or None
ERRORS_CLASS = "errors_class"          # str: class name on the Class errors page
COMPARE_SETS = "compare_sets"          # list[str]: prediction-set labels on the Compare page
COMPARE_PAIR = "compare_pair"          # list[str]: the two sets whose images are compared
COMPARE_IMAGE = "compare_image"        # str: file name shown in the three-panel view
ENSEMBLE_SETS = "ensemble_sets"        # list[str]: prediction-set labels to ensemble
ENSEMBLE_RESULT = "ensemble_result"    # core.ensemble.EnsembleResult of the last run, or None
ENSEMBLE_SWEEP = "ensemble_sweep"      # core.ensemble_sweep.SweepResult of the last sweep, or None
NO_GT_PRIOR = "no_gt_prior"            # str: the training json whose class mix a test set is held to
EXPLORER_SECOND = "explorer_second"    # str: second submission for the "most disagreement" sort
AGREE_REF_THR = "agree_ref_thr"        # float: reference boxes >= it are the pseudo ground truth
ENSEMBLE_TEST_SETS = "ensemble_test_sets"  # list[str]: test sets a fitted recipe is applied to
ENSEMBLE_APPLIED = "ensemble_applied"  # dict: the last recipe applied to test sets, or None

SCORE_THR_DEFAULT = 0.05  # the baselines' hard-coded threshold
IOU_THR_DEFAULT = 0.5     # the competition's metric is mAP@0.5

DEFAULTS = {
    SCORE_THR: SCORE_THR_DEFAULT,
    IOU_THR: IOU_THR_DEFAULT,
    GT_CHOICE: None,
    ACTIVE_PREDICTIONS: None,
    UPLOADED_GT: {},
    UPLOADED_PREDICTIONS: {},
    UPLOAD_IMAGE_DIRS: {},
    EXTRA_PREDICTIONS: {},
    PREDICTIONS_FOR_GT: None,
    EXPLORER_IMAGE: None,
    EXPLORER_SORT: "most errors",
    EXPLORER_CLASSES: [],
    EXPLORER_OUTCOMES: [],
    EXPLORER_COLOR_BY: "outcome",
    EXPLORER_LABELS: True,
    EXPLORER_SUBSET: None,
    ERRORS_CLASS: None,
    COMPARE_SETS: [],
    COMPARE_PAIR: [],
    COMPARE_IMAGE: None,
    ENSEMBLE_SETS: [],
    ENSEMBLE_RESULT: None,
    ENSEMBLE_SWEEP: None,
    NO_GT_PRIOR: None,
    EXPLORER_SECOND: None,
    AGREE_REF_THR: 0.5,
    ENSEMBLE_TEST_SETS: [],
    ENSEMBLE_APPLIED: None,
}


def _app_args(argv: list[str] | None) -> argparse.Namespace:
    """The app's own options, after `streamlit run app.py --`; unknown ones are ignored."""
    return _parse_app_args(tuple(sys.argv[1:] if argv is None else argv))


@functools.lru_cache(maxsize=8)
def _parse_app_args(argv: tuple[str, ...]) -> argparse.Namespace:
    # cached: data_roots() is asked for every image and crop drawn (~1.3 ms a parse)
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--data", default=None)
    parser.add_argument("--data-root", action="append", default=[])
    known, _ = parser.parse_known_args(list(argv))
    return known


def data_dir_from_argv(argv: list[str] | None = None) -> str | None:
    """The DIR of `streamlit run app.py -- --data DIR`, or None."""
    return _app_args(argv).data


def data_roots_from_argv(argv: list[str] | None = None) -> list[str]:
    """The DIRs of `streamlit run app.py -- --data-root DIR [--data-root DIR2 ...]`."""
    return list(_app_args(argv).data_root)


@functools.lru_cache(maxsize=8)
def _data_roots(address: str | None, extra: tuple[str, ...], data_dir: str | None,
                env_roots: str) -> DataRoots:
    return app_data_roots(address, extra=extra, data_dir=data_dir, env={DATA_ROOTS_ENV: env_roots})


def data_roots() -> DataRoots:
    """Which files the app may open (core.data_roots.app_data_roots): restricted when served
    beyond loopback (`server.address`) or given DETLENS_DATA_ROOTS / `--data-root`."""
    return _data_roots(st.get_option("server.address"), tuple(data_roots_from_argv()),
                       data_dir_from_argv(), os.environ.get(DATA_ROOTS_ENV, ""))


def init_state() -> None:
    """Set every canonical key that is not set yet (idempotent, call at the top of each page)."""
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value.copy() if isinstance(value, (dict, list)) else value
    if DATA_DIR not in st.session_state:
        st.session_state[DATA_DIR] = data_dir_from_argv() or str(SAMPLE_DIR)


_UNSET = object()  # no widget value yet (first run, or not drawn in the last run)
_DRAWN_ON = "_bound_widget_pages"  # widget key -> the page (script hash) that last drew it


def widget_key(key: str) -> str:
    """The key of the widget that edits canonical setting `key`."""
    return f"_w_{key}"


def _store(key: str) -> None:
    st.session_state[key] = st.session_state[widget_key(key)]


def bind(key: str, options: list | None = None) -> dict:
    """Widget kwargs editing canonical `key`: loads its value now, stores it back on change.

    With options (selectbox/radio), a stored value no longer offered falls back to the first
    option, so a stale choice never breaks the widget.
    """
    value = st.session_state.get(key)
    if options is not None:
        if isinstance(value, list):
            value = [v for v in value if v in options]
        elif value not in options:
            value = options[0] if options else None
        st.session_state[key] = value
    # Written only on a new page (there the widget is a new one) or when it differs: Streamlit
    # sends a value the script writes back to the browser, which sets the widget to it, dropping
    # the key presses made while that run was on its way (issue 11: 10 right + 10 left taps on
    # the score slider ended at 0.06 or 0.09, not 0.05).
    ctx = get_script_run_ctx()
    page = ctx.page_script_hash if ctx is not None else ""
    drawn_on = st.session_state.setdefault(_DRAWN_ON, {})
    if drawn_on.get(widget_key(key)) != page or st.session_state.get(widget_key(key), _UNSET) != value:
        st.session_state[widget_key(key)] = value
    drawn_on[widget_key(key)] = page
    return dict(key=widget_key(key), on_change=_store, args=(key,))


def set_value(key: str, value) -> None:
    """Set a canonical setting from code (e.g. a button), the widget follows on the next run."""
    st.session_state[key] = value
