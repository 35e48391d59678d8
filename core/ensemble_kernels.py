"""Compiled (numba) WBF, NMS, Soft-NMS and NMW that give ensemble-boxes' output, many images per call.

Each method is ensemble-boxes' per-image algorithm (ensemble_boxes 1.0.9: `weighted_boxes_fusion`,
`nms`, `non_maximum_weighted`; Soft-NMS as core.ensemble documents it) written as loops over
(image, class) groups, with the same float operations in the same order: WBF and NMW fuse boxes
in float32 as the library does, and sums of model weights follow numpy's pairwise summation.
Sorting by score is where implementations differ on ties, so groups are ordered by numpy's own
`argsort()[::-1]` (as the library calls it) wherever a group holds equal scores, and NMS sorts
with numba's argsort, as the library's compiled `nms_float_fast` does.
One known difference: Soft-NMS's gaussian decay uses libm's exp where numpy may use a SIMD exp
that differs in the last bit (relative 1e-16); a group where that could reorder boxes or move
one across the minimum score (decayed scores within 1e-10) is run by the library's own kernel.
NMS runs each chunk in one pass (`nms_images`), with no allocation per image or class.

Inputs are what `core.ensemble.prepare_inputs` makes: boxes normalised to [0, 1], clipped, of
positive area, grouped by (image, model) with `starts` offsets. `cache=True` keeps the compiled
code in __pycache__: only a fresh checkout compiles.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

# conf_type codes for the WBF kernel (core.ensemble.CONF_TYPES order)
_CONF_CODES = {"avg": 0, "max": 1, "box_and_model_avg": 2, "absent_model_aware_avg": 3}


def _numpy_divides_in_float32() -> bool:
    """Whether `float32_array /= np.float64(x)` divides in float32 (numpy 1.x value-based casting)
    rather than in float64 (numpy >= 2, NEP 50); the library's fused boxes depend on it."""
    probe = np.full(1, 3.0, np.float32)
    probe /= np.float64(3.0000001)  # float32(3.0000001) == 3.0, so float32 division gives exactly 1
    return bool(probe[0] == 1.0)


F32_DIVISION = _numpy_divides_in_float32()

# Soft-NMS: decayed scores this close (relative) may be ordered otherwise by the library, whose
# exp differs in the last bit; such groups are run by the library's own kernel.
_NEAR_TIE = 1e-10


# ---------------------------------------------------------------------------------------------
# Scalar helpers (same operations, same order as the library)


@njit(cache=True, error_model="numpy")
def _block_sum(a, lo, hi):
    """numpy's pairwise summation of a[lo:hi] for hi - lo <= 128: 8 partial sums."""
    n = hi - lo
    if n < 8:
        res = 0.0
        for i in range(lo, hi):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True, error_model="numpy")
def _pairwise_sum(a, lo, hi):
    """numpy's `a[lo:hi].sum()` for float64 (pairwise: halves split at multiples of 8 down to
    blocks of 128), with an explicit stack: numba's cache mishandles recursive functions."""
    task_lo = np.empty(256, np.int64)
    task_hi = np.empty(256, np.int64)
    task_combine = np.empty(256, np.bool_)
    values = np.empty(256)
    task_lo[0], task_hi[0], task_combine[0] = lo, hi, False
    n_tasks, n_values = 1, 0
    while n_tasks > 0:
        n_tasks -= 1
        t_lo, t_hi = task_lo[n_tasks], task_hi[n_tasks]
        if task_combine[n_tasks]:
            values[n_values - 2] = values[n_values - 2] + values[n_values - 1]
            n_values -= 1
        elif t_hi - t_lo <= 128:
            values[n_values] = _block_sum(a, t_lo, t_hi)
            n_values += 1
        else:
            n2 = (t_hi - t_lo) // 2
            n2 -= n2 % 8
            # popped in reverse: left half, right half, then their sum
            task_lo[n_tasks], task_hi[n_tasks], task_combine[n_tasks] = t_lo, t_hi, True
            task_lo[n_tasks + 1], task_hi[n_tasks + 1], task_combine[n_tasks + 1] = t_lo + n2, t_hi, False
            task_lo[n_tasks + 2], task_hi[n_tasks + 2], task_combine[n_tasks + 2] = t_lo, t_lo + n2, False
            n_tasks += 3
    return values[0]


@njit(cache=True, error_model="numpy")
def _fused_coord(acc, conf, f32_division):
    """`box[4:] /= conf` on the library's float32 box, conf a float64 scalar."""
    if f32_division:
        return np.float64(np.float32(acc) / np.float32(conf))
    return np.float64(np.float32(np.float64(acc) / conf))


@njit(cache=True, error_model="numpy")
def _iou_vectorised(c0, c1, c2, c3, b0, b1, b2, b3):
    """IoU as ensemble-boxes' numpy `bb_iou_array` computes it (WBF matching, NMS, Soft-NMS)."""
    x_a = max(c0, b0)
    y_a = max(c1, b1)
    x_b = min(c2, b2)
    y_b = min(c3, b3)
    inter = max(x_b - x_a, 0.0) * max(y_b - y_a, 0.0)
    area_a = (c2 - c0) * (c3 - c1)
    area_b = (b2 - b0) * (b3 - b1)
    return inter / (area_a + area_b - inter)


