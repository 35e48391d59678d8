"""An evaluation's numbers as the catalog caches them: plain json, no arrays."""
from __future__ import annotations

import math

import numpy as np

RESULT_VERSION = 1  # bumped when the payload's shape changes; older payloads are recomputed


def _clean(value):
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and not math.isfinite(value) else value


def result_payload(ev) -> dict:
    """The 12 COCO stats, per-class AP, TIDE and outcome counts of `ev` (core.evaluation.Evaluation)."""
    view = ev.at(-np.inf)
    per_class = ev.per_class[["category_id", "name", "ap", "ap50", "ap75", "n_gt", "n_pred"]]
    return {
        "version": RESULT_VERSION,
        "iou_thr": float(ev.iou_thr),
        "stats": {name: _clean(value) for name, value in ev.stats.items()},
        "map50_at_iou": _clean(view.map50),
        "per_class": [{k: _clean(v) for k, v in row.items()} for row in per_class.to_dict("records")],
        "counts": {k: int(v) for k, v in view.counts.items()},
        "tide": {"ap_base": _clean(ev.tide_ap_base),
                 "dap": {row.error: _clean(row.dap) for row in ev.tide.itertuples()},
                 "count": {row.error: int(row.count) for row in ev.tide.itertuples()}},
        "n_images": int(len(ev.dataset.images)),
    }
