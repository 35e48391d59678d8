"""The deeper-analysis part of `python -m core evaluate --json`: slices, calibration, TIDE per
class and best-F1 thresholds, as plain json-ready values (NaN -> None)."""
from __future__ import annotations

import math

import numpy as np

from core.outcomes import ERROR_TYPES


def _clean(value):
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value


def analysis_json(ev, preds, *, n_bins: int = 10, calibration_iou: float | None = None,
                  gt_doc: dict | None = None) -> dict:
    """{"slices": [...], "calibration": {...}, "tide_per_class": [...], "best_f1_thresholds": {...}}.

    calibration_iou: the IoU that makes a prediction correct (default: the evaluation's); another
    value evaluates the predictions again at it. gt_doc: the ground-truth json as a dict, whose
    custom image / annotation fields become slices too (core.slices.json_field_dimensions).
    """
    from core.calibration import best_thresholds, calibration
    from core.evaluation import evaluate
    from core.slices import automatic_dimensions, build_slices, json_field_dimensions
    from core.tide_per_class import tide_per_class

    dims = automatic_dimensions(ev) + (json_field_dimensions(ev, gt_doc) if gt_doc else [])
    slices = build_slices(ev, dims).table()
    cal_ev = ev if calibration_iou is None or calibration_iou == ev.iou_thr else \
        evaluate(ev.dataset, preds, iou_thr=calibration_iou)
    best = best_thresholds(ev)
    tide = tide_per_class(ev)
    return {
        "slices": [{
            "dimension": r["dimension"], "kind": r["kind"], "name": r["slice"], "n_gt": int(r["n_gt"]),
            "n_pred": int(r["n_pred"]), "n_images": int(r["n_images"]), "ap50": _clean(r["ap50"]),
            "ap": _clean(r["ap"]), "recall": _clean(r["recall"]), "delta_ap50": _clean(r["delta_ap50"]),
            "tiny": bool(r["tiny"]),
            "dap": {e.value: _clean(r[f"dap_{e.value}"]) for e in ERROR_TYPES},
        } for r in slices.to_dict("records")],
        "calibration": calibration(cal_ev, n_bins=n_bins).as_dict(),
        "tide_per_class": [{
            "id": int(r["category_id"]), "name": str(r["name"]), "n_gt": int(r["n_gt"]), "ap": _clean(r["ap"]),
            "dap": {e.value: _clean(r[e.value]) for e in ERROR_TYPES},
        } for r in tide.to_dict("records")],
        "best_f1_thresholds": {
            str(r["name"]): {"id": int(r["category_id"]), "threshold": _clean(r["best_f1_thr"]),
                             "f1": _clean(r["best_f1"]), "precision": _clean(r["precision"]),
                             "recall": _clean(r["recall"])}
            for r in best.to_dict("records") if r["category_id"] >= 0 and not np.isnan(r["best_f1_thr"])},
    }