@njit(cache=True, error_model="numpy")
def _iou_scalar(a0, a1, a2, a3, b0, b1, b2, b3):
    """ensemble-boxes' compiled `bb_intersection_over_union` (NMW): exact 0 without overlap."""
    x_a = max(a0, b0)
    y_a = max(a1, b1)
    x_b = min(a2, b2)
    y_b = min(a3, b3)
    inter = max(0.0, x_b - x_a) * max(0.0, y_b - y_a)
    if inter == 0:
        return 0.0
    area_a = (a2 - a0) * (a3 - a1)
    area_b = (b2 - b0) * (b3 - b1)
    return inter / (area_a + area_b - inter)


# ---------------------------------------------------------------------------------------------
# Input cleaning and grouping (core.ensemble): each input's rows of each image are located
# (one pass over its image column), then any run of images' boxes is cleaned and written
# grouped by (image, model) in one pass (the whole set once for a sweep, chunk by chunk otherwise).


@njit(cache=True, error_model="numpy")
def _normalised_box(b0, b1, b2, b3, width, height):
    """A pixel box divided by its image's size, corners ordered, clipped to [0, 1]; ok is False
    where ensemble-boxes' cleaning would leave no area (or a coordinate is NaN)."""
    x1, y1, x2, y2 = b0 / width, b1 / height, b2 / width, b3 / height
    if x1 != x1 or y1 != y1 or x2 != x2 or y2 != y2:
        return 0.0, 0.0, 0.0, 0.0, False
    x1, x2 = min(x1, x2), max(x1, x2)
    y1, y2 = min(y1, y2), max(y1, y2)
    x1, y1 = min(max(x1, 0.0), 1.0), min(max(y1, 0.0), 1.0)
    x2, y2 = min(max(x2, 0.0), 1.0), min(max(y2, 0.0), 1.0)
    return x1, y1, x2, y2, (x2 - x1) * (y2 - y1) > 0


@njit(cache=True)
def locate_rows(union_pos, image_pos, model, run_lo, run_hi):
    """Sets run_lo, run_hi [R, M] (column `model`): each image's rows [lo, hi) in one input
    (union_pos [R_i]: the input's image -> union image). Returns whether each image's rows are
    contiguous; where they are not, the runs are wrong and the input must be sorted first."""
    contiguous = True
    previous = -1
    u = 0
    for j in range(image_pos.shape[0]):
        if image_pos[j] != previous:
            previous = image_pos[j]
            u = union_pos[previous]
            if run_hi[u, model] > 0:    # this image's rows began earlier
                contiguous = False
            run_lo[u, model] = j
        run_hi[u, model] = j + 1
    return contiguous


@njit(cache=True, error_model="numpy")
def gather_clean_boxes(run_lo, run_hi, boxes, scores, labels, sizes, lo, hi, out_starts, out_boxes, out_scores,
                       out_labels):
    """Writes the kept boxes of union images [lo, hi), normalised by sizes [R, 2] (width,
    height), to out_* grouped by (image, model), each model's in file order (a stable sort's
    order), and out_starts [hi - lo, M+1] their offsets; returns how many. boxes, scores,
    labels: tuples of the M inputs' columns; run_lo, run_hi [R, M] as `locate_rows` sets them."""
    n_models = len(boxes)
    k = 0
    for u in range(lo, hi):
        w, h = sizes[u, 0], sizes[u, 1]
        for m in range(n_models):
            out_starts[u - lo, m] = k
            b, s, lab = boxes[m], scores[m], labels[m]
            for j in range(run_lo[u, m], run_hi[u, m]):
                x1, y1, x2, y2, ok = _normalised_box(b[j, 0], b[j, 1], b[j, 2], b[j, 3], w, h)
                if ok and np.isfinite(s[j]):
                    out_boxes[k, 0], out_boxes[k, 1], out_boxes[k, 2], out_boxes[k, 3] = x1, y1, x2, y2
                    out_scores[k] = s[j]
                    out_labels[k] = lab[j]
                    k += 1
        out_starts[u - lo, n_models] = k
    return k


@njit(cache=True, error_model="numpy")
def to_pixels(image, boxes, scores, labels, sizes, box_scale, score_scale, at,
              out_image, out_boxes, out_scores, out_labels):
    """Copies k ensembled boxes to out_*[at:at + k], the normalised boxes [k, 4] back in pixels
    of their image (`image` [k] into sizes [R, 2]), boxes and scores rounded as np.round(x,
    decimals) does: rint(x * 10**decimals) / 10**decimals (box_scale, score_scale = 10**decimals)."""
    for j in range(scores.shape[0]):
        u = image[j]
        w, h = sizes[u, 0], sizes[u, 1]
        out_image[at + j] = u
        out_labels[at + j] = labels[j]
        out_boxes[at + j, 0] = np.rint(boxes[j, 0] * w * box_scale) / box_scale
        out_boxes[at + j, 1] = np.rint(boxes[j, 1] * h * box_scale) / box_scale
        out_boxes[at + j, 2] = np.rint(boxes[j, 2] * w * box_scale) / box_scale
        out_boxes[at + j, 3] = np.rint(boxes[j, 3] * h * box_scale) / box_scale
        out_scores[at + j] = np.rint(scores[j] * score_scale) / score_scale


