"""The image explorer's list: one row per browsable image, filtered and sorted.

Images of the ground truth come first; images that only the predictions name (test images,
no ground truth) are appended so a test CSV still browses, with predictions only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.boxes import box_iou
from core.outcomes import OUTCOME_LABELS
from core.tables import Dataset, class_name

if TYPE_CHECKING:
    from core.thresholds import PredictionView

SORT_ORDERS = ["most errors", "lowest image AP", "file name"]
# Without ground-truth boxes (a test set): orders that mean something there. "most
# disagreement" needs a `disagreement` column (core.agreement per image, added by the caller).
NO_GT_SORT_ORDERS = ["most boxes", "fewest boxes", "highest top score", "lowest top score",
                     "most disagreement", "file name"]
TABLE_COLUMNS = ["key", "image_index", "image_id", "width", "height", "n_gt", "n_pred", "n_tp",
                 "n_fp", "n_missed", "n_errors", "ap50", "top_score"]
DET_COLUMNS = ["pred_index", "category_id", "score", "x1", "y1", "x2", "y2"]
GT_COLUMNS = ["ann_index", "category_id", "x1", "y1", "x2", "y2", "area", "status", "hover_extra",
              "best_iou"]
BOX_TABLE_COLUMNS = ["kind", "class", "score", "outcome", "IoU", "x1", "y1", "x2", "y2"]


def image_table(dataset: Dataset | None, view: "PredictionView | None",
                per_image: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows TABLE_COLUMNS of the dataset's images and the view's (None: no predictions); the
    error counts come from per_image (default: the view's evaluated per_image) when there is one.

    key is the image's file name; image_index is -1 for an image the ground truth lacks.
    Counts that cannot be known (no ground truth) are NaN.
    """
    # Built from whole columns in one DataFrame: the explorer makes one per score threshold,
    # and per-column pandas assignment cost more than the counting itself.
    parts = []
    if dataset is not None:
        n = len(dataset.images)
        columns = {
            "key": dataset.images["file_name"].astype(str).to_numpy(dtype=object),
            "image_index": np.arange(n, dtype=np.int64),
            "image_id": dataset.images["id"].to_numpy(),
            "width": dataset.images["width"].to_numpy(dtype=np.float64),
            "height": dataset.images["height"].to_numpy(dtype=np.float64),
            "n_gt": (np.bincount(dataset.annotations["image_index"].to_numpy(np.int64), minlength=n)
                     if len(dataset.annotations) else np.zeros(n)).astype(np.float64),
        }
        if per_image is None and view is not None and view.evaluated is not None:
            per_image = view.evaluated.per_image
        if per_image is not None and len(per_image):
            from core.thresholds import lookup  # thresholds imports this module

            rows = per_image["image_index"].to_numpy(np.int64)
            # per_image may list a subset or another order: each image's row, -1 (NaN) where absent
            position = None if len(rows) == n and (rows == columns["image_index"]).all() \
                else _position_of(rows, n)
            for column in ("n_pred", "n_tp", "n_fp", "n_missed", "ap50"):
                values = per_image[column].to_numpy(np.float64)
                columns[column] = values if position is None else lookup(values, position, np.nan)
        else:
            columns["n_pred"] = (view.boxes_per_image().astype(np.float64) if view is not None
                                 else np.full(n, np.nan))
            for column in ("n_tp", "n_fp", "n_missed", "ap50"):
                columns[column] = np.full(n, np.nan)
        parts.append(columns)
    if view is not None:
        parts.append(_prediction_only_images(dataset, view))
    parts = [p for p in parts if len(p["key"])] or parts[:1]
    if not parts:
        return pd.DataFrame({c: [] for c in TABLE_COLUMNS})
    table = {c: np.concatenate([p[c] for p in parts]) if len(parts) > 1 else parts[0][c]
             for c in TABLE_COLUMNS if c not in ("n_errors", "top_score")}
    table["n_errors"] = np.nan_to_num(table["n_fp"]) + np.nan_to_num(table["n_missed"])
    table["top_score"] = (view.top_scores(table["key"]) if view is not None
                          else np.full(len(table["key"]), np.nan))
    return pd.DataFrame(table)[TABLE_COLUMNS]


