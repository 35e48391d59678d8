"""The boxes behind an aggregate: which images a confusion-matrix cell or an outcome counts,
at a threshold view, so that a click on a chart can open them in the explorer."""
from __future__ import annotations

import numpy as np

from core.outcomes import Outcome


def confusion_cell_images(view, gt_class: int | None, pred_class: int | None) -> np.ndarray:
    """Sorted image indices behind cell [gt_class, pred_class] of view.confusion (class
    positions 0..K-1; None = the background row / column), as the matrix counts them."""
    r = view._r
    if gt_class is None and pred_class is None:
        return np.zeros(0, np.int64)
    if gt_class is None:                                                  # background row
        stray = view.keep & r.cm_det_counted & ~r.cm_det_matched & (r.det_cls == pred_class)
        return np.unique(r.det_image[stray])
    found = view.cm_found
    if pred_class is None:                                                # background column
        rows = (r.cm_gt_cls == gt_class) & ~found
    else:
        rows = found & (r.cm_gt_cls == gt_class) & (r.cm_gt_pred_cls == pred_class)
    return np.unique(r.gt_image[rows])


def outcome_images(view, outcome: str) -> np.ndarray:
    """Sorted image indices with a box of this outcome (an Outcome value) at the view."""
    r = view._r
    if outcome == Outcome.MISSED.value:
        return np.unique(r.gt_image[view.missed])
    code = Outcome(outcome).code
    return np.unique(r.det_image[view.keep & (r.det_code == code)])


def top_confusion(confusion, n: int):
    """The (n+1)x(n+1) part of a confusion table (core.thresholds' layout, "background" last)
    for the n classes with the most errors (off-diagonal counts, background included, as true
    or as predicted class); the table itself when it has n classes or fewer."""
    k = len(confusion) - 1
    if k <= n:
        return confusion
    counts = confusion.to_numpy()
    off = counts.copy()
    np.fill_diagonal(off, 0)
    errors = off[:k].sum(axis=1) + off[:, :k].sum(axis=0)                  # [K]
    keep = np.sort(np.argsort(-errors, kind="stable")[:n])
    rows = np.r_[keep, k]
    return confusion.iloc[rows, rows]