# ---------------------------------------------------------------------------------------------
# Per-group kernels. Every group is one (image, class), its boxes contiguous in `boxes`,
# bounded by `group_starts` [G+1]; outputs go to the same positions (a group yields at most
# as many boxes as it has), with the count per group in `out_n`.


@njit(cache=True, error_model="numpy")
def wbf_groups(group_starts, boxes, scores, box_weight, model, weights, weights_sum, weights_max,
               iou_thr, conf_code, f32_division, out_boxes, out_scores, out_n):
    """weighted_boxes_fusion per group. boxes [K, 4] sorted by descending weighted score within
    each group (the library's order); scores [K] weighted (score * weight); box_weight [K]."""
    n_models = weights.shape[0]
    for g in range(group_starts.shape[0] - 1):
        lo, hi = group_starts[g], group_starts[g + 1]
        n = hi - lo
        rows = np.empty((n, 6))            # the library's weighted_boxes row: score, weight, x1..y2
        acc = np.zeros((n, 4), np.float32)  # sum of score * coordinate, float32 as the library's box
        conf = np.zeros(n)
        wsum = np.zeros(n)
        cmax = np.zeros(n)
        count = np.zeros(n, np.int64)
        present = np.zeros((n, n_models), np.bool_)
        nc = 0
        for j in range(lo, hi):
            b0, b1, b2, b3 = boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3]
            # np.argmax over all clusters (the first NaN wins, as in numpy), then `<= iou_thr`
            best = -1
            best_iou = -np.inf
            for k in range(nc):
                v = _iou_vectorised(rows[k, 2], rows[k, 3], rows[k, 4], rows[k, 5], b0, b1, b2, b3)
                if v != v:
                    best, best_iou = k, v
                    break
                if v > best_iou:
                    best, best_iou = k, v
            s = scores[j]
            if best == -1 or best_iou <= iou_thr:
                k = nc
                nc += 1
                rows[k, 0], rows[k, 1] = s, box_weight[j]
                rows[k, 2], rows[k, 3], rows[k, 4], rows[k, 5] = b0, b1, b2, b3
                acc[k, 0] = np.float32(s * b0)
                acc[k, 1] = np.float32(s * b1)
                acc[k, 2] = np.float32(s * b2)
                acc[k, 3] = np.float32(s * b3)
                conf[k], wsum[k], cmax[k], count[k] = s, box_weight[j], s, 1
                present[k, model[j]] = True
                continue
            k = best
            acc[k, 0] = np.float32(np.float64(acc[k, 0]) + s * b0)
            acc[k, 1] = np.float32(np.float64(acc[k, 1]) + s * b1)
            acc[k, 2] = np.float32(np.float64(acc[k, 2]) + s * b2)
            acc[k, 3] = np.float32(np.float64(acc[k, 3]) + s * b3)
            conf[k] += s
            wsum[k] += box_weight[j]
            cmax[k] = max(cmax[k], s)
            count[k] += 1
            present[k, model[j]] = True
            # get_weighted_box: a float32 box
            if conf_code == 1:
                rows[k, 0] = np.float64(np.float32(cmax[k]))
            else:
                rows[k, 0] = np.float64(np.float32(conf[k] / count[k]))
            rows[k, 1] = np.float64(np.float32(wsum[k]))
            for c in range(4):
                rows[k, 2 + c] = _fused_coord(acc[k, c], conf[k], f32_division)
        # rescale each cluster's confidence by the number of models and boxes
        subset = np.empty(n_models)
        for k in range(nc):
            s = rows[k, 0]
            if conf_code == 2:      # box_and_model_avg
                s = s * count[k] / rows[k, 1]
                m = 0
                for t in range(n_models):
                    if present[k, t]:
                        subset[m] = weights[t]
                        m += 1
                s = s * _pairwise_sum(subset, 0, m) / weights_sum
            elif conf_code == 3:    # absent_model_aware_avg
                m = 0
                for t in range(n_models):
                    if not present[k, t]:
                        subset[m] = weights[t]
                        m += 1
                s = s * count[k] / (rows[k, 1] + _pairwise_sum(subset, 0, m))
            elif conf_code == 1:    # max
                s = s / weights_max
            else:                   # avg, allows_overflow=False
                s = s * min(n_models, count[k]) / weights_sum
            out_scores[lo + k] = s
            for c in range(4):
                out_boxes[lo + k, c] = rows[k, 2 + c]
        out_n[g] = nc