def _position_of(image_index: np.ndarray, n: int) -> np.ndarray:
    """[n] row of each dataset image in a table with these image_index values; -1 where absent."""
    position = np.full(n, -1, np.int64)
    position[image_index] = np.arange(len(image_index))
    return position


def _prediction_only_images(dataset: Dataset | None, view: "PredictionView") -> dict:
    """Columns for the images the predictions list but the ground truth lacks."""
    keys = np.asarray(view.predictions.image_keys, dtype=object)
    if dataset is not None:
        unknown = dataset.image_index_of_file(keys) < 0
    else:
        unknown = np.ones(len(keys), dtype=bool)
    rows = np.flatnonzero(unknown)
    nan = np.full(len(rows), np.nan)
    return {
        "key": keys[rows].astype(str).astype(object), "image_index": np.full(len(rows), -1, np.int64),
        "image_id": np.full(len(rows), None, dtype=object), "width": nan, "height": nan, "n_gt": nan,
        "n_pred": view.boxes_per_key[rows].astype(np.float64), "n_tp": nan, "n_fp": nan,
        "n_missed": nan, "ap50": nan,
    }


def image_boxes(view: "PredictionView", key: str, image_index: int) -> pd.DataFrame:
    """The kept boxes of one image, by descending score: DET_COLUMNS, plus ev.dets' columns
    (outcome, iou, ...) when the view is evaluated and the image is a dataset one."""
    if view.evaluated is not None and image_index >= 0:
        # A slice of ev.dets (sorted by image, then -score), not of view.dets: no 490k-row copy
        # per threshold. Greedy matching goes by score, so outcomes do not depend on it.
        dets = view.evaluated.evaluation.dets
        lo, hi = np.searchsorted(dets["image_index"].to_numpy(), [image_index, image_index + 1])
        return dets.iloc[lo:hi][view.evaluated.keep[lo:hi]]
    preds = view.predictions
    positions = np.flatnonzero(preds.image_keys == key)
    if not len(positions):
        return pd.DataFrame(columns=DET_COLUMNS)
    rows = np.flatnonzero((preds.image_pos == positions[0]) & view.keep)
    rows = rows[np.argsort(-preds.scores[rows], kind="stable")]
    boxes = preds.boxes_xyxy[rows].reshape(-1, 4)
    return pd.DataFrame({"pred_index": rows, "category_id": preds.labels[rows],
                         "score": preds.scores[rows], "x1": boxes[:, 0], "y1": boxes[:, 1],
                         "x2": boxes[:, 2], "y2": boxes[:, 3]})


