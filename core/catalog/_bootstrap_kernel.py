"""The compiled loop of core.catalog.bootstrap: COCO's 101-point AP with weighted images."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_EPS = np.spacing(1)  # pycocotools adds it to the precision's denominator


@njit(parallel=True, cache=True)
def weighted_ap(class_start, det_image, det_tp, weights, n_pos, recall_thrs):  # pragma: no cover - compiled
    """[B, K] AP per resample and class; NaN where the resample has no ground truth of the class.

    Rows of det_* are sorted by class (class_start offsets), then in pycocotools' order; a
    prediction weighs its image's weight, as k copies of the image would.
    """
    n_b, n_k, n_r = weights.shape[0], len(class_start) - 1, len(recall_thrs)
    longest = 0
    for k in range(n_k):
        longest = max(longest, class_start[k + 1] - class_start[k])
    out = np.full((n_b, n_k), np.nan)
    for b in prange(n_b):
        precision = np.empty(longest)
        recall = np.empty(longest)
        w = weights[b]
        for k in range(n_k):
            npos = n_pos[b, k]
            if npos <= 0:
                continue
            m = 0
            tp = 0.0
            fp = 0.0
            for i in range(class_start[k], class_start[k + 1]):
                wi = w[det_image[i]]
                if wi == 0:
                    continue
                if det_tp[i]:
                    tp += wi
                    precision[m] = tp / (tp + fp + _EPS)
                    recall[m] = tp / npos
                    m += 1
                else:
                    fp += wi
            for j in range(m - 2, -1, -1):  # precision envelope: best precision at any later TP
                if precision[j + 1] > precision[j]:
                    precision[j] = precision[j + 1]
            total = 0.0
            j = 0
            for t in range(n_r):           # first TP whose recall reaches the threshold
                while j < m and recall[j] < recall_thrs[t]:
                    j += 1
                if j == m:
                    break
                total += precision[j]
            out[b, k] = total / n_r
    return out