@njit(cache=True, error_model="numpy")
def nmw_groups(group_starts, boxes, scores, iou_thr, f32_division, out_boxes, out_scores, out_n):
    """non_maximum_weighted per group; boxes sorted by descending weighted score as for WBF."""
    for g in range(group_starts.shape[0] - 1):
        lo, hi = group_starts[g], group_starts[g + 1]
        n = hi - lo
        main = np.empty(n, np.int64)        # each cluster's first (best) box
        cluster = np.empty(n, np.int64)
        nc = 0
        for j in range(lo, hi):
            best = -1
            best_iou = iou_thr
            for k in range(nc):
                m = main[k]
                v = _iou_scalar(boxes[m, 0], boxes[m, 1], boxes[m, 2], boxes[m, 3],
                                boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3])
                if v > best_iou:
                    best, best_iou = k, v
            if best == -1:
                main[nc] = j
                cluster[j - lo] = nc
                nc += 1
            else:
                cluster[j - lo] = best
        # get_weighted_box: members weighted by score * IoU with the best box, float32 box
        acc = np.zeros((nc, 4), np.float32)
        conf = np.zeros(nc)
        for j in range(lo, hi):
            k = cluster[j - lo]
            m = main[k]
            iou = _iou_scalar(boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3],
                              boxes[m, 0], boxes[m, 1], boxes[m, 2], boxes[m, 3])
            weight = scores[j] * iou
            for c in range(4):
                acc[k, c] = np.float32(np.float64(acc[k, c]) + weight * boxes[j, c])
            conf[k] += weight
        for k in range(nc):
            out_scores[lo + k] = np.float64(np.float32(scores[main[k]]))
            for c in range(4):
                out_boxes[lo + k, c] = _fused_coord(acc[k, c], conf[k], f32_division)
        out_n[g] = nc


@njit(cache=True)
def _argsort_as_numba(keys, order, n, stack_lo, stack_hi):
    """order[:n] = `keys[:n].argsort()` as numba's own argsort orders it, ties included
    (numba.misc.quicksort: median-of-3 quicksort, insertion sort under 15 items); keys[:n] end
    sorted (each key moves with its index: the same comparisons and swaps, no indirection).
    stack_lo, stack_hi: preallocated [100]. Finite keys only (numba puts NaN last)."""
    for i in range(n):
        order[i] = i
    if n < 2:
        return
    stack_lo[0], stack_hi[0] = 0, n - 1
    depth = 1
    while depth > 0:
        depth -= 1
        low, high = stack_lo[depth], stack_hi[depth]
        while high - low >= 15:
            # partition around the median of {low, mid, high}, as numba's `partition`
            mid = (low + high) >> 1
            if keys[mid] < keys[low]:
                keys[low], keys[mid] = keys[mid], keys[low]
                order[low], order[mid] = order[mid], order[low]
            if keys[high] < keys[mid]:
                keys[high], keys[mid] = keys[mid], keys[high]
                order[high], order[mid] = order[mid], order[high]
            if keys[mid] < keys[low]:
                keys[low], keys[mid] = keys[mid], keys[low]
                order[low], order[mid] = order[mid], order[low]
            pivot = keys[mid]
            keys[high], keys[mid] = keys[mid], keys[high]
            order[high], order[mid] = order[mid], order[high]
            i = low
            j = high - 1
            while True:
                while i < high and keys[i] < pivot:
                    i += 1
                while j >= low and pivot < keys[j]:
                    j -= 1
                if i >= j:
                    break
                keys[i], keys[j] = keys[j], keys[i]
                order[i], order[j] = order[j], order[i]
                i += 1
                j -= 1
            keys[i], keys[high] = keys[high], keys[i]
            order[i], order[high] = order[high], order[i]
            if high - i > i - low:      # push the larger part, go on with the smaller
                if high > i:
                    stack_lo[depth], stack_hi[depth] = i + 1, high
                    depth += 1
                high = i - 1
            else:
                if i > low:
                    stack_lo[depth], stack_hi[depth] = low, i - 1
                    depth += 1
                low = i + 1
        for i in range(low + 1, high + 1):
            k = order[i]
            v = keys[i]
            j = i
            while j > low and v < keys[j - 1]:
                keys[j] = keys[j - 1]
                order[j] = order[j - 1]
                j -= 1
            keys[j] = v
            order[j] = k


@njit(cache=True, fastmath={"reassoc", "nsz"})
def _count_higher4(values, lo, n, v0, v1, v2, v3):
    """How many of values[lo:lo + n] are > v0, v1, v2, v3 (four counts as floats, each value read
    once); `reassoc` lets the sums vectorise and is exact here (sums of 1.0 below 2**53)."""
    h0 = 0.0
    h1 = 0.0
    h2 = 0.0
    h3 = 0.0
    for t in range(np.uint64(lo), np.uint64(lo + n)):
        x = values[t]
        h0 += 1.0 if x > v0 else 0.0
        h1 += 1.0 if x > v1 else 0.0
        h2 += 1.0 if x > v2 else 0.0
        h3 += 1.0 if x > v3 else 0.0
    return h0, h1, h2, h3


@njit(cache=True)
def _rank_if_distinct(values, lo, n, order):
    """order[:n] = the argsort of values[lo:lo + n] ranked branch-free (place = n - 1 - number of
    higher values); False (order unfinished) as soon as two values are equal: they get one place."""
    for r in range(n):
        order[r] = -1
    last = n - 1
    for r in range(0, n, 4):
        higher = _count_higher4(values, lo, n, values[lo + r], values[lo + min(r + 1, last)],
                                values[lo + min(r + 2, last)], values[lo + min(r + 3, last)])
        for i in range(min(4, n - r)):
            place = last - int(higher[i])
            if order[place] >= 0:
                return False
            order[place] = r + i
    return True


