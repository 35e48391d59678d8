"""Glue of the deeper-analysis pages: cached slices / TIDE per class / calibration of the active
evaluation (held as long as the evaluation is), search and top-N for long class lists, and the
click-through to the explorer and Class errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ui import loaders
from ui import state as S
from ui.sidebar import ActiveData

EXPLORER_PAGE = "pages/2_Image_explorer.py"
CLASS_ERRORS_PAGE = "pages/3_Class_errors.py"


def _key(data: ActiveData, *parts) -> tuple:
    return (*parts, data.dataset_key, data.predictions_key, round(float(data.iou_thr), 4))


def slice_index(data: ActiveData, with_pixels: bool = False):
    """core.slices.SliceIndex of the active evaluation (matched once, then any threshold is cheap);
    with_pixels adds brightness and contrast slices read from the images."""
    from core.slices import automatic_dimensions, build_slices, json_field_dimensions, pixel_dimensions

    ev = data.evaluation
    stats = image_statistics(data) if with_pixels else None

    def build():
        doc = _gt_document(data)  # custom image / annotation fields become user slices
        dims = automatic_dimensions(ev) + (json_field_dimensions(ev, doc) if doc else [])
        with st.spinner("Scoring every slice (once per evaluation) ..."):  # only when it runs
            return build_slices(ev, dims + (pixel_dimensions(ev, stats) if stats is not None else []))

    return loaders.derived(_key(data, "slices", with_pixels), build, [ev])


def class_boxes(data: ActiveData, category_id: int):
    """core.browse.ClassBoxes of one class of the active evaluation, ordered once per evaluation
    and class (a threshold move only cuts it: no filtering of the 490,000-row dets table)."""
    from core.browse import class_boxes as build

    ev = data.evaluation
    return loaders.derived(_key(data, "class_boxes", int(category_id)), lambda: build(ev, int(category_id)), [ev])


def image_statistics(data: ActiveData) -> np.ndarray:
    """[I, 2] mean luminance and contrast of the dataset's images (read once, with a progress bar)."""
    from core.slices import image_statistics as compute

    key = ("image_statistics", data.dataset_key, str(data.root))
    names = data.dataset.images["file_name"].to_numpy()

    def create():
        bar = st.progress(0.0, text=f"Reading {len(names):,} images for their brightness and contrast ...")

        def progress(i, n):
            if i % 25 == 0 or i == n:
                bar.progress(i / n, text=f"Reading images: {i:,} / {n:,}")
        stats = compute(data.root, names, S.data_roots(), progress)
        bar.empty()
        return stats

    return loaders.derived(key, create, [data.evaluation])


def tide_per_class(data: ActiveData) -> pd.DataFrame:
    from core.tide_per_class import tide_per_class as compute

    ev = data.evaluation
    return loaders.derived(_key(data, "tide_per_class"), lambda: compute(ev), [ev])


def calibration(data: ActiveData, n_bins: int):
    from core.calibration import calibration as compute

    ev, thr = data.evaluation, round(float(data.score_thr), 4)
    return loaders.derived(_key(data, "calibration", n_bins, thr), lambda: compute(ev, n_bins=n_bins, score_thr=thr),
                           [ev])


def best_thresholds(data: ActiveData, min_precision: float, min_recall: float) -> pd.DataFrame:
    from core.calibration import best_thresholds as compute

    ev = data.evaluation
    return loaders.derived(_key(data, "best_thresholds", min_precision, min_recall),
                           lambda: compute(ev, min_precision=min_precision, min_recall=min_recall), [ev])


def _gt_document(data: ActiveData) -> dict | None:
    """The ground-truth json of the dataset folder as a dict (for what the tables leave out:
    supercategories, custom fields), when it is a COCO json inside the data roots; else None."""
    from core.dataset import parse_json
    from core.problems import ValidationError

    folder, label = data.folder, data.gt_label
    if folder is None or not label or not str(label).lower().endswith(".json"):
        return None
    path = folder / str(label)
    try:
        if not path.is_file() or not S.data_roots().allows(path):
            return None
        doc = parse_json(path.read_bytes(), path.name)
    except (OSError, ValueError, TypeError, ValidationError):
        return None
    return doc if isinstance(doc, dict) else None


