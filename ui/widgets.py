"""Drawing widgets shared by the pages: synchronised image panels, per-image box tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.boxes import box_iou
from core.colors import text_color_on
from core.outcomes import OUTCOME_LABELS, legend_entries
from core.drawing import Panel, gt_layers, panels_figure, prediction_layers
from ui.loaders import ImageRef, image_ref
from ui.sidebar import ActiveData

PLOTLY_CONFIG = {"scrollZoom": True, "displaylogo": False,
                 "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}
_DET_COLUMNS = ["pred_index", "category_id", "score", "x1", "y1", "x2", "y2"]
# What a test set (no ground-truth boxes) can still show, linked from pages that cannot.
NO_GT_PAGES = [
    ("pages/1_Overview.py", "Overview: class mix against train.json, threshold suggestion, score distributions"),
    ("pages/2_Image_explorer.py", "Image explorer: the boxes of every image, sorted by count, score or disagreement"),
    ("pages/7_Compare.py", "Compare: agreement between two or more test submissions"),
    ("pages/8_Ensemble.py", "Ensemble: fit on validation, apply to the test submissions"),
]


def draw_image_panels(image: ImageRef, panels: list[Panel], *, key: str, show_labels: bool = True,
                      height: int = 620) -> None:
    """N side-by-side panels of one image (GT | predictions, or GT | A | B), zoom/pan shared."""
    if image.notice:
        st.info(image.notice, icon=":material/image_not_supported:")
    figure = panels_figure(panels, image.width, image.height, image_uri=image.uri,
                           missing_notice="image file not available" if image.uri is None else None,
                           figure_height=height, show_labels=show_labels)
    st.plotly_chart(figure, key=key, config=PLOTLY_CONFIG, width="stretch")


def outcome_legend(kinds=None) -> None:
    """A one-line colour key of the outcomes (values; default all and crowd GT), in display order."""
    chips = " ".join(
        f"<span style='background:{color};color:{text_color_on(color)};padding:1px 6px;"
        f"border-radius:4px;font-size:0.8em;margin-right:2px'>{label}</span>"
        for label, color in legend_entries(kinds))
    st.markdown(chips, unsafe_allow_html=True)


def image_ref_for(data: ActiveData, key: str, image_index: int) -> ImageRef:
    """The drawable image for a row of the explorer's list (size from the GT when it has it)."""
    size = None
    if image_index >= 0 and data.dataset is not None:
        row = data.dataset.images.iloc[image_index]
        size = (float(row["width"]), float(row["height"]))
    fallback = (1024.0, 1024.0)
    if size is None and data.predictions is not None:  # no size known: cover every box
        dets = prediction_rows(data, key, image_index)
        if len(dets):
            fallback = (max(1024.0, float(dets["x2"].max())), max(1024.0, float(dets["y2"].max())))
    return image_ref(data.root, key, size, fallback)


def prediction_rows(data: ActiveData, key: str, image_index: int) -> pd.DataFrame:
    """The image's predictions at the score threshold; with outcome and iou when evaluated."""
    if data.evaluation is not None and image_index >= 0:
        # A slice of ev.dets (sorted by image, then -score), not of view.dets: no 490k-row copy
        # per threshold. Greedy matching goes by score, so outcomes do not depend on it.
        dets = data.evaluation.dets
        lo, hi = np.searchsorted(dets["image_index"].to_numpy(), [image_index, image_index + 1])
        rows = dets.iloc[lo:hi]
        return rows[rows["score"].to_numpy() >= data.score_thr]
    preds = data.predictions
    if preds is None:
        return pd.DataFrame(columns=_DET_COLUMNS)
    positions = np.flatnonzero(preds.image_keys == key)
    if not len(positions):
        return pd.DataFrame(columns=_DET_COLUMNS)
    rows = np.flatnonzero((preds.image_pos == positions[0]) & (preds.scores >= data.score_thr))
    rows = rows[np.argsort(-preds.scores[rows], kind="stable")]
    boxes = preds.boxes_xyxy[rows].reshape(-1, 4)
    return pd.DataFrame({"pred_index": rows, "category_id": preds.labels[rows],
                         "score": preds.scores[rows], "x1": boxes[:, 0], "y1": boxes[:, 1],
                         "x2": boxes[:, 2], "y2": boxes[:, 3]})