@njit(cache=True, error_model="numpy")
def nms_images(starts, boxes, scores, labels, label_code, label_low, n_labels, weights, weights_sum,
               weighted, skip_box_thr, iou_thr, out_image, out_boxes, out_scores, out_labels):
    """ensemble-boxes' `nms` image by image: per image, skip boxes scoring under skip_box_thr
    (when > 0), weigh scores (s * w / sum(w) when `weighted`), and run `nms_float_fast` on each
    class in ascending order. starts [C, M+1] as `ensemble_grouped` takes; label_code [K] small
    codes of the labels, or empty for `labels - label_low`. Writes the kept boxes in the
    library's order to out_* [K] and returns how many."""
    n_images, n_models = starts.shape[0], starts.shape[1] - 1
    largest = 0
    for i in range(n_images):
        largest = max(largest, starts[i, n_models] - starts[i, 0])
    # scratch, allocated once: no allocation per image or per class
    member = np.empty(largest, np.int64)    # the image's boxes grouped by class, input order kept
    value = np.empty(largest)               # their weighted scores
    key = np.empty(largest)                 # one class's scores, sorted in place
    order = np.empty(largest, np.int64)
    x1 = np.empty(largest)                  # one class's boxes by descending score
    y1 = np.empty(largest)
    x2 = np.empty(largest)
    y2 = np.empty(largest)
    area = np.empty(largest)
    alive = np.empty(largest)               # 1.0 or 0.0 (a float: the loop vectorises)
    count = np.zeros(n_labels, np.int64)
    offset = np.empty(n_labels, np.int64)
    seen = np.empty(n_labels, np.int64)
    stack_lo = np.empty(100, np.int64)
    stack_hi = np.empty(100, np.int64)
    use_codes = label_code.shape[0] > 0
    skip = skip_box_thr > 0
    k = 0
    for i in range(n_images):
        # classes present (ascending, as np.unique) and their sizes
        n_seen = 0
        for j in range(starts[i, 0], starts[i, n_models]):
            if skip and not scores[j] >= skip_box_thr:
                continue
            c = label_code[j] if use_codes else labels[j] - label_low
            if count[c] == 0:
                seen[n_seen] = c
                n_seen += 1
            count[c] += 1
        for a in range(1, n_seen):
            c = seen[a]
            b = a - 1
            while b >= 0 and seen[b] > c:
                seen[b + 1] = seen[b]
                b -= 1
            seen[b + 1] = c
        pos = 0
        for a in range(n_seen):
            offset[seen[a]] = pos
            pos += count[seen[a]]
        for m in range(n_models):
            for j in range(starts[i, m], starts[i, m + 1]):
                if skip and not scores[j] >= skip_box_thr:
                    continue
                c = label_code[j] if use_codes else labels[j] - label_low
                member[offset[c]] = j
                value[offset[c]] = scores[j] * weights[m] / weights_sum if weighted else scores[j]
                offset[c] += 1
        group_lo = 0
        for a in range(n_seen):
            n = count[seen[a]]
            count[seen[a]] = 0
            # The library's order: `scores.argsort()[::-1]`. Without ties any sort gives it; a small
            # class is ranked branch-free (place = number of higher scores). Where scores tie
            # (or the class is large) numba's own argsort decides, as in the library.
            tied = n > 48 or not _rank_if_distinct(value, group_lo, n, order)
            if tied:
                for p in range(n):
                    key[p] = value[group_lo + p]
                _argsort_as_numba(key, order, n, stack_lo, stack_hi)
            for p in range(n):      # descending: the argsort reversed, as the library's kernel
                j = member[group_lo + order[n - 1 - p]]
                x1[p], y1[p], x2[p], y2[p] = boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3]
                area[p] = (x2[p] - x1[p]) * (y2[p] - y1[p])
                alive[p] = 1.0
            for p in range(n):
                if alive[p] == 0.0:
                    continue
                r = group_lo + order[n - 1 - p]
                j = member[r]
                a0, a1, a2, a3, area_p = x1[p], y1[p], x2[p], y2[p], area[p]
                out_image[k] = i
                out_boxes[k, 0], out_boxes[k, 1], out_boxes[k, 2], out_boxes[k, 3] = a0, a1, a2, a3
                out_scores[k] = value[r]
                out_labels[k] = labels[j]
                k += 1
                # every later box, suppressed or not, without a branch (explicit selects, an
                # unsigned index): the loop vectorises
                for q in range(np.uint64(p + 1), np.uint64(n)):
                    xx1 = a0 if a0 > x1[q] else x1[q]
                    yy1 = a1 if a1 > y1[q] else y1[q]
                    xx2 = a2 if a2 < x2[q] else x2[q]
                    yy2 = a3 if a3 < y2[q] else y2[q]
                    w = xx2 - xx1
                    h = yy2 - yy1
                    inter = (w if w > 0.0 else 0.0) * (h if h > 0.0 else 0.0)
                    ovr = inter / (area_p + area[q] - inter)
                    alive[q] = alive[q] * (1.0 if ovr <= iou_thr else 0.0)
            group_lo += n
    return k


