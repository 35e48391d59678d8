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
    """The fixes of tide_errors; reduce(ap [K], n_kept [K], classes [K], n_gt [K]) -> mAP(s)."""
    k = data.n_classes
    big = int(data.det_order.max()) + 1 if len(data.det_order) else 1
    # one list sorted by (class, score order); every fix below masks or merges into it
    key = data.det_class * big + data.det_order
    by_key = np.arange(len(key)) if np.all(key[1:] > key[:-1]) else np.argsort(key, kind="stable")
    det_class, det_order = data.det_class[by_key], data.det_order[by_key]
    det_code, det_gt = data.det_code[by_key], data.det_gt[by_key]
    key = det_class * big + det_order                                    # [E] sorted
    regular = data.gt_class >= 0
    n_gt = np.bincount(data.gt_class[regular], minlength=k).astype(np.float64)
    is_tp = det_code == Outcome.TP.code
    sorted_data = TideInput(det_class, det_order, det_code, det_gt, data.gt_class, data.gt_used, k)

    fixable = _best_fixable_errors(sorted_data)                          # [E] bool
    # a ground truth that some classification/localization error could take is not "missed"
    usable = np.zeros(len(data.gt_class), bool)
    usable[det_gt[_fix_candidates(sorted_data)]] = True
    missed_gt = regular & ~data.gt_used & ~usable
    n_unmatched = np.bincount(data.gt_class[regular & ~data.gt_used], minlength=k)

    classes = n_gt > 0  # the classes COCO's mAP averages, before any fix

    def tide_map(kept_keys, tp_keys, gt_count, step):
        ap, n_kept = _tide_class_ap(kept_keys, tp_keys, gt_count, k, step)
        return reduce(ap, n_kept, classes, gt_count)

    def mean_ap(keep: np.ndarray, tp: np.ndarray, gt_count: np.ndarray = n_gt):
        return tide_map(key[keep], key[keep & tp], gt_count, big)

    everything = np.ones(len(key), bool)
    base = mean_ap(everything, is_tp)
    fixed = {}
    for error in ERROR_TYPES:
        this = det_code == error.code
        if error is Outcome.MISSED:
            ap = mean_ap(everything, is_tp, n_gt - np.bincount(data.gt_class[missed_gt], minlength=k))
        elif error is Outcome.CLASSIFICATION:
            # the fixed ones move to their ground truth's class, at the same score
            moved = this & fixable
            target = data.gt_class[det_gt[moved]] * big + det_order[moved]
            stay = key[~this]
            kept = np.insert(stay, np.searchsorted(stay, np.sort(target)), np.sort(target))
            tps = np.sort(np.r_[key[is_tp], target])
            ap = tide_map(kept, tps, n_gt, big)
        elif error is Outcome.LOCALIZATION:
            ap = mean_ap(~this | fixable, is_tp | (this & fixable))
        else:
            ap = mean_ap(~this, is_tp)
        fixed[error] = np.maximum(ap - base, 0.0)  # tidecv: a negative gain is binning noise
        if np.ndim(fixed[error]) == 0:
            fixed[error] = float(fixed[error])

    specials = {}
    if special:
        # FalsePositiveError: every TP scored above every FP; FalseNegativeError: no unmatched GT
        tp_first = det_class * (2 * big) + np.where(is_tp, 0, big) + det_order
        specials = {
            "false_positives": tide_map(np.sort(tp_first), np.sort(tp_first[is_tp]), n_gt, 2 * big) - base,
            "false_negatives": mean_ap(everything, is_tp, n_gt - n_unmatched) - base,
        }
    counts = {e: int(np.sum(det_code == e.code)) for e in ERROR_TYPES if e is not Outcome.MISSED}
    counts[Outcome.MISSED] = int(missed_gt.sum())
    return _Run(base=base, fixed=fixed, special=specials, counts=counts, missed_gt=missed_gt)


def _best_fixable_errors(data: TideInput) -> np.ndarray:
    """[E] True for the classification/localization error TIDE would turn into a TP.

    Per ground truth nobody matched, the highest-scoring of the classification and
    localization errors pointing at it (the first one on a tie), as BestGTMatch picks.
    """
    candidate = _fix_candidates(data)
    best = np.zeros(len(data.det_code), bool)
    if len(candidate):
        order = np.lexsort((data.det_order[candidate], data.det_gt[candidate]))
        cand = candidate[order]
        first = np.r_[True, data.det_gt[cand][1:] != data.det_gt[cand][:-1]]
        best[cand[first]] = True
    return best


def _fix_candidates(data: TideInput) -> np.ndarray:
    """Rows of classification/localization errors whose ground truth nobody matched."""
    is_loc_cls = np.isin(data.det_code, [Outcome.LOCALIZATION.code, Outcome.CLASSIFICATION.code])
    candidate = np.flatnonzero(is_loc_cls & (data.det_gt >= 0))
    return candidate[~data.gt_used[data.det_gt[candidate]]]


def _tide_class_ap(kept_keys: np.ndarray, tp_keys: np.ndarray, n_gt: np.ndarray, k: int,
                   big: int) -> tuple[np.ndarray, np.ndarray]:
    """([K] AP, [K] predictions kept) of a list given by sorted composite keys class*big + rank;
    tp_keys: the sorted keys of its true positives; n_gt [K]: ground truth left per class."""
    tp_class = tp_keys // big
    class_start = np.searchsorted(kept_keys, np.arange(k + 1) * big)
    tp_position = np.searchsorted(kept_keys, tp_keys) - class_start[tp_class]
    return interpolated_ap(tp_class, tp_position, n_gt), np.diff(class_start)


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