def supercategories(data: ActiveData) -> dict[int, str] | None:
    """category id -> supercategory from the dataset folder's json when every category has one."""
    from core.coco_analyze import supercategories_of

    return loaders.derived(_key(data, "supercategories"),
                           lambda: _Boxed(supercategories_of(_gt_document(data) or {})), [data.evaluation]).value


class _Boxed:
    """A cache entry that may hold None."""

    def __init__(self, value):
        self.value = value


def coco_analyze(data: ActiveData):
    """core.coco_analyze.Analyze of the active evaluation (Sim only with supercategories)."""
    from core.coco_analyze import coco_analyze as compute

    ev, supers = data.evaluation, supercategories(data)

    def create():
        with st.spinner("COCO analyze: re-matching with modified ground truth (once per evaluation) ..."):
            return compute(ev, supers)

    return loaders.derived(_key(data, "coco_analyze", supers is not None), create, [ev])


def search_and_top(table: pd.DataFrame, *, key: str, column: str = "name", sort_by: str | None = None,
                   default_top: int = 30, what: str = "classes") -> pd.DataFrame:
    """A search box (substring of `column`, any case) and, over 30 rows, a top-N box; the rows
    shown, sorted by `sort_by` descending when given."""
    cells = st.columns([3, 1])
    query = cells[0].text_input(f"Search {what}", key=f"{key}_search", placeholder=f"part of a {column}")
    if query:
        table = table[table[column].astype(str).str.contains(query, case=False, regex=False)]
    if sort_by is not None:
        table = table.sort_values(sort_by, ascending=False, kind="stable", na_position="last")
    if len(table) > default_top:
        n = cells[1].number_input(f"Top N of {len(table):,}", min_value=5, max_value=len(table),
                                  value=default_top, step=5, key=f"{key}_top")
        table = table.head(int(n))
    return table


def open_images_in_explorer(data: ActiveData, image_indices: np.ndarray, label: str,
                            classes: list[str] | None = None) -> None:
    """Make the explorer browse only these dataset images (worst AP first, showing `classes`
    only when given) and go there."""
    names = data.dataset.images["file_name"].to_numpy()
    keys = [str(k) for k in names[np.asarray(image_indices, np.int64)]]
    st.session_state[S.EXPLORER_SUBSET] = (label, tuple(keys))
    st.session_state[S.EXPLORER_SORT] = "lowest image AP"
    st.session_state[S.EXPLORER_CLASSES] = list(classes or [])
    st.session_state[S.EXPLORER_OUTCOMES] = []
    st.session_state[S.EXPLORER_IMAGE] = None  # the list's first: the slice's worst image
    st.switch_page(EXPLORER_PAGE)


def images_scoring(data: ActiveData, lo: float, hi: float) -> np.ndarray:
    """Images with a counted prediction scoring in [lo, hi) (the last bin also hi itself), at
    or above the score threshold: the boxes of a reliability bin."""
    dets = data.view.dets
    score = dets["score"].to_numpy()
    # scores outside [0, 1] sit in the end bins, as core.calibration puts them
    inside = ((score >= lo) | (lo <= 0.0)) & ((score < hi) | (hi >= 1.0)) \
        & (dets["outcome"].astype(str) != "ignored").to_numpy()
    return np.unique(dets["image_index"].to_numpy()[inside])