@njit(cache=True, error_model="numpy")
def soft_nms_groups(group_starts, boxes, scores, sigma, min_score, out_boxes, out_scores, out_n, near_tie):
    """ensemble-boxes' gaussian `cpu_soft_nms_float` per group, keeping the decayed scores.
    near_tie[g] is set where the order or the cut at min_score hangs on scores within 1e-10 of
    each other: there the last bit of exp (libm here, numpy's SIMD exp in the library) decides."""
    for g in range(group_starts.shape[0] - 1):
        lo, hi = group_starts[g], group_starts[g + 1]
        n = hi - lo
        idx = np.arange(n)                  # the library's index column, swapped with the rows
        x1 = boxes[lo:hi, 0].copy()
        y1 = boxes[lo:hi, 1].copy()
        x2 = boxes[lo:hi, 2].copy()
        y2 = boxes[lo:hi, 3].copy()
        sc = scores[lo:hi].copy()
        areas = (x2 - x1) * (y2 - y1)
        for i in range(n):
            # bring the highest remaining score (first of equals) to position i
            if i != n - 1:
                maxpos = i + 1
                for q in range(i + 2, n):
                    if sc[q] > sc[maxpos]:
                        maxpos = q
                if sc[i] < sc[maxpos]:
                    x1[i], x1[maxpos] = x1[maxpos], x1[i]
                    y1[i], y1[maxpos] = y1[maxpos], y1[i]
                    x2[i], x2[maxpos] = x2[maxpos], x2[i]
                    y2[i], y2[maxpos] = y2[maxpos], y2[i]
                    idx[i], idx[maxpos] = idx[maxpos], idx[i]
                    sc[i], sc[maxpos] = sc[maxpos], sc[i]
                    areas[i], areas[maxpos] = areas[maxpos], areas[i]
                for q in range(i + 1, n):
                    d = sc[i] - sc[q]
                    if 0 < d <= _NEAR_TIE * abs(sc[i]):
                        near_tie[g] = True
            for q in range(i + 1, n):
                w = max(0.0, min(y2[i], y2[q]) - max(y1[i], y1[q]))
                h = max(0.0, min(x2[i], x2[q]) - max(x1[i], x1[q]))
                inter = w * h
                ovr = inter / (areas[i] + areas[q] - inter)
                sc[q] = math.exp(-(ovr * ovr) / sigma) * sc[q]
        kept = 0
        for i in range(n):
            if abs(sc[i] - min_score) <= _NEAR_TIE * abs(min_score):
                near_tie[g] = True
            if sc[i] > min_score:
                out_scores[lo + kept] = sc[i]
                for c in range(4):
                    out_boxes[lo + kept, c] = boxes[lo + idx[i], c]
                kept += 1
        out_n[g] = kept


# ---------------------------------------------------------------------------------------------
# Grouping and numpy's tie order


@njit(cache=True)
def _sort_segments_descending(values, segment_starts, order):
    """Sort each segment of `order` (positions into values) by descending value in place;
    returns [S] bool: the segment holds equal values (so its order is not unique)."""
    n_segments = segment_starts.shape[0] - 1
    tied = np.zeros(n_segments, np.bool_)
    for s in range(n_segments):
        lo, hi = segment_starts[s], segment_starts[s + 1]
        if hi - lo < 2:
            continue
        if hi - lo <= 48:   # insertion sort: no allocation for the many small groups
            for a in range(lo + 1, hi):
                x = order[a]
                v = values[x]
                b = a - 1
                while b >= lo and values[order[b]] < v:
                    order[b + 1] = order[b]
                    b -= 1
                order[b + 1] = x
        else:
            seg = order[lo:hi].copy()
            seg_values = np.empty(hi - lo)
            for i in range(hi - lo):
                seg_values[i] = values[seg[i]]
            idx = np.argsort(seg_values)
            for i in range(hi - lo):
                order[hi - 1 - i] = seg[idx[i]]
        for i in range(lo + 1, hi):
            if values[order[i]] == values[order[i - 1]]:
                tied[s] = True
                break
    return tied


@njit(cache=True)
def _group_by_image_and_label(image_starts, label_code, n_labels, first_seen_order):
    """Boxes grouped by (image, label), input order kept within a group; labels in first-seen
    order (first_seen_order) or ascending. Returns order [K] and group_starts [G+1]."""
    n = label_code.shape[0]
    order = np.empty(n, np.int64)
    group_starts = np.empty(n + 1, np.int64)
    count = np.zeros(n_labels, np.int64)
    offset = np.zeros(n_labels, np.int64)
    seen = np.empty(n_labels, np.int64)
    n_groups = 0
    group_starts[0] = 0
    for i in range(image_starts.shape[0] - 1):
        lo, hi = image_starts[i], image_starts[i + 1]
        n_seen = 0
        for j in range(lo, hi):
            c = label_code[j]
            if count[c] == 0:
                seen[n_seen] = c
                n_seen += 1
            count[c] += 1
        labels_here = seen[:n_seen].copy()
        if not first_seen_order:
            labels_here.sort()
        pos = lo
        for c in labels_here:
            offset[c] = pos
            pos += count[c]
            n_groups += 1
            group_starts[n_groups] = pos
        for j in range(lo, hi):
            c = label_code[j]
            order[offset[c]] = j
            offset[c] += 1
        for c in labels_here:
            count[c] = 0
    return order, group_starts[:n_groups + 1].copy()


