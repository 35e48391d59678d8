"""TIDE dAP per class (the class x error-type table tidecv's tracker asks for), from one run.

Each class's dAP is the gain in that class's AP at the evaluation's IoU when every error of
one type is fixed (core.tide's fixes, on the whole set: a fixed classification error moves
its prediction to its ground truth's class, so it raises that class's AP). The mean of the
classes' base AP is the evaluation's mAP at its IoU; a negative gain is 0, as in core.tide.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.outcomes import ERROR_TYPES, Outcome
from core.tide import TideInput, tide_dap_by_group


def tide_input_of(ev) -> tuple[TideInput, np.ndarray, np.ndarray]:
    """TIDE's input as `evaluate` builds it: (TideInput, its prediction rows in ev.dets order,
    the accumulate position of every prediction)."""
    from core.evaluation import class_order_and_position

    det = ev._arrays[0]
    class_order, position = class_order_and_position(det, ev.dataset)
    data, rows = tide_input_from(ev, class_order, position)
    return data, rows, position


def tide_input_from(ev, class_order: np.ndarray, position: np.ndarray) -> tuple[TideInput, np.ndarray]:
    """tide_input_of with the orders already known: class_order (predictions by class, then in
    accumulate order) and position (each prediction's rank in accumulate order)."""
    from core.evaluation import _gt_arrays

    det, outcome, _ = ev._arrays
    gt = _gt_arrays(ev.dataset)
    rows = class_order[outcome.code[class_order] != Outcome.IGNORED.code]
    data = TideInput(det_class=det.cls[rows], det_order=position[rows], det_code=outcome.code[rows],
                     det_gt=outcome.gt[rows], gt_class=np.where(gt.crowd, -1, gt.cls),
                     gt_used=outcome.gt_det >= 0, n_classes=len(ev.dataset.categories))
    return data, rows


def tide_per_class(ev) -> pd.DataFrame:
    """category_id, name, n_gt, ap (base AP at the IoU, NaN without ground truth), then one dAP
    column per TIDE error type (ERROR_TYPES' values), one row per class."""
    data, _, _ = tide_input_of(ev)
    k = data.n_classes
    dap, base = tide_dap_by_group(data, np.arange(k), k)
    n_gt = np.bincount(data.gt_class[data.gt_class >= 0], minlength=k)
    table = pd.DataFrame({"category_id": ev.dataset.categories["id"].to_numpy(),
                          "name": ev.dataset.categories["name"].astype(str).to_numpy(),
                          "n_gt": n_gt, "ap": np.where(n_gt > 0, base, np.nan)})
    for j, error in enumerate(ERROR_TYPES):
        table[error.value] = np.where(n_gt > 0, dap[:, j], np.nan)
    return table
