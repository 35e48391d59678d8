"""TIDE's dAP per error type: fix every error of one type, re-compute mAP, take the gain.

Follows dbolya/tide `TIDERun.fix_errors` / `fix_main_errors` / `fix_special_errors`: fixing
classification and localization errors turns each into a true positive when it is the
best-scoring error on a ground truth nobody matched (TIDE's `BestGTMatch`) and removes it
otherwise; both, duplicate and background errors are removed; a fixed miss removes its
ground truth. The mAP that is re-computed is COCO's AP at the IoU threshold over the classes
with ground truth, i.e. the mAP@0.5 DetLens shows, as hotcoco's `tide_errors` does (equal to
it in tests). tidecv's own AP differs in two details: it also averages classes that have
predictions but no ground truth (as AP 0) and samples recall at i/100 without COCO's epsilon.
Results are fractions (tidecv prints them x100). Nothing is re-matched: every fix edits the
one score-ordered list of predictions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.outcomes import ERROR_TYPES, Outcome
from core.metrics import interpolated_ap


@dataclass(frozen=True)
class TideInput:
    """The evaluated (not ignored) predictions and the regular ground truth, as TIDE sees them.

    det_class [E]: class position 0..K-1; det_order [E]: global rank in descending score
    order (unique); det_code [E]: Outcome.code; det_gt [E]: ground truth that decided the
    outcome (-1 if none). gt_class [G] (-1 for crowd boxes, which TIDE ignores), gt_used [G].
    """

    det_class: np.ndarray
    det_order: np.ndarray
    det_code: np.ndarray
    det_gt: np.ndarray
    gt_class: np.ndarray
    gt_used: np.ndarray
    n_classes: int


@dataclass(frozen=True)
class TideResult:
    table: pd.DataFrame     # error, count, dap  (ERROR_TYPES order)
    ap_base: float          # TIDE's mAP at the IoU threshold
    special: dict           # {"false_positives": dAP, "false_negatives": dAP}
    missed_gt: np.ndarray   # [G] bool: TIDE's MissedError (unmatched and no error to fix it)


def tide_errors(data: TideInput) -> TideResult:
    """Counts and dAP of TIDE's six main error types plus its two special ones."""
    run = _tide_run(data, _whole_map, special=True)
    table = pd.DataFrame({
        "error": [e.value for e in ERROR_TYPES],
        "count": [run.counts[e] for e in ERROR_TYPES],
        "dap": [run.fixed[e] for e in ERROR_TYPES],
    })
    return TideResult(table=table, ap_base=run.base, special=run.special, missed_gt=run.missed_gt)