def _fix_ties(values: np.ndarray, order: np.ndarray, segment_starts: np.ndarray, tied: np.ndarray) -> None:
    """Re-sort the tied segments of `order` as `np.argsort(v)[::-1]` does (in place); `order`
    lists each segment's members in their original order before this call's sorting."""
    tied_segments = np.flatnonzero(tied)
    lengths = segment_starts[tied_segments + 1] - segment_starts[tied_segments]
    # one argsort per length: numpy sorts each row of a 2-D array as it sorts a 1-D array
    for length in np.unique(lengths).tolist():
        rows = segment_starts[tied_segments[lengths == length]][:, None] + np.arange(length)  # [k, L]
        members = order[rows]
        order[rows] = np.take_along_axis(members, np.argsort(values[members], axis=1)[:, ::-1], axis=1)


def descending_order(values: np.ndarray, order: np.ndarray, segment_starts: np.ndarray) -> np.ndarray:
    """`order` (positions into values, segments [starts[s], starts[s+1]) in original order) with
    each segment sorted by descending value exactly as `np.argsort(values[segment])[::-1]` does,
    ties included (numpy's sort is not stable, and ensemble-boxes sorts that way). Compiled;
    numpy is called only on segments holding equal values."""
    original = order.copy()
    order = order.copy()
    tied = _sort_segments_descending(values, segment_starts, order)
    if tied.any():
        order[:] = np.where(np.repeat(tied, np.diff(segment_starts)), original, order)
        _fix_ties(values, order, segment_starts, tied)
    return order


def numpy_descending_order(values: np.ndarray, segment_starts: np.ndarray) -> np.ndarray:
    """[K] positions ordering each segment of `values` by descending value as
    `np.argsort(values[segment])[::-1]` does (see `descending_order`)."""
    return descending_order(values, np.arange(len(values)), np.asarray(segment_starts, np.int64))


def _segment_starts(keys_sorted: np.ndarray) -> np.ndarray:
    """[G+1] offsets of the runs of equal values in a sorted key array."""
    if len(keys_sorted) == 0:
        return np.zeros(1, np.int64)
    change = np.flatnonzero(keys_sorted[1:] != keys_sorted[:-1]) + 1
    return np.concatenate([[0], change, [len(keys_sorted)]]).astype(np.int64)


@njit(cache=True)
def _taken(group_starts, out_n):
    """[k] positions of the first out_n[g] rows of every group."""
    taken = np.empty(out_n.sum(), np.int64)
    k = 0
    for g in range(out_n.shape[0]):
        for i in range(out_n[g]):
            taken[k] = group_starts[g] + i
            k += 1
    return taken


