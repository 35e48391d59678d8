"""The compiled loop of core.catalog.bootstrap: COCO's 101-point AP with weighted images."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_EPS = np.spacing(1)  # pycocotools adds it to the precision's denominator


@njit(parallel=True, cache=True)
def weighted_ap(class_start, det_image, det_tp, weights_t, n_pos, recall_thrs):  # pragma: no cover - compiled
    """[B, K] AP per resample and class; NaN where the resample has no ground truth of the class.

    Rows of det_* are sorted by class (class_start offsets), then in pycocotools' order; a
    prediction weighs its image's weight (weights_t [I, B] integer counts), as that many copies
    of the image would. The resamples are the inner, vectorised loop: one pass over the
    predictions serves them all, without a branch per resample. A true positive of weight 0
    adds no recall and a precision no higher than the previous one's, so it changes nothing.
    """
    n_b, n_k, n_r = weights_t.shape[1], len(class_start) - 1, len(recall_thrs)
    out = np.full((n_b, n_k), np.nan)
    for k in prange(n_k):
        lo, hi = class_start[k], class_start[k + 1]
        n_tp = 0
        last = lo - 1
        for i in range(lo, hi):
            if det_tp[i]:
                n_tp += 1
                last = i  # predictions after the last TP never change AP
        tp = np.zeros(n_b, np.int32)
        fp = np.zeros(n_b, np.int32)
        precision = np.empty((n_tp, n_b))
        tp_at = np.empty((n_tp, n_b), np.int32)
        j = 0
        for i in range(lo, last + 1):
            row = weights_t[det_image[i]]
            if det_tp[i]:
                for b in range(n_b):
                    tp[b] += row[b]
                    tp_at[j, b] = tp[b]
                    precision[j, b] = tp[b] / (tp[b] + fp[b] + _EPS)
                j += 1
            else:
                for b in range(n_b):
                    fp[b] += row[b]
        for j in range(n_tp - 2, -1, -1):  # precision envelope: best precision at any later TP
            for b in range(n_b):
                if precision[j + 1, b] > precision[j, b]:
                    precision[j, b] = precision[j + 1, b]
        for b in range(n_b):
            npos = n_pos[b, k]
            if npos <= 0:
                continue
            total = 0.0
            j = 0
            for t in range(n_r):  # the first TP whose recall reaches the threshold
                while j < n_tp and tp_at[j, b] / npos < recall_thrs[t]:
                    j += 1
                if j == n_tp:
                    break
                total += precision[j, b]
            out[b, k] = total / n_r
    return out