def tide_dap_by_group(data: TideInput, class_group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """TIDE per group of classes: (dAP [n_groups, len(ERROR_TYPES)], base mAP [n_groups]).

    class_group [K]: the group of each class position. Each group's mAP is the mean over its
    own classes, exactly as `tide_errors` takes it over all of them (a group of every class
    gives tide_errors' numbers); each fix is the whole set's, so a classification fix may
    move a prediction into another group's class. A negative gain is 0, as in tide_errors.
    """
    class_group = np.asarray(class_group, np.int64)

    def by_group(ap, n_kept, classes, n_gt):
        return _group_map(ap, n_kept, classes, n_gt, class_group, n_groups)

    run = _tide_run(data, by_group, special=False)
    return np.stack([run.fixed[e] for e in ERROR_TYPES], axis=1), run.base


@dataclass(frozen=True)
class _Run:
    base: object
    fixed: dict
    special: dict
    counts: dict
    missed_gt: np.ndarray


def _tide_run(data: TideInput, reduce, special: bool) -> _Run:
    """The fixes of tide_errors; reduce(ap [K], n_kept [K], classes [K], n_gt [K]) -> mAP(s).

    AP depends only on where the true positives sit in each class's score-ordered list, so
    every fix is computed on the true positives' positions: a removed error shifts each TP
    by the removed rows ahead of it (binary searches in the removed rows), with no copy of
    the list per fix (the list has millions of rows at 10x scale).
    """
    k = data.n_classes
    data = _by_class_then_order(data)
    det_class, det_order, det_code, det_gt = data.det_class, data.det_order, data.det_code, data.det_gt
    class_start = np.searchsorted(det_class, np.arange(k + 1).astype(det_class.dtype))  # [K+1] rows by class
    n_class = np.diff(class_start)                                       # [K]
    regular = data.gt_class >= 0
    n_gt = np.bincount(data.gt_class[regular], minlength=k).astype(np.float64)
    tp_rows = _rows_with(det_code, Outcome.TP)                           # [P] sorted

    fix_rows, candidates = _best_fixable_errors(data)                    # sorted rows
    # a ground truth that some classification/localization error could take is not "missed"
    usable = np.zeros(len(data.gt_class), bool)
    usable[det_gt[candidates]] = True
    missed_gt = regular & ~data.gt_used & ~usable
    n_unmatched = np.bincount(data.gt_class[regular & ~data.gt_used], minlength=k)

    classes = n_gt > 0  # the classes COCO's mAP averages, before any fix

    def tide_map(tp_class, tp_pos, n_kept, gt_count):
        return reduce(interpolated_ap(tp_class, tp_pos, gt_count), n_kept, classes, gt_count)

    def map_without(gone: np.ndarray, tps: np.ndarray = tp_rows, gt_count: np.ndarray = n_gt):
        """mAP with the rows `gone` (sorted) deleted; tps: the TP rows (sorted, none gone)."""
        tp_class = det_class[tps].astype(np.int64)
        gone_at_start = np.searchsorted(gone, class_start)               # [K+1]
        tp_pos = tps - class_start[tp_class] - (np.searchsorted(gone, tps) - gone_at_start[tp_class])
        return tide_map(tp_class, tp_pos, n_class - np.diff(gone_at_start), gt_count)

    nothing = np.zeros(0, np.int64)
    base = map_without(nothing)
    fixed = {}
    counts = {}
    for error in ERROR_TYPES:
        if error is Outcome.MISSED:
            ap = map_without(nothing, gt_count=n_gt - np.bincount(data.gt_class[missed_gt], minlength=k))
            fixed[error] = _gain(ap, base)
            continue
        this = _rows_with(det_code, error)                               # sorted
        counts[error] = len(this)
        fixable = fix_rows[det_code[fix_rows] == error.code]
        if error is Outcome.CLASSIFICATION:
            ap = tide_map(*_moved_to_their_class(data, class_start, tp_rows, this, fixable), gt_count=n_gt)
        elif error is Outcome.LOCALIZATION:
            # the fixable ones become TPs where they stand, the others are removed
            stays = np.ones(len(this), bool)
            stays[np.searchsorted(this, fixable)] = False                # fixable is a subset of this
            ap = map_without(this[stays], np.sort(np.r_[tp_rows, fixable]))
        else:
            ap = map_without(this)
        fixed[error] = _gain(ap, base)

    specials = {}
    if special:
        # FalsePositiveError: every TP scored above every FP; FalseNegativeError: no unmatched GT
        tp_class = det_class[tp_rows].astype(np.int64)
        tp_first = np.arange(len(tp_rows)) - np.searchsorted(tp_class, tp_class)   # TP ordinal in class
        specials = {
            "false_positives": tide_map(tp_class, tp_first, n_class, n_gt) - base,
            "false_negatives": map_without(nothing, gt_count=n_gt - n_unmatched) - base,
        }
    counts[Outcome.MISSED] = int(missed_gt.sum())
    return _Run(base=base, fixed=fixed, special=specials, counts=counts, missed_gt=missed_gt)


def _gain(ap, base):
    gain = np.maximum(ap - base, 0.0)  # tidecv: a negative gain is binning noise
    return float(gain) if np.ndim(gain) == 0 else gain


def _by_class_then_order(data: TideInput) -> TideInput:
    """The rows sorted by (class, score order): as core.evaluation passes them (no copy), else sorted."""
    c, o = data.det_class, data.det_order
    if np.all((c[1:] > c[:-1]) | ((c[1:] == c[:-1]) & (o[1:] > o[:-1]))):
        return data
    order = np.lexsort((o, c))
    return TideInput(c[order], o[order], data.det_code[order], data.det_gt[order], data.gt_class,
                     data.gt_used, data.n_classes)


def _rows_with(det_code: np.ndarray, outcome: Outcome) -> np.ndarray:
    return np.flatnonzero(det_code == outcome.code)


def _moved_to_their_class(data: TideInput, class_start: np.ndarray, tp_rows: np.ndarray, this: np.ndarray,
                          moved: np.ndarray) -> tuple:
    """(tp_class, tp_pos, n_kept) after the classification fix: its errors `this` (sorted rows)
    leave their class; the fixable ones among them (`moved`) join their ground truth's class at
    the same score as TPs. Positions count the rows left in a class plus the moved rows ahead."""
    det_class, det_order = data.det_class, data.det_order
    k = len(class_start) - 1
    big = int(det_order.max()) + 1 if len(det_order) else 1
    target = data.gt_class[data.det_gt[moved]]                            # [M] their new class
    moved_keys = np.sort(target * big + det_order[moved])                # [M] (class, order)

    def stay_before(cls: np.ndarray, bound: np.ndarray) -> np.ndarray:
        """Rows of class cls ahead of row `bound` that stay (not classification errors)."""
        return bound - class_start[cls] - (np.searchsorted(this, bound) - np.searchsorted(this, class_start[cls]))

    def moved_before(cls: np.ndarray, order: np.ndarray) -> np.ndarray:
        return np.searchsorted(moved_keys, cls * big + order) - np.searchsorted(moved_keys, cls * big)

    # a TP keeps its row; a moved error's place in its new class: its rows with a lower order
    tp_class = det_class[tp_rows].astype(np.int64)                         # det_class may be int16
    tp_pos = stay_before(tp_class, tp_rows) + moved_before(tp_class, det_order[tp_rows])
    order = det_order[moved]
    bound = np.empty(len(moved), np.int64)
    for c in np.flatnonzero(np.bincount(target, minlength=k)):
        where = target == c
        bound[where] = class_start[c] + np.searchsorted(det_order[class_start[c]:class_start[c + 1]], order[where])
    moved_pos = stay_before(target, bound) + moved_before(target, order)
    all_class, all_pos = np.r_[tp_class, target], np.r_[tp_pos, moved_pos]
    by = np.lexsort((all_pos, all_class))
    n_kept = np.diff(class_start) - np.diff(np.searchsorted(this, class_start)) + np.bincount(target, minlength=k)
    return all_class[by], all_pos[by], n_kept


def _best_fixable_errors(data: TideInput) -> tuple[np.ndarray, np.ndarray]:
    """(rows TIDE would turn into a TP, candidate rows), both sorted.

    Candidates: classification/localization errors whose ground truth nobody matched. Per such
    ground truth, the highest-scoring candidate pointing at it (the first one on a tie), as
    BestGTMatch picks.
    """
    candidate = _fix_candidates(data)
    if not len(candidate):
        return candidate, candidate
    order = np.lexsort((data.det_order[candidate], data.det_gt[candidate]))
    cand = candidate[order]
    first = np.r_[True, data.det_gt[cand][1:] != data.det_gt[cand][:-1]]
    return np.sort(cand[first]), candidate


def _fix_candidates(data: TideInput) -> np.ndarray:
    """Rows (sorted) of classification/localization errors whose ground truth nobody matched."""
    candidate = np.sort(np.r_[_rows_with(data.det_code, Outcome.LOCALIZATION),
                              _rows_with(data.det_code, Outcome.CLASSIFICATION)])
    candidate = candidate[data.det_gt[candidate] >= 0]
    return candidate[~data.gt_used[data.det_gt[candidate]]]


def _whole_map(ap: np.ndarray, n_kept: np.ndarray, classes: np.ndarray, n_gt: np.ndarray) -> float:
    """mAP over `classes` ([K] bool) as tidecv takes it after a fix."""
    # a class whose ground truth a fix removed: AP 0 while it still has predictions, left
    # out when it has none (tidecv's `is_empty`)
    classes = classes & ((n_gt > 0) | (n_kept > 0))
    ap = np.where(n_gt > 0, ap, 0.0)
    if classes.any():
        return float(ap[classes].mean())
    # no class left: perfect if nothing was predicted either (hotcoco's published answer for
    # a fixed miss without predictions, where tidecv divides by zero), else 0 (as tidecv)
    return 0.0 if n_kept.sum() else 1.0


def _group_map(ap, n_kept, classes, n_gt, class_group, n_groups) -> np.ndarray:
    """_whole_map within each group of classes: [n_groups]."""
    classes = classes & ((n_gt > 0) | (n_kept > 0))
    ap = np.where(n_gt > 0, ap, 0.0)
    total = np.bincount(class_group[classes], weights=ap[classes], minlength=n_groups)
    count = np.bincount(class_group[classes], minlength=n_groups)
    kept = np.bincount(class_group, weights=n_kept, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / count, np.where(kept > 0, 0.0, 1.0))
