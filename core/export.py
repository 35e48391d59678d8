"""What the Export page writes: a submission filtered at a score threshold, the outcome table."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd

from core.tables import Dataset, Predictions, class_name
from core.thresholds import PredictionView

OUTCOME_TABLE_COLUMNS = ["image_id", "kind", "class_id", "class", "score", "outcome", "iou",
                         "x1", "y1", "x2", "y2"]


def filtered_submission_csv(predictions: Predictions, score_thr: float) -> tuple[str, int]:
    """(submission CSV text of the boxes with score >= score_thr, number of boxes kept).

    Every image of the predictions keeps its row (empty PredictionString when none is left).
    """
    from core.submission import write_submission

    kept = PredictionView(predictions, score_thr).kept
    buffer = io.StringIO()
    write_submission(kept, buffer)
    return buffer.getvalue(), len(kept)


def outcome_counts(dets: pd.DataFrame, gts: pd.DataFrame) -> pd.Series:
    """Rows of outcome_table(dataset, dets, gts) per outcome, most frequent first (without building it)."""
    counts = dets["outcome"].astype(str).value_counts()
    n_missed = int(gts["missed"].astype(bool).sum())
    if n_missed:
        counts = pd.concat([counts, pd.Series({"missed": n_missed})])
    return counts.sort_values(ascending=False, kind="stable")


def outcome_table(dataset: Dataset, dets: pd.DataFrame, gts: pd.DataFrame,
                  limit: int | None = None) -> pd.DataFrame:
    """One row per prediction (ThresholdView.dets) with its outcome, then one per missed GT box
    (ThresholdView.gts rows with `missed`); columns OUTCOME_TABLE_COLUMNS, boxes xyxy pixels.

    limit: only the first `limit` rows (a preview: at 490,000 boxes the whole table is built
    only for the download)."""
    missed_rows = gts.loc[gts["missed"].astype(bool), "ann_index"].to_numpy()
    if limit is not None:
        dets = dets.iloc[:limit]
        missed_rows = missed_rows[:max(0, limit - len(dets))]
    names = dataset.category_names
    file_names = dataset.images["file_name"].to_numpy()
    category_ids = dets["category_id"].to_numpy()
    predicted = pd.DataFrame({
        "image_id": file_names[dets["image_index"].to_numpy()], "kind": "prediction",
        "class_id": category_ids, "class": [class_name(names, c) for c in category_ids],
        "score": dets["score"].to_numpy(np.float64), "outcome": dets["outcome"].astype(str).to_numpy(),
        "iou": dets["iou"].to_numpy(np.float64),
        "x1": dets["x1"].to_numpy(), "y1": dets["y1"].to_numpy(),
        "x2": dets["x2"].to_numpy(), "y2": dets["y2"].to_numpy()})
    ann = dataset.annotations.iloc[missed_rows]
    missed_ids = ann["category_id"].to_numpy()
    missed = pd.DataFrame({
        "image_id": file_names[ann["image_index"].to_numpy()], "kind": "ground truth",
        "class_id": missed_ids, "class": [class_name(names, c) for c in missed_ids],
        "score": np.nan, "outcome": "missed", "iou": np.nan,
        "x1": ann["x1"].to_numpy(), "y1": ann["y1"].to_numpy(),
        "x2": ann["x2"].to_numpy(), "y2": ann["y2"].to_numpy()})
    return pd.concat([predicted, missed], ignore_index=True)[OUTCOME_TABLE_COLUMNS]