def _label_codes(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """[K] small non-negative codes in the labels' order, and how many codes there can be."""
    if len(labels) == 0:
        return labels.astype(np.int64), 1
    low, high = int(labels.min()), int(labels.max())
    if high - low < 65536:   # class ids are small: no sort needed
        return (labels - low).astype(np.int64), high - low + 1
    _, code = np.unique(labels, return_inverse=True)
    return code.astype(np.int64), int(code.max()) + 1


def ensemble_grouped(starts: np.ndarray, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                     config, nms_out=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ensemble every image of a chunk with `config` (a core.ensemble.EnsembleConfig).

    starts [C, M+1]: offsets of each image's models' boxes in boxes [K, 4] (normalised, clean),
    scores [K], labels [K] int64. Returns (image [k] local index, boxes [k, 4], scores [k],
    labels [k] int64), each image's boxes in ensemble-boxes' output order. nms_out: NMS only,
    (image, boxes, scores, labels) buffers of >= K rows the results are written to (their first
    k rows are returned), None for new arrays; the other methods ignore it.
    """
    n_images, n_models = starts.shape[0], starts.shape[1] - 1
    if config.method == "nms":     # one pass over the images, nothing gathered in numpy
        return _nms_grouped(starts, boxes, scores, labels, config, nms_out)
    counts = np.diff(starts, axis=1).reshape(-1)                                  # [C*M]
    model = np.repeat(np.tile(np.arange(n_models), n_images), counts)             # [K]
    image = np.repeat(np.arange(n_images), np.diff(starts[:, [0, -1]], axis=1).reshape(-1))
    weights = (np.ones(n_models) if config.weights is None
               else np.asarray(config.weights, dtype=np.float64))
    method = config.method

    if method in ("wbf", "nmw"):
        keep = scores >= config.skip_box_thr           # prefilter: `if score < thr: continue`
        if method == "nmw":
            weights = weights / max(weights)
    else:
        keep = scores >= config.skip_box_thr if config.skip_box_thr > 0 else np.ones(len(scores), bool)
    if not keep.all():
        image, model, boxes, scores, labels = image[keep], model[keep], boxes[keep], scores[keep], labels[keep]
    box_weight = weights[model]
    if method in ("wbf", "nmw"):
        weighted = scores * box_weight
    elif config.weights is not None:  # nms_method: scores * weight / weights.sum()
        weighted = scores * box_weight / weights.sum()
    else:
        weighted = scores

    # Groups: (image, class). WBF/NMW list classes in first-seen order (the library's dict),
    # NMS/Soft-NMS in ascending order (np.unique); images in chunk order either way.
    label_code, n_labels = _label_codes(labels)
    image_starts = np.searchsorted(image, np.arange(n_images + 1)).astype(np.int64)
    order, group_starts = _group_by_image_and_label(image_starts, label_code, n_labels,
                                                    method in ("wbf", "nmw"))
    if method in ("wbf", "nmw"):
        # within each group: descending weighted score, numpy's tie order
        order = descending_order(weighted, order, group_starts)
    g_boxes = np.ascontiguousarray(boxes[order])
    g_scores = np.ascontiguousarray(weighted[order])
    out_boxes = np.empty_like(g_boxes)
    out_scores = np.empty_like(g_scores)
    out_n = np.zeros(len(group_starts) - 1, np.int64)
    if method == "wbf":
        wbf_groups(group_starts, g_boxes, g_scores, np.ascontiguousarray(box_weight[order]),
                   np.ascontiguousarray(model[order]), weights, weights.sum(), weights.max(),
                   float(config.iou_thr), _CONF_CODES[config.conf_type], F32_DIVISION,
                   out_boxes, out_scores, out_n)
    elif method == "nmw":
        nmw_groups(group_starts, g_boxes, g_scores, float(config.iou_thr), F32_DIVISION,
                   out_boxes, out_scores, out_n)
    else:
        near_tie = np.zeros(len(out_n), np.bool_)
        soft_nms_groups(group_starts, g_boxes, g_scores, float(config.sigma),
                        float(config.soft_nms_min_score), out_boxes, out_scores, out_n, near_tie)
        for g in np.flatnonzero(near_tie).tolist():
            _library_soft_nms_group(group_starts[g], group_starts[g + 1], g_boxes, g_scores, config,
                                    out_boxes, out_scores, out_n, g)

    taken = _taken(group_starts, out_n)          # the first out_n[g] rows of each group
    if method in ("wbf", "nmw") and len(taken):
        # the library sorts each image's fused boxes by score: `argsort()[::-1]`
        taken_image = image[order[taken]]
        taken = descending_order(out_scores, taken, _segment_starts(taken_image))
    return (image[order[taken]], out_boxes[taken], out_scores[taken],
            labels[order[taken]].astype(np.int64))


def _library_soft_nms_group(lo, hi, boxes, scores, config, out_boxes, out_scores, out_n, g):
    """Soft-NMS of one group [lo, hi) by ensemble-boxes' own kernel (numpy's exp), as
    core.ensemble._soft_nms runs it: for the rare groups whose order a last bit decides."""
    from ensemble_boxes.ensemble_boxes_nms import cpu_soft_nms_float

    decayed = scores[lo:hi].copy()
    keep = cpu_soft_nms_float(boxes[lo:hi].copy(), decayed, Nt=config.iou_thr, sigma=config.sigma,
                              thresh=config.soft_nms_min_score, method=2)
    kept_scores = decayed[decayed > config.soft_nms_min_score]
    out_boxes[lo:lo + len(keep)] = boxes[lo:hi][keep]
    out_scores[lo:lo + len(keep)] = kept_scores
    out_n[g] = len(keep)


def _nms_grouped(starts, boxes, scores, labels, config, out=None):
    """`ensemble_grouped` for NMS: the whole chunk in one compiled pass (`nms_images`)."""
    n_models = starts.shape[1] - 1
    weights = (np.ones(n_models) if config.weights is None
               else np.asarray(config.weights, dtype=np.float64))
    labels = np.asarray(labels, np.int64)
    if len(labels) == 0:
        low, n_labels, codes = 0, 1, np.zeros(0, np.int64)
    else:
        low, high = int(labels.min()), int(labels.max())
        if high - low < 65536:   # class ids are small: the kernel codes them as labels - low
            n_labels, codes = high - low + 1, np.zeros(0, np.int64)
        else:
            codes, n_labels = _label_codes(labels)
    n = len(scores)
    if out is None:
        out = np.empty(n, np.int64), np.empty((n, 4)), np.empty(n), np.empty(n, np.int64)
    out_image, out_boxes, out_scores, out_labels = out
    k = nms_images(np.ascontiguousarray(starts, np.int64), np.ascontiguousarray(boxes, np.float64),
                   np.ascontiguousarray(scores, np.float64), labels, codes, low, n_labels, weights,
                   weights.sum(), config.weights is not None, float(config.skip_box_thr),
                   float(config.iou_thr), out_image, out_boxes, out_scores, out_labels)
    return out_image[:k], out_boxes[:k], out_scores[:k], out_labels[:k]
