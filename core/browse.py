"""The image explorer's list: one row per browsable image, filtered and sorted.

Images of the ground truth come first; images that only the predictions name (test images,
no ground truth) are appended so a test CSV still browses, with predictions only.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.tables import Dataset, Predictions

SORT_ORDERS = ["most errors", "lowest image AP", "file name"]
# Without ground-truth boxes (a test set): orders that mean something there. "most
# disagreement" needs a `disagreement` column (core.agreement per image, added by the caller).
NO_GT_SORT_ORDERS = ["most boxes", "fewest boxes", "highest top score", "lowest top score",
                     "most disagreement", "file name"]
TABLE_COLUMNS = ["key", "image_index", "image_id", "width", "height", "n_gt", "n_pred", "n_tp",
                 "n_fp", "n_missed", "n_errors", "ap50", "top_score"]


def image_table(dataset: Dataset | None, predictions: Predictions | None, score_thr: float,
                per_image: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows TABLE_COLUMNS; per_image (a ThresholdView's) gives the error counts when evaluated.

    key is the image's file name; image_index is -1 for an image the ground truth lacks.
    Counts that cannot be known (no ground truth) are NaN.
    """
    parts = []
    if dataset is not None:
        table = pd.DataFrame({
            "key": dataset.images["file_name"].astype(str).to_numpy(),
            "image_index": np.arange(len(dataset.images), dtype=np.int64),
            "image_id": dataset.images["id"].to_numpy(),
            "width": dataset.images["width"].to_numpy(dtype=np.float64),
            "height": dataset.images["height"].to_numpy(dtype=np.float64),
        })
        has_gt_boxes = len(dataset.annotations) > 0
        n_gt = np.bincount(dataset.annotations["image_index"].to_numpy(np.int64),
                           minlength=len(table)) if has_gt_boxes else np.zeros(len(table))
        table["n_gt"] = n_gt.astype(np.float64)
        if per_image is not None and len(per_image):
            stats = per_image.set_index("image_index")
            for column in ("n_pred", "n_tp", "n_fp", "n_missed", "ap50"):
                table[column] = stats[column].reindex(table["image_index"]).to_numpy(np.float64)
        else:
            table["n_pred"] = _predictions_per_image(dataset, predictions, score_thr, len(table))
            for column in ("n_tp", "n_fp", "n_missed", "ap50"):
                table[column] = np.nan
        parts.append(table)
    if predictions is not None:
        parts.append(_prediction_only_images(dataset, predictions, score_thr))
    if not parts:
        return pd.DataFrame({c: [] for c in TABLE_COLUMNS})
    table = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    table["n_errors"] = table["n_fp"].fillna(0) + table["n_missed"].fillna(0)
    table["top_score"] = _top_scores(predictions, table["key"].to_numpy(dtype=object), score_thr)
    return table[TABLE_COLUMNS]


def _top_scores(predictions: Predictions | None, keys: np.ndarray, score_thr: float) -> np.ndarray:
    """[len(keys)] highest score >= score_thr on each image; NaN where it has none."""
    if predictions is None or not len(predictions):
        return np.full(len(keys), np.nan)
    keep = predictions.scores >= score_thr
    top = np.full(len(predictions.image_keys), -np.inf)
    np.maximum.at(top, predictions.image_pos[keep], predictions.scores[keep])
    position = pd.Index(np.asarray(predictions.image_keys, dtype=object)).get_indexer(pd.Index(keys, dtype=object))
    found = np.where(position >= 0, top[np.maximum(position, 0)], -np.inf)
    return np.where(np.isfinite(found), found, np.nan)


def _predictions_per_image(dataset: Dataset, predictions: Predictions | None, score_thr: float,
                           n_images: int) -> np.ndarray:
    if predictions is None:
        return np.full(n_images, np.nan)
    image_index = predictions.image_index_in(dataset)
    keep = (predictions.scores >= score_thr) & (image_index >= 0)
    return np.bincount(image_index[keep], minlength=n_images).astype(np.float64)


def _prediction_only_images(dataset: Dataset | None, predictions: Predictions,
                            score_thr: float) -> pd.DataFrame:
    """Rows for the images the predictions list but the ground truth lacks."""
    keys = np.asarray(predictions.image_keys, dtype=object)
    if dataset is not None:
        unknown = dataset.image_index_of_file(keys) < 0
    else:
        unknown = np.ones(len(keys), dtype=bool)
    keep = predictions.scores >= score_thr
    n_pred = np.bincount(predictions.image_pos[keep], minlength=len(keys)).astype(np.float64)
    rows = np.flatnonzero(unknown)
    nan = np.full(len(rows), np.nan)
    return pd.DataFrame({
        "key": keys[rows].astype(str), "image_index": np.full(len(rows), -1, np.int64),
        "image_id": [None] * len(rows), "width": nan, "height": nan, "n_gt": nan,
        "n_pred": n_pred[rows], "n_tp": nan, "n_fp": nan, "n_missed": nan, "ap50": nan,
    })


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


def busiest_image(dataset: Dataset, predictions: Predictions | None, score_thr: float) -> tuple[int, str]:
    """(image index, what it is) of the image to show first: the most ground-truth boxes, or
    without any (a test set) the most predicted boxes at score_thr, else the first image."""
    if len(dataset.annotations):
        counts = np.bincount(dataset.annotations["image_index"].to_numpy(np.int64), minlength=len(dataset.images))
        return int(np.argmax(counts)), "the image with the most ground-truth boxes"
    if predictions is not None and len(dataset.images):
        counts = _predictions_per_image(dataset, predictions, score_thr, len(dataset.images))
        if counts.max(initial=0) > 0:
            return int(np.argmax(counts)), f"the image with the most predicted boxes at score ≥ {score_thr:.2f} (no ground truth)"
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