def gt_rows(data: ActiveData, image_index: int, dets: pd.DataFrame) -> pd.DataFrame:
    """The image's GT boxes with status (tp/missed/crowd/gt) and a hover line on its best match."""
    columns = ["ann_index", "category_id", "x1", "y1", "x2", "y2", "area", "status", "hover_extra",
               "best_iou"]
    if data.dataset is None or image_index < 0 or not len(data.dataset.annotations):
        return pd.DataFrame(columns=columns)
    ann = data.dataset.annotations
    idx = np.flatnonzero(ann["image_index"].to_numpy() == image_index)
    rows = ann.iloc[idx]
    crowd = rows["iscrowd"].to_numpy().astype(bool)
    if data.view is not None:
        # view.missed ([G] bool) avoids building view.gts, a table copy, on every threshold
        missed_all = data.view.missed if hasattr(data.view, "missed") else data.view.gts["missed"].to_numpy()
        missed = np.asarray(missed_all)[idx].astype(bool)
        status = np.where(crowd, "crowd", np.where(missed, "missed", "tp"))
    else:
        status = np.where(crowd, "crowd", "gt")
    gt_boxes = rows[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
    pred_boxes = dets[["x1", "y1", "x2", "y2"]].to_numpy(np.float64) if len(dets) else np.zeros((0, 4))
    iou = box_iou(gt_boxes, pred_boxes)  # [G, P]: small, one image
    best_iou = iou.max(axis=1) if iou.shape[1] else np.zeros(len(idx))
    best = iou.argmax(axis=1) if iou.shape[1] else np.zeros(len(idx), np.int64)
    extra = []
    for g in range(len(idx)):
        if iou.shape[1] and best_iou[g] > 0:
            d = dets.iloc[int(best[g])]
            extra.append(f"best IoU {best_iou[g]:.2f} with {data.class_name(d['category_id'])} "
                         f"{d['score']:.2f}")
        else:
            extra.append("no prediction overlaps it")
    return pd.DataFrame({
        "ann_index": idx, "category_id": rows["category_id"].to_numpy(),
        "x1": gt_boxes[:, 0], "y1": gt_boxes[:, 1], "x2": gt_boxes[:, 2], "y2": gt_boxes[:, 3],
        "area": rows["area"].to_numpy(np.float64), "status": status, "hover_extra": extra,
        "best_iou": best_iou,
    })


def image_panels(data: ActiveData, gts: pd.DataFrame, dets: pd.DataFrame, *, color_by: str,
                 show_labels: bool, prediction_title: str | None = None) -> list[Panel]:
    """The two standard panels: ground truth | predictions (GT panel omitted without GT)."""
    names, colors = data.class_names, data.class_colors
    for name in set(dets["category_id"].tolist()) - set(names) if len(dets) else ():
        names = {**names, int(name): f"unknown class {int(name)}"}
    panels = []
    if data.dataset is not None and len(data.dataset.annotations):
        panels.append(Panel("Ground truth", gt_layers(
            gts, color_by=color_by, class_names=names, class_colors=colors, with_labels=show_labels)))
    if data.predictions is not None:
        title = prediction_title or f"Predictions ({data.predictions_label}, score ≥ {data.score_thr:.2f})"
        panels.append(Panel(title, prediction_layers(
            dets, color_by=color_by, class_names=names, class_colors=colors, with_labels=show_labels)))
    return panels or [Panel("Image")]


def box_table(data: ActiveData, gts: pd.DataFrame, dets: pd.DataFrame) -> pd.DataFrame:
    """One row per box of the image (ground truth, then predictions), for st.dataframe."""
    parts = []
    if len(gts):
        parts.append(pd.DataFrame({
            "kind": "ground truth", "class": [data.class_name(c) for c in gts["category_id"]],
            "score": np.nan, "outcome": [OUTCOME_LABELS[s] for s in gts["status"]],
            "IoU": gts["best_iou"].to_numpy(np.float64),
            "x1": gts["x1"], "y1": gts["y1"], "x2": gts["x2"], "y2": gts["y2"]}))
    if len(dets):
        outcomes = ([OUTCOME_LABELS.get(str(o), str(o)) for o in dets["outcome"]]
                    if "outcome" in dets else ["(no ground truth)"] * len(dets))
        parts.append(pd.DataFrame({
            "kind": "prediction", "class": [data.class_name(c) for c in dets["category_id"]],
            "score": dets["score"].to_numpy(np.float64), "outcome": outcomes,
            "IoU": dets["iou"].to_numpy(np.float64) if "iou" in dets else np.nan,
            "x1": dets["x1"].to_numpy(), "y1": dets["y1"].to_numpy(),
            "x2": dets["x2"].to_numpy(), "y2": dets["y2"].to_numpy()}))
    if not parts:
        return pd.DataFrame(columns=["kind", "class", "score", "outcome", "IoU", "x1", "y1", "x2", "y2"])
    return pd.concat(parts, ignore_index=True).round({"score": 3, "IoU": 3, "x1": 1, "y1": 1,
                                                       "x2": 1, "y2": 1})


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