def gt_rows(dataset: Dataset | None, image_index: int, dets: pd.DataFrame,
            missed: np.ndarray | None = None, class_names: dict[int, str] | None = None) -> pd.DataFrame:
    """The image's GT boxes (GT_COLUMNS) with status and a hover line on the best-overlapping
    box of dets. missed: [G] bool per annotation (a ThresholdView's) gives status tp/missed/crowd;
    without it (no evaluation) status is gt/crowd."""
    if dataset is None or image_index < 0 or not len(dataset.annotations):
        return pd.DataFrame(columns=GT_COLUMNS)
    ann = dataset.annotations
    idx = np.flatnonzero(ann["image_index"].to_numpy() == image_index)
    rows = ann.iloc[idx]
    crowd = rows["iscrowd"].to_numpy().astype(bool)
    if missed is not None:
        status = np.where(crowd, "crowd", np.where(np.asarray(missed)[idx].astype(bool), "missed", "tp"))
    else:
        status = np.where(crowd, "crowd", "gt")
    gt_boxes = rows[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
    pred_boxes = dets[["x1", "y1", "x2", "y2"]].to_numpy(np.float64) if len(dets) else np.zeros((0, 4))
    iou = box_iou(gt_boxes, pred_boxes)  # [G, P]: small, one image
    best_iou = iou.max(axis=1) if iou.shape[1] else np.zeros(len(idx))
    best = iou.argmax(axis=1) if iou.shape[1] else np.zeros(len(idx), np.int64)
    names = class_names or {}
    extra = []
    for g in range(len(idx)):
        if iou.shape[1] and best_iou[g] > 0:
            d = dets.iloc[int(best[g])]
            extra.append(f"best IoU {best_iou[g]:.2f} with {class_name(names, d['category_id'])} "
                         f"{d['score']:.2f}")
        else:
            extra.append("no prediction overlaps it")
    return pd.DataFrame({
        "ann_index": idx, "category_id": rows["category_id"].to_numpy(),
        "x1": gt_boxes[:, 0], "y1": gt_boxes[:, 1], "x2": gt_boxes[:, 2], "y2": gt_boxes[:, 3],
        "area": rows["area"].to_numpy(np.float64), "status": status, "hover_extra": extra,
        "best_iou": best_iou,
    })


def box_table(gts: pd.DataFrame, dets: pd.DataFrame, class_names: dict[int, str]) -> pd.DataFrame:
    """One row per box of an image (gt_rows, then image_boxes rows): BOX_TABLE_COLUMNS; outcome
    is "(no ground truth)" for predictions that were not evaluated."""
    parts = []
    if len(gts):
        parts.append(pd.DataFrame({
            "kind": "ground truth", "class": [class_name(class_names, c) for c in gts["category_id"]],
            "score": np.nan, "outcome": [OUTCOME_LABELS[s] for s in gts["status"]],
            "IoU": gts["best_iou"].to_numpy(np.float64),
            "x1": gts["x1"], "y1": gts["y1"], "x2": gts["x2"], "y2": gts["y2"]}))
    if len(dets):
        outcomes = ([OUTCOME_LABELS.get(str(o), str(o)) for o in dets["outcome"]]
                    if "outcome" in dets else ["(no ground truth)"] * len(dets))
        parts.append(pd.DataFrame({
            "kind": "prediction", "class": [class_name(class_names, c) for c in dets["category_id"]],
            "score": dets["score"].to_numpy(np.float64), "outcome": outcomes,
            "IoU": dets["iou"].to_numpy(np.float64) if "iou" in dets else np.nan,
            "x1": dets["x1"].to_numpy(), "y1": dets["y1"].to_numpy(),
            "x2": dets["x2"].to_numpy(), "y2": dets["y2"].to_numpy()}))
    if not parts:
        return pd.DataFrame(columns=BOX_TABLE_COLUMNS)
    return pd.concat(parts, ignore_index=True).round({"score": 3, "IoU": 3, "x1": 1, "y1": 1,
                                                       "x2": 1, "y2": 1})


def only_shown(dets: pd.DataFrame, gts: pd.DataFrame, class_ids, outcomes
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(dets, gts) of one image restricted to class_ids and outcomes (None = all); a GT box's
    outcome is its status; predictions without an outcome column pass the outcome filter."""
    if class_ids is not None:
        dets = dets[dets["category_id"].isin(class_ids)]
        gts = gts[gts["category_id"].isin(class_ids)]
    if outcomes is not None:
        dets = dets[dets["outcome"].astype(str).isin(outcomes)] if "outcome" in dets else dets
        gts = gts[gts["status"].isin(outcomes)]
    return dets, gts


def images_with(dets: pd.DataFrame | None, gts: pd.DataFrame | None, category_ids, outcomes
                ) -> np.ndarray:
    """Image indices holding a prediction or GT box of one of category_ids (None = any) whose
    outcome is in outcomes (None = any; GT boxes count as "missed" when gts has `missed`)."""
    found = []
    if dets is not None and len(dets):
        mask = np.ones(len(dets), dtype=bool)
        if category_ids is not None:
            mask &= dets["category_id"].isin(category_ids).to_numpy()
        if outcomes is not None and "outcome" in dets:
            mask &= dets["outcome"].astype(str).isin(outcomes).to_numpy()
        found.append(dets["image_index"].to_numpy()[mask])
    if gts is not None and len(gts):
        mask = np.ones(len(gts), dtype=bool)
        if category_ids is not None:
            mask &= gts["category_id"].isin(category_ids).to_numpy()
        if outcomes is not None:
            mask &= gts["missed"].to_numpy(bool) if ("missed" in outcomes and "missed" in gts) \
                else np.zeros(len(gts), dtype=bool)
        found.append(gts["image_index"].to_numpy()[mask])
    return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)


def sort_images(table: pd.DataFrame, order: str) -> pd.DataFrame:
    """The table in one of SORT_ORDERS; ties broken by file name."""
    if order == "most errors":
        return table.sort_values(["n_errors", "key"], ascending=[False, True], kind="stable")
    if order == "lowest image AP":
        return table.sort_values(["ap50", "key"], ascending=[True, True], na_position="last",
                                 kind="stable")
    if order == "file name":
        return table.sort_values("key", kind="stable")
    by = {"most boxes": ("n_pred", False), "fewest boxes": ("n_pred", True),
          "highest top score": ("top_score", False), "lowest top score": ("top_score", True),
          "most disagreement": ("disagreement", False)}
    if order in by and by[order][0] in table:
        column, ascending = by[order]
        return table.sort_values([column, "key"], ascending=[ascending, True], na_position="last",
                                 kind="stable")
    if order in by:
        raise ValueError(f"Sort order {order!r} needs a {by[order][0]!r} column (choose a second submission).")
    raise ValueError(f"Invalid sort order {order!r}. Only {', '.join(SORT_ORDERS + NO_GT_SORT_ORDERS[:-1])} "
                     "are supported.")


def busiest_image(dataset: Dataset, view: "PredictionView | None") -> tuple[int, str]:
    """(image index, what it is) of the image to show first: the most ground-truth boxes, or
    without any (a test set) the most predicted boxes kept by the view, else the first image."""
    if len(dataset.annotations):
        counts = np.bincount(dataset.annotations["image_index"].to_numpy(np.int64), minlength=len(dataset.images))
        return int(np.argmax(counts)), "the image with the most ground-truth boxes"
    if view is not None and len(dataset.images):
        counts = view.boxes_per_image()
        if counts.max(initial=0) > 0:
            return int(np.argmax(counts)), f"the image with the most predicted boxes at score ≥ {view.score_thr:.2f} (no ground truth)"
    return 0, "the first image (no ground-truth boxes)"


def find_image(table: pd.DataFrame, query: str) -> int | None:
    """Row position in table of an image given by file name (exact, then suffix), image id, or
    file name without folder and extension ("0017" finds train/0017.jpg)."""
    query = query.strip()
    if not query:
        return None
    keys = table["key"].astype(str)
    for mask in (keys == query, keys.str.endswith("/" + query)):
        hits = np.flatnonzero(mask.to_numpy())
        if len(hits):
            return int(hits[0])
    ids = table["image_id"].astype(str).to_numpy()
    hits = np.flatnonzero(ids == query)
    if len(hits):
        return int(hits[0])
    stems = keys.str.rsplit("/", n=1).str[-1].str.rsplit(".", n=1).str[0]
    hits = np.flatnonzero((stems == query).to_numpy())
    return int(hits[0]) if len(hits) else None


@dataclass(frozen=True)
class ClassBoxes:
    """One class's boxes of an evaluation, ordered once so that a threshold only cuts them.

    det_rows [n]: its rows of ev.dets by descending score (stable), with det_score and
    det_code (outcome codes); gt_rows [g]: its regular (not crowd) rows of ev.gts by
    descending area (stable), with gt_area.
    """

    det_rows: np.ndarray
    det_score: np.ndarray
    det_code: np.ndarray
    gt_rows: np.ndarray
    gt_area: np.ndarray


def class_boxes(evaluation, category_id: int) -> ClassBoxes:
    """The ClassBoxes of category_id in an Evaluation (one pass over its tables; cache it)."""
    dets, gts = evaluation.dets, evaluation.gts
    rows = np.flatnonzero(dets["category_id"].to_numpy() == category_id)
    score = dets["score"].to_numpy(np.float64)[rows]
    order = np.argsort(-score, kind="stable")
    rows, score = rows[order], score[order]
    code = np.asarray(dets["outcome"].cat.codes.to_numpy(), np.int64)[rows]
    gt_rows = np.flatnonzero((gts["category_id"].to_numpy() == category_id)
                             & ~gts["iscrowd"].to_numpy().astype(bool))
    area = evaluation.dataset.annotations["area"].to_numpy(np.float64)[gts["ann_index"].to_numpy()[gt_rows]]
    order = np.argsort(-area, kind="stable")
    return ClassBoxes(rows, score, code, gt_rows[order], area[order])