def open_boxes_at_score(data: ActiveData, event, category_id: int, class_name: str) -> None:
    """A point of a class's PR / threshold curve (customdata: its score threshold t, on the
    0.01 grid) opens the images of that class's boxes scoring in [t, t + 0.01)."""
    points = [p for p in selected_points(event) if p.get("customdata") is not None]
    if not points:
        return
    value = custom_data(points[0]["customdata"]) if isinstance(points[0]["customdata"], dict) else \
        [points[0]["customdata"]]
    t = float(value[0])
    dets = data.view.dets
    score = dets["score"].to_numpy()
    of_class = dets["category_id"].to_numpy() == category_id
    mine = of_class & (score >= t) & (score < t + 0.01)
    label = f"{class_name} boxes scoring {t:.2f}–{t + 0.01:.2f}"
    if not mine.any() and (of_class & (score >= t)).any():  # a flat stretch: the next boxes up
        lowest = score[of_class & (score >= t)].min()
        mine, label = of_class & (score == lowest), f"{class_name} boxes scoring {lowest:.4f} (the first ≥ {t:.2f})"
    images = np.unique(dets["image_index"].to_numpy()[mine])
    if not len(images):
        st.info(f"No {class_name} box scores ≥ {t:.2f}.")
        return
    open_images_in_explorer(data, images, label, [class_name])


def open_class_errors(class_name: str, error: str | None) -> None:
    """Open Class errors on a class (and error type: its radio's own key)."""
    st.session_state[S.ERRORS_CLASS] = class_name
    if error is not None:
        st.session_state["_errors_kind"] = error
    st.switch_page(CLASS_ERRORS_PAGE)


def custom_data(custom) -> list:
    """A point's customdata: Streamlit hands a row of a 2-D customdata over as {"0": a, "1": b}."""
    if isinstance(custom, dict):
        return [custom[k] for k in sorted(custom, key=lambda k: int(k))]
    return list(custom) if custom is not None else []


def selected_points(event) -> list[dict]:
    """The points of a plotly_chart / dataframe selection event (empty when none)."""
    if not event:
        return []
    selection = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {})
    return list(selection.get("points", []) or [])


def selected_rows(event) -> list[int]:
    if not event:
        return []
    selection = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {})
    return list(selection.get("rows", []) or [])


def confusion_shown(view, key: str = "_confusion_top"):
    """The confusion table to draw: over 30 classes, the N with the most errors (a number box)."""
    from core.drilldown import top_confusion

    k = len(view.confusion) - 1
    if k <= 30:
        return view.confusion
    n = st.number_input(f"Classes shown (the most confused of {k})", min_value=5, max_value=k, value=30,
                        step=5, key=key)
    return top_confusion(view.confusion, int(n))


def open_drilldown(data: ActiveData, event, chart: str) -> None:
    """A click on Overview's TIDE bars ("tide": x = error label) or confusion matrix
    ("confusion": the cell's x / y labels) opens the images behind it in the explorer."""
    from core.drilldown import confusion_cell_images, outcome_images
    from core.outcomes import Outcome

    points = selected_points(event)
    if not points:
        return
    view, k = data.view, len(data.dataset.categories)
    if chart == "tide":
        by_label = {o.label: o.value for o in Outcome}
        outcome = by_label.get(points[0].get("x"))
        if outcome is None:
            return
        images = outcome_images(view, outcome)
        st.session_state[S.EXPLORER_OUTCOMES] = [outcome]
        label = f"{Outcome(outcome).label.lower()} boxes"
    else:
        # the cell's labels, not its position: the chart may show the top N classes only
        names = list(view.confusion.index)
        gt_name, pred_name = points[0].get("y"), points[0].get("x")
        if gt_name not in names or pred_name not in names:
            return
        row, column = names.index(gt_name), names.index(pred_name)
        images = confusion_cell_images(view, None if row == k else row, None if column == k else column)
        label = f"confusion cell {gt_name} → {pred_name}"
    if not len(images):
        st.info(f"No image behind {label} at score ≥ {data.score_thr:.2f}.")
        return
    outcomes = st.session_state.get(S.EXPLORER_OUTCOMES) if chart == "tide" else []
    names = data.dataset.images["file_name"].to_numpy()
    st.session_state[S.EXPLORER_SUBSET] = (label, tuple(str(n) for n in names[images]))
    st.session_state[S.EXPLORER_SORT] = "most errors"
    st.session_state[S.EXPLORER_CLASSES] = []
    st.session_state[S.EXPLORER_OUTCOMES] = outcomes
    st.session_state[S.EXPLORER_IMAGE] = None
    st.switch_page(EXPLORER_PAGE)
