"""Average precision from matched predictions, and the twelve COCO stats.

COCO's 101-point interpolated AP depends only on where the true positives sit in the
score-ordered list: recall steps at each TP and the interpolated precision there is the best
precision of any later TP. So AP for many groups (classes, images) and for any score threshold
(a prefix of the list) comes from the TP rows alone, without re-matching.
"""
from __future__ import annotations

import numpy as np

# pycocotools' Params.recThrs, built the same way so that the floats are identical
COCO_RECALL_THRS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)

COCO_IOU_THRS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
COCO_AREA_RANGES = np.array([[0, 1e5 ** 2], [0, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]], dtype=np.float64)
STAT_NAMES = [
    "map", "map50", "map75", "map_small", "map_medium", "map_large",
    "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large",
]


def interpolated_ap(tp_group: np.ndarray, tp_position: np.ndarray, n_gt: np.ndarray,
                    recall_thrs: np.ndarray = COCO_RECALL_THRS, eps: float = np.spacing(1)) -> np.ndarray:
    """101-point interpolated AP per group from its true positives.

    tp_group [T]: group of each TP, sorted by (group, position); tp_position [T]: 0-based
    position of the TP among all counted predictions of its group in descending score order;
    n_gt [K]: ground-truth count per group. Returns [K] AP, NaN where n_gt is 0.
    eps: pycocotools adds np.spacing(1) to the precision's denominator, tidecv adds nothing.
    """
    n_groups = len(n_gt)
    ap = np.zeros(n_groups)
    if len(tp_group):
        starts = np.r_[True, tp_group[1:] != tp_group[:-1]]                 # [T]
        first_of_group = np.maximum.accumulate(np.where(starts, np.arange(len(tp_group)), 0))
        n_tp = (np.arange(len(tp_group)) - first_of_group + 1).astype(np.float64)  # TP ordinal
        n_fp = (tp_position + 1).astype(np.float64) - n_tp
        precision = n_tp / (n_fp + n_tp + eps)
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = n_tp / n_gt[tp_group]
        best_later = _segment_suffix_max(tp_group, precision)
        reached = np.searchsorted(recall_thrs, recall, side="right")      # thresholds <= recall
        reached_before = np.where(starts, 0, np.r_[0, reached[:-1]])
        weight = best_later * (reached - reached_before)
        ap = np.bincount(tp_group, weights=weight, minlength=n_groups) / len(recall_thrs)
    return np.where(n_gt > 0, ap, np.nan)


def _segment_suffix_max(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """[T] max of values[i:] within i's group (rows sorted by group); exact, no float offsets."""
    order = np.argsort(values, kind="stable")
    value_rank = np.empty(len(values), np.int64)
    value_rank[order] = np.arange(len(values))
    # later groups get smaller keys, so a running max from the end restarts at each group
    key = (group.max() - group) * len(values) + value_rank
    suffix = np.maximum.accumulate(key[::-1])[::-1]
    return values[order][suffix % len(values)]


def summarize(precision: np.ndarray, recall: np.ndarray) -> dict:
    """The 12 COCO stats from precision [T, R, K, A, M] and recall [T, K, A, M] (-1: absent).

    pycocotools' `COCOeval.summarize` (bbox): AP and AR over IoU .50:.95 unless a threshold
    is named; areas all/small/medium/large; maxDets 1/10/100. -1 when nothing to average.
    """
    def mean_of(s: np.ndarray) -> float:
        return float(np.mean(s[s > -1])) if (s > -1).any() else -1.0

    def ap(t=None, a=0, m=2):
        s = precision[:, :, :, a, m]
        return mean_of(s if t is None else s[t])

    def ar(a=0, m=2):
        return mean_of(recall[:, :, a, m])

    values = [ap(), ap(t=0), ap(t=5), ap(a=1), ap(a=2), ap(a=3),
              ar(m=0), ar(m=1), ar(), ar(a=1), ar(a=2), ar(a=3)]
    return dict(zip(STAT_NAMES, values))


def per_class_ap_from_precision(precision: np.ndarray, iou_index: int | None) -> np.ndarray:
    """[K] AP per class from COCO's precision array (area all, maxDets 100); NaN without GT.

    iou_index None averages over the ten IoU thresholds (COCO's AP).
    """
    p = precision[:, :, :, 0, -1]                                         # [T,R,K]
    if iou_index is not None:
        p = p[iou_index:iou_index + 1]
    valid = p > -1
    total = np.where(valid, p, 0).sum(axis=(0, 1))
    count = valid.sum(axis=(0, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / count, np.nan)
