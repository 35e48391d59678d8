"""Drawing widgets shared by the pages: synchronised image panels, the outcome legend.

The rows they draw come from core (core.thresholds.PredictionView, core.browse)."""
from __future__ import annotations

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from core.colors import text_color_on
from core.outcomes import legend_entries
from core.browse import DET_COLUMNS, gt_rows
from core.drawing import Panel, gt_layers, panels_figure, prediction_layers
from core.thresholds import PredictionView
from ui.image_panels import draw_figure, table_json
from ui.loaders import ImageRef, image_ref
from ui.sidebar import ActiveData

# digits shown after the point in the number columns of core.browse.box_table
BOX_TABLE_DIGITS = {"score": 3, "IoU": 2, "x1": 1, "y1": 1, "x2": 1, "y2": 1}
PLOTLY_CONFIG = {"scrollZoom": True, "displaylogo": False,
                 "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}
# What a test set (no ground-truth boxes) can still show, linked from pages that cannot.
NO_GT_PAGES = [
    ("pages/1_Overview.py", "Overview: class mix against train.json, threshold suggestion, score distributions"),
    ("pages/2_Image_explorer.py", "Image explorer: the boxes of every image, sorted by count, score or disagreement"),
    ("pages/7_Compare.py", "Compare: agreement between two or more test submissions"),
    ("pages/8_Ensemble.py", "Ensemble: fit on validation, apply to the test submissions"),
]


def draw_image_panels(image: ImageRef, panels: list[Panel], *, key: str, show_labels: bool = True,
                      height: int = 620, boxes: pd.DataFrame | None = None) -> None:
    """N side-by-side panels of one image (GT | predictions, or GT | A | B), zoom/pan shared;
    boxes: a core.browse.box_table of the image, listed under the panels."""
    if image.notice:
        st.info(image.notice, icon=":material/image_not_supported:")
    figure = panels_figure(panels, image.width, image.height, image_uri=image.uri,
                           missing_notice="image file not available" if image.uri is None else None,
                           figure_height=height, show_labels=show_labels)
    table = None if boxes is None else table_json(
        boxes, BOX_TABLE_DIGITS, max_height=None if len(boxes) <= 12 else 460)  # a scroll box beyond 12 rows
    draw_figure(figure, key=key, height=height, config=PLOTLY_CONFIG,
                view_id=f"{image.key} {image.width:g}x{image.height:g} {len(panels)}", table=table)


def static_table(table, *, name: str, **kwargs) -> None:
    """st.table of a DataFrame or pandas Styler (kwargs: st.table's); a Styler keeps the id `name`
    (unique on the page) from run to run."""
    # pandas gives every Styler a random id, which is in every cell's id: a rerun (a slider move)
    # would make the browser rewrite all of them (~300-500 attribute changes per move measured).
    st.table(table.set_uuid(name) if isinstance(table, Styler) else table, **kwargs)


def outcome_legend(kinds=None) -> None:
    """A one-line colour key of the outcomes (values; default all and crowd GT), in display order."""
    chips = " ".join(
        f"<span style='background:{color};color:{text_color_on(color)};padding:1px 6px;"
        f"border-radius:4px;font-size:0.8em;margin-right:2px'>{label}</span>"
        for label, color in legend_entries(kinds))
    st.markdown(chips, unsafe_allow_html=True)


def image_ref_for(data: ActiveData, key: str, image_index: int, view: PredictionView | None = None) -> ImageRef:
    """The drawable image for a row of the explorer's list (size from the GT when it has it;
    else large enough for the boxes of `view`, by default the active predictions')."""
    size = None
    if image_index >= 0 and data.dataset is not None:
        row = data.dataset.images.iloc[image_index]
        size = (float(row["width"]), float(row["height"]))
    fallback = (1024.0, 1024.0)
    view = view if view is not None else data.prediction_view
    if size is None and view is not None:  # no size known: cover every box
        dets = view.image_boxes(key, image_index)
        if len(dets):
            fallback = (max(1024.0, float(dets["x2"].max())), max(1024.0, float(dets["y2"].max())))
    return image_ref(data.root, key, size, fallback, upright=data.upright_pixels)


def boxes_of(data: ActiveData, key: str, image_index: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions, ground truth) rows of one image at the data's threshold, from its
    PredictionView; without predictions, no prediction rows and plain GT."""
    view = data.prediction_view
    if view is None:
        dets = pd.DataFrame(columns=DET_COLUMNS)
        return dets, gt_rows(data.dataset, image_index, dets, None, data.class_names)
    dets = view.image_boxes(key, image_index)
    return dets, view.image_gts(image_index, dets)


def image_panels(data: ActiveData, gts: pd.DataFrame, dets: pd.DataFrame, *, color_by: str,
                 show_labels: bool, prediction_title: str | None = None) -> list[Panel]:
    """The two standard panels: ground truth | predictions (GT panel omitted without GT).
    prediction_title: draw the predictions panel under it (default: the active set's, if any)."""
    names, colors = data.class_names, data.class_colors
    for name in set(dets["category_id"].tolist()) - set(names) if len(dets) else ():
        names = {**names, int(name): f"unknown class {int(name)}"}
    panels = []
    if data.dataset is not None and len(data.dataset.annotations):
        panels.append(Panel("Ground truth", gt_layers(
            gts, color_by=color_by, class_names=names, class_colors=colors, with_labels=show_labels)))
    if prediction_title is None and data.predictions is not None:
        prediction_title = f"Predictions ({data.predictions_label}, score ≥ {data.score_thr:.2f})"
    if prediction_title is not None:
        panels.append(Panel(prediction_title, prediction_layers(
            dets, color_by=color_by, class_names=names, class_colors=colors, with_labels=show_labels)))
    return panels or [Panel("Image")]


def need_evaluation(data: ActiveData) -> bool:
    """True when the page can show metrics; otherwise says why (st.info) and returns False."""
    if data.dataset is None:
        st.info("Load a ground truth (sidebar) to see this page.")
        return False
    if not data.has_gt_boxes:
        st.info(f"{data.gt_label} has no annotations (a test set?): errors need ground-truth boxes to "
                "be told from correct boxes. Choose a ground truth with boxes (a validation fold) in the "
                "sidebar, or open what works without one:")
        for page, text in NO_GT_PAGES:
            st.page_link(page, label=text)
        return False
    if data.predictions is None:
        st.info("Choose or upload predictions in the sidebar (a submission CSV or a COCO results "
                "json) to see metrics.")
        return False
    if not len(data.predictions):  # a valid, empty submission: every metric would be 0 or NaN
        st.info(f"No predicted boxes in {data.predictions_label} at score ≥ {data.score_thr:.2f} "
                "(an empty submission): there is nothing to measure. Choose or upload another "
                "prediction set in the sidebar.")
        return False
    keys = data.predictions.image_keys
    unknown = list(keys[data.dataset.image_index_of_file(keys) < 0])
    n_images = len(keys)
    if data.evaluation is None and len(unknown) < n_images:
        return False  # evaluation failed; the sidebar said why
    if unknown:
        if len(unknown) >= n_images:
            st.warning(f"None of the {n_images:,} images in {data.predictions_label} is in "
                       f"{data.gt_label} (test images?): no metrics. Browse them in the **Image "
                       "explorer**, or pick the matching ground truth in the sidebar.")
            return False
        st.warning(f"{len(unknown):,} of {n_images:,} images in {data.predictions_label} are not "
                   f"in {data.gt_label} (e.g. {unknown[0]}); they are left out of the metrics.")
    return True
