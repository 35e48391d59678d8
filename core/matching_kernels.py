"""Compiled (numba) loops: COCO matching per image, TIDE's error cascade, COCO accumulation.

Semantics are pycocotools' `COCOeval.evaluateImg` / `accumulate` for bbox and tidecv's
`TIDERun._eval_image`, written as plain loops because greedy matching is sequential.
Predictions come grouped by image and, within an image, sorted by descending score (stable),
the order both libraries process them in; ground truth comes grouped by image in annotation
order. `cache=True` keeps the compiled code in __pycache__: only a fresh checkout compiles.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# outcome codes: the positions in core.outcomes.OUTCOME_CODES
TP, CLASSIFICATION, LOCALIZATION, BOTH, DUPLICATE, BACKGROUND, IGNORED = 0, 1, 2, 3, 4, 5, 6
# status of a prediction in COCO's matching at one (IoU threshold, area range)
COCO_FP, COCO_TP, COCO_IGNORED, COCO_DROPPED = 0, 1, 2, 3


@njit(cache=True)
def _image_ious(d0, d1, g0, g1, det_xywh, gt_xywh, gt_crowd):
    """[nd, ng] pycocotools bbIou: the same operations in the same order, so bit-equal."""
    ious = np.zeros((d1 - d0, g1 - g0))
    for j in range(d0, d1):
        dx, dy, dw, dh = det_xywh[j, 0], det_xywh[j, 1], det_xywh[j, 2], det_xywh[j, 3]
        da = dw * dh
        for g in range(g0, g1):
            gx, gy, gw, gh = gt_xywh[g, 0], gt_xywh[g, 1], gt_xywh[g, 2], gt_xywh[g, 3]
            w = min(dw + dx, gw + gx) - max(dx, gx)
            if w <= 0:
                continue
            h = min(dh + dy, gh + gy) - max(dy, gy)
            if h <= 0:
                continue
            inter = w * h
            union = da if gt_crowd[g] else da + gw * gh - inter
            ious[j - d0, g - g0] = inter / union
    return ious


@njit(cache=True)
def _class_tie_order(score, cls):
    """[n] positions sorted by descending score, then class, then position (stable).

    score is already non-increasing: only runs of equal scores need sorting (insertion sort).
    This is evaluateImg's order with useCats=0, which lists predictions class by class
    before its stable sort by score.
    """
    n = score.shape[0]
    order = np.arange(n)
    i = 0
    while i < n:
        j = i
        while j + 1 < n and score[j + 1] == score[i]:
            j += 1
        for a in range(i + 1, j + 1):
            x = order[a]
            b = a - 1
            while b >= i and cls[order[b]] > cls[x]:
                order[b + 1] = order[b]
                b -= 1
            order[b + 1] = x
        i = j + 1
    return order


@njit(cache=True)
def _greedy(det_order, rank, max_det, allowed, ious, reach, thr, gt_order, gt_ignore, crowd,
            det_match, det_ign, gt_match):
    """pycocotools' evaluateImg matching loop for one image (local indices).

    det_order: processing order (predictions left out match nothing); rank [nd]: rank
    within the prediction's group (those >= max_det are skipped); allowed [nd, ng]: same
    group; reach [nd]: highest IoU over allowed pairs; gt_order [ng]: visiting order within each ignore pass; gt_ignore [ng] 0/1; crowd [ng]. Ground truth is visited
    regular first, then ignored, each in annotation order (evaluateImg's `gtind`); ties in
    IoU go to the later box. Fills det_match/gt_match (-1 if none) and det_ign.
    """
    det_match[:] = -1
    det_ign[:] = False
    gt_match[:] = -1
    ng = ious.shape[1]
    for jj in range(det_order.shape[0]):   # all predictions, or only those that may match
        j = det_order[jj]
        if rank[j] >= max_det:
            continue
        best = min(thr, 1 - 1e-10)
        if reach[j] < best:
            continue  # overlaps nothing it may match well enough: most predictions
        m = -1
        for ignored_pass in range(2):
            if ignored_pass == 1 and m > -1:
                break  # pycocotools stops at the first ignored box once a regular one matched
            for gg in range(ng):
                g = gt_order[gg]
                if not allowed[j, g] or gt_ignore[g] != ignored_pass:
                    continue
                if gt_match[g] > -1 and not crowd[g]:
                    continue  # taken (crowd boxes can be matched many times)
                if ious[j, g] < best:
                    continue
                best = ious[j, g]
                m = g
        if m == -1:
            continue
        det_ign[j] = gt_ignore[m] == 1
        det_match[j] = m
        gt_match[m] = j


@njit(cache=True)
def _classify(j, g_cls, crowd, gt_used, ious_row, det_cls, iou_thr, bg_thr):
    """TIDE's cascade for one unmatched prediction -> (outcome, local gt or -1, iou).

    Only regular (non-crowd) ground truth takes part, as TIDE's `ex.gt`; argmax ties go to
    the first box, as numpy's argmax does in tidecv.
    """
    best_same, best_other, best_used, best_any = 0.0, 0.0, 0.0, 0.0
    g_same, g_other, g_used, g_any = -1, -1, -1, -1
    for g in range(ious_row.shape[0]):
        if crowd[g]:
            continue
        iou = ious_row[g]
        if iou > best_any:
            best_any, g_any = iou, g
        if g_cls[g] == det_cls:
            if iou > best_same:
                best_same, g_same = iou, g
            if gt_used[g] and iou > best_used:
                best_used, g_used = iou, g
        elif iou > best_other:
            best_other, g_other = iou, g
    # Localization: its class is there, with bg <= IoU <= pos (TIDE includes pos itself)
    if bg_thr <= best_same <= iou_thr:
        return LOCALIZATION, g_same, best_same
    # Classification: a box of another class overlaps it enough to be a match
    if best_other >= iou_thr:
        return CLASSIFICATION, g_other, best_other
    # Duplicate: it would match a box of its class that a higher-scoring box already took
    if best_used >= iou_thr:
        return DUPLICATE, g_used, best_used
    # Background: IoU <= bg with every box (also every box of an image without ground truth)
    if best_any <= bg_thr:
        return BACKGROUND, g_any, best_any
    # Both: what is left overlaps a box of another class, too little (TIDE's OtherError)
    return BOTH, g_any, best_any


@njit(cache=True, nogil=True)  # core.evaluation runs chunks of images on threads
def match_images(det_start, det_cls, det_score, det_xywh, gt_start, gt_cls, gt_xywh, gt_crowd, gt_area,
                 iou_thr, bg_thr, coco_thrs, area_rngs, max_det):
    """Match every image.

    Returns
      rank [N]            rank of the prediction within its (image, class) by score
      outcome [N]         TP, an error type or IGNORED at iou_thr (area all)
      out_gt, out_iou [N] ground truth that decided it (-1 if none), IoU with it
      gt_det [G]          prediction matched to each ground truth at iou_thr (-1 if none)
      cm_det_gt [N], cm_ignored [N], cm_gt_det [G]: class-agnostic matching at iou_thr
      coco [N, T, A]      COCO_FP / TP / IGNORED / DROPPED per COCO threshold and area range
      never_matched [N]   no ground truth of its class within reach of any COCO threshold
    """
    n = det_cls.shape[0]
    n_gt = gt_cls.shape[0]
    n_thr, n_area = coco_thrs.shape[0], area_rngs.shape[0]
    rank = np.zeros(n, np.int64)
    outcome = np.full(n, IGNORED, np.int64)
    out_gt = np.full(n, -1, np.int64)
    out_iou = np.zeros(n)
    gt_det = np.full(n_gt, -1, np.int64)
    cm_det_gt = np.full(n, -1, np.int64)
    cm_ignored = np.zeros(n, np.bool_)
    cm_gt_det = np.full(n_gt, -1, np.int64)
    coco = np.full((n, n_thr, n_area), COCO_DROPPED, np.uint8)
    never_matched = np.ones(n, np.bool_)
    lowest_thr = min(coco_thrs.min(), 1 - 1e-10)
    n_cls = max(det_cls.max() if n else 0, gt_cls.max() if n_gt else 0) + 1
    seen = np.zeros(n_cls, np.int64)
    unmatched = np.empty(n_area, np.uint8)  # a prediction's COCO status per area range when unmatched
    for i in range(det_start.shape[0] - 1):
        d0, d1, g0, g1 = det_start[i], det_start[i + 1], gt_start[i], gt_start[i + 1]
        nd, ng = d1 - d0, g1 - g0
        if nd == 0:
            continue
        ious = _image_ious(d0, d1, g0, g1, det_xywh, gt_xywh, gt_crowd)
        d_cls = det_cls[d0:d1]
        g_cls = gt_cls[g0:g1]
        crowd = gt_crowd[g0:g1]
        same = np.empty((nd, ng), np.bool_)
        reach_same = np.zeros(nd)
        reach_any = np.zeros(nd)
        for j in range(nd):
            for g in range(ng):
                same[j, g] = d_cls[j] == g_cls[g]
                reach_any[j] = max(reach_any[j], ious[j, g])
                if same[j, g]:
                    reach_same[j] = max(reach_same[j], ious[j, g])
        for j in range(nd):
            never_matched[d0 + j] = reach_same[j] < lowest_thr
        seen[:] = 0
        r = rank[d0:d1]
        for j in range(nd):
            r[j] = seen[d_cls[j]]
            seen[d_cls[j]] += 1
        in_order = np.arange(nd)
        gt_in_order = np.arange(ng)
        det_match = np.empty(nd, np.int64)
        det_ign = np.empty(nd, np.bool_)
        gt_match = np.empty(ng, np.int64)
        crowd_ignore = crowd.astype(np.int64)

        # the outcome of each prediction at iou_thr, area all
        _greedy(in_order, r, max_det, same, ious, reach_same, iou_thr, gt_in_order, crowd_ignore, crowd,
                det_match, det_ign, gt_match)
        gt_used = gt_match > -1
        for g in range(ng):
            if gt_match[g] > -1 and not crowd[g]:
                gt_det[g0 + g] = d0 + gt_match[g]
        for j in range(nd):
            if r[j] >= max_det or det_ign[j]:
                continue  # IGNORED: beyond COCO's maxDets, or on a crowd region
            if det_match[j] > -1:
                outcome[d0 + j] = TP
                out_gt[d0 + j] = g0 + det_match[j]
                out_iou[d0 + j] = ious[j, det_match[j]]
                continue
            code, g, iou = _classify(j, g_cls, crowd, gt_used, ious[j], d_cls[j], iou_thr, bg_thr)
            outcome[d0 + j] = code
            out_gt[d0 + j] = g0 + g if g > -1 else -1
            out_iou[d0 + j] = iou

        # class-agnostic matching for the confusion matrix (COCO useCats=0: one list per image,
        # predictions and ground truth taken class by class before the sorts; cap per image)
        any_class = np.ones((nd, ng), np.bool_)
        agn_order = _class_tie_order(det_score[d0:d1], d_cls)
        agn_rank = np.empty(nd, np.int64)
        agn_rank[agn_order] = np.arange(nd)
        gt_by_class = np.argsort(g_cls, kind="mergesort")
        _greedy(agn_order, agn_rank, max_det, any_class, ious, reach_any, iou_thr, gt_by_class,
                crowd_ignore, crowd, det_match, det_ign, gt_match)
        for j in range(nd):
            cm_det_gt[d0 + j] = g0 + det_match[j] if det_match[j] > -1 and not det_ign[j] else -1
            cm_ignored[d0 + j] = agn_rank[j] >= max_det or det_ign[j]
        for g in range(ng):
            if gt_match[g] > -1 and not crowd[g]:
                cm_gt_det[g0 + g] = d0 + gt_match[g]

        # COCO's evaluateImg at every threshold and area range. Only the predictions within
        # reach of a ground truth of their class can match (about one in twelve); the others
        # are a false positive, or ignored by their size, at every threshold: set once.
        reachable = np.empty(nd, np.int64)
        n_reachable = 0
        for j in range(nd):
            if r[j] < max_det and not never_matched[d0 + j]:
                reachable[n_reachable] = j
                n_reachable += 1
        reachable = reachable[:n_reachable]
        for j in range(nd):
            if r[j] >= max_det:
                continue  # stays COCO_DROPPED
            w, h = det_xywh[d0 + j, 2], det_xywh[d0 + j, 3]
            det_area = w * h
            for a in range(n_area):
                outside = det_area < area_rngs[a, 0] or det_area > area_rngs[a, 1]
                unmatched[a] = COCO_IGNORED if outside else COCO_FP
            for t in range(n_thr):      # the row's [T, A] in memory order
                for a in range(n_area):
                    coco[d0 + j, t, a] = unmatched[a]
        if n_reachable == 0:
            continue
        gt_ignore = np.empty(ng, np.int64)
        for a in range(n_area):
            lo, hi = area_rngs[a, 0], area_rngs[a, 1]
            for g in range(ng):
                area = gt_area[g0 + g]
                gt_ignore[g] = 1 if crowd[g] or area < lo or area > hi else 0
            for t in range(n_thr):
                _greedy(reachable, r, max_det, same, ious, reach_same, coco_thrs[t], gt_in_order, gt_ignore,
                        crowd, det_match, det_ign, gt_match)
                for j in reachable:
                    if det_match[j] > -1:
                        coco[d0 + j, t, a] = COCO_IGNORED if det_ign[j] else COCO_TP
    return rank, outcome, out_gt, out_iou, gt_det, cm_det_gt, cm_ignored, cm_gt_det, coco, never_matched


@njit(cache=True)
def _interpolate(t, k, n_pos, tp, tp_prec, tp_rec, n_tp, rec_thrs, precision, recall):
    """COCO's precision envelope of class k at IoU threshold t, read at each recall threshold,
    and its recall: the end of pycocotools' accumulate for every (area range, maxDets)."""
    n_area, n_md = tp.shape
    for a in range(n_area):
        npig = n_pos[k, a]
        if npig == 0:
            continue
        for m in range(n_md):
            recall[t, k, a, m] = tp[a, m] / npig
            prec = tp_prec[a, m]
            count = n_tp[a, m]
            for i in range(count - 2, -1, -1):  # precision envelope
                if prec[i + 1] > prec[i]:
                    prec[i] = prec[i + 1]
            i = 0
            for ri in range(rec_thrs.shape[0]):
                while i < count and tp_rec[a, m, i] < rec_thrs[ri]:
                    i += 1
                precision[t, ri, k, a, m] = prec[i] if i < count else 0.0


@njit(cache=True)
def _accumulate_buffers(n_thr, n_cls, n_area, n_md, n_pos, rec_thrs):
    """The accumulate kernels' outputs, precision [T, R, K, A, M] and recall [T, K, A, M] at -1 (no
    GT), and their working buffers: one threshold at a time keeps the TP lists small (one per
    area and maxDets, as long as the most ground truth of a class)."""
    precision = -np.ones((n_thr, rec_thrs.shape[0], n_cls, n_area, n_md))
    recall = -np.ones((n_thr, n_cls, n_area, n_md))
    most = 1
    for k in range(n_cls):
        for a in range(n_area):
            most = max(most, n_pos[k, a])
    tp_prec = np.empty((n_area, n_md, most))
    tp_rec = np.empty((n_area, n_md, most))
    tp = np.zeros((n_area, n_md))
    fp = np.zeros((n_area, n_md))
    n_tp = np.zeros((n_area, n_md), np.int64)
    return precision, recall, tp_prec, tp_rec, tp, fp, n_tp


@njit(cache=True, nogil=True)  # core.evaluation runs it on a thread beside TIDE
def accumulate(coco, never_matched, class_start, rank, max_dets, n_pos, rec_thrs):
    """pycocotools' accumulate: precision [T, R, K, A, M] and recall [T, K, A, M] (-1: no GT).

    Every per-prediction array comes sorted by class, then in accumulate's merge order
    (descending score, image id, rank), so that the passes below read memory in order:
    coco [N, T, A]: status from match_images; never_matched [N]: overlaps no ground truth of
    its class enough to match at any threshold; rank [N]: rank within (image, class);
    class_start [K+1]: where each class begins; n_pos [K, A]: non-ignored ground truth. Only the true
    positives' positions matter: the interpolated precision at a recall threshold is the best
    precision of any TP at or after the first TP reaching it, so one pass per class and
    threshold fills every (A, M).
    """
    n_thr, n_area = coco.shape[1], coco.shape[2]
    n_cls, n_md = class_start.shape[0] - 1, max_dets.shape[0]
    eps = np.spacing(1.0)
    precision, recall, tp_prec, tp_rec, tp, fp, n_tp = _accumulate_buffers(n_thr, n_cls, n_area, n_md, n_pos,
                                                                           rec_thrs)
    uniform_fp = np.zeros((n_area, n_md))
    for k in range(n_cls):
        for t in range(n_thr):
            tp[:] = 0.0
            fp[:] = 0.0
            uniform_fp[:] = 0.0
            n_tp[:] = 0
            for d in range(class_start[k], class_start[k + 1]):
                if never_matched[d]:
                    # the same status at every threshold (FP, or ignored by size): a cheaper count
                    for a in range(n_area):
                        if coco[d, 0, a] == COCO_FP:
                            for m in range(n_md):
                                if rank[d] < max_dets[m]:
                                    uniform_fp[a, m] += 1
                    continue
                for a in range(n_area):
                    s = coco[d, t, a]
                    if s == COCO_TP:
                        for m in range(n_md):
                            if rank[d] < max_dets[m]:
                                tp[a, m] += 1
                                i = n_tp[a, m]
                                fp_here = fp[a, m] + uniform_fp[a, m]
                                tp_prec[a, m, i] = tp[a, m] / (fp_here + tp[a, m] + eps)
                                tp_rec[a, m, i] = tp[a, m] / n_pos[k, a]
                                n_tp[a, m] = i + 1
                    elif s == COCO_FP:
                        for m in range(n_md):
                            if rank[d] < max_dets[m]:
                                fp[a, m] += 1
            _interpolate(t, k, n_pos, tp, tp_prec, tp_rec, n_tp, rec_thrs, precision, recall)
    return precision, recall


REACHABLE = 128  # accumulate_reachable's flag bit: the prediction has a row in coco_reach


@njit(cache=True, nogil=True)  # core.evaluation runs it on a thread beside TIDE
def accumulate_reachable(flags, coco_reach, class_start, n_pos, rec_thrs):
    """`accumulate` with the never-matched predictions (most of them) given by one flag byte.

    flags [N] uint8 in accumulate's class order: bit a (a < 4) set where the prediction counts
    as a false positive at area range a when it is never matched; bit 4 + m (m < 3) set where
    its rank within (image, class) is below maxDets[m]; REACHABLE set where it may match at
    some threshold: its COCO status is then the next row of coco_reach [R, T, A], in the same
    order. A never-matched prediction has the same status at every threshold, so it is counted
    once per class, not once per threshold. Returns what `accumulate` returns, bit-equal.
    """
    n_thr, n_area, n_md = coco_reach.shape[1], coco_reach.shape[2], 3
    n_cls = class_start.shape[0] - 1
    eps = np.spacing(1.0)
    precision, recall, tp_prec, tp_rec, tp, fp, n_tp = _accumulate_buffers(n_thr, n_cls, n_area, n_md, n_pos,
                                                                           rec_thrs)
    uniform_fp = np.zeros((n_area, n_md), np.int64)
    first = 0                                                # this class's first row of coco_reach
    for k in range(n_cls):
        n_reach = 0
        for d in range(class_start[k], class_start[k + 1]):
            n_reach += flags[d] >= REACHABLE
        before = np.empty((n_reach, n_area, n_md), np.int64)  # never-matched FPs ahead of each
        reach_flags = np.empty(n_reach, np.uint8)
        uniform_fp[:] = 0
        i = 0
        for d in range(class_start[k], class_start[k + 1]):
            f = flags[d]
            if f >= REACHABLE:
                before[i] = uniform_fp
                reach_flags[i] = f
                i += 1
                continue
            for a in range(n_area):
                if f & (1 << a):
                    for m in range(n_md):
                        if f & (16 << m):
                            uniform_fp[a, m] += 1
        for t in range(n_thr):
            tp[:] = 0.0
            fp[:] = 0.0
            n_tp[:] = 0
            for i in range(n_reach):
                f = reach_flags[i]
                for a in range(n_area):
                    s = coco_reach[first + i, t, a]
                    if s == COCO_TP:
                        for m in range(n_md):
                            if f & (16 << m):
                                tp[a, m] += 1
                                j = n_tp[a, m]
                                fp_here = fp[a, m] + before[i, a, m]
                                tp_prec[a, m, j] = tp[a, m] / (fp_here + tp[a, m] + eps)
                                tp_rec[a, m, j] = tp[a, m] / n_pos[k, a]
                                n_tp[a, m] = j + 1
                    elif s == COCO_FP:
                        for m in range(n_md):
                            if f & (16 << m):
                                fp[a, m] += 1
            _interpolate(t, k, n_pos, tp, tp_prec, tp_rec, n_tp, rec_thrs, precision, recall)
        first += n_reach
    return precision, recall


_DIGIT_BITS = 11  # radix sort digit: 2048 buckets (their counts stay in L1), three passes over 32 bits
_SHORT_RUN = 32   # runs of equal high key halves up to this long are finished by insertion sort


@njit(cache=True, nogil=True)  # core.evaluation runs it on a thread beside the matcher
def class_score_order(score, cls, rows, n_classes):
    """accumulate's order, by class: (by_class, class_order) [N] int64.

    det_order = rows stably sorted by descending score (rows [N]: the predictions in the order
    ties keep, e.g. 0..N-1); class_order = det_order stably sorted by class (cls [N] in
    0..n_classes-1, indexed like score), and by_class [N] each one's position in det_order
    (class_order == det_order[by_class]). Equal to numpy's stable argsorts of -score[rows] and
    then of cls (-0.0 ties 0.0, NaN last): a least-significant-digit radix sort on the high
    32 bits of an order-preserving 64-bit key (three passes instead of a comparison sort's
    log2(N)), each run of equal high halves then ordered by the low halves (runs are short:
    scores that close are rare, equal scores already in order), then a counting sort by class.
    Each row's low half and class travel with it: no random reads after the first pass.
    """
    n = rows.shape[0]
    high, low = np.empty(n, np.uint32), np.empty(n, np.uint32)
    klass, order = np.empty(n, np.int32), np.empty(n, np.int32)   # positions in rows (N < 2**31)
    sign = np.uint64(1) << np.uint64(63)
    cast = np.empty(1)
    bits = cast.view(np.uint64)                                # a float's bits, without an array per row
    for i in range(n):
        value = score[rows[i]] + 0.0                           # -0.0 -> 0.0: they tie, as in numpy
        if np.isnan(value):
            key = ~np.uint64(0)                                # last, as numpy sorts NaN
        else:
            cast[0] = value
            key = bits[0]
            if not key & sign:                                 # (negative: its bits order it already)
                key = key ^ (sign - np.uint64(1))
        high[i], low[i] = np.uint32(key >> np.uint64(32)), np.uint32(key & np.uint64(0xFFFFFFFF))
        klass[i], order[i] = cls[rows[i]], i
    n_digits = (32 + _DIGIT_BITS - 1) // _DIGIT_BITS
    size = 1 << _DIGIT_BITS
    mask = np.uint32(size - 1)
    counts = np.zeros((n_digits, size), np.int64)
    for i in range(n):
        for p in range(n_digits):
            counts[p, (high[i] >> np.uint32(p * _DIGIT_BITS)) & mask] += 1
    other_high, other_low = np.empty(n, np.uint32), np.empty(n, np.uint32)
    other_klass, other_order = np.empty(n, np.int32), np.empty(n, np.int32)
    start = np.empty(size, np.int64)
    for p in range(n_digits):
        shift = np.uint32(p * _DIGIT_BITS)
        total = 0
        skip = False
        for b in range(size):
            if counts[p, b] == n:
                skip = True                                     # one digit value for all: order kept
            start[b] = total
            total += counts[p, b]
        if skip:
            continue
        for i in range(n):
            b = (high[i] >> shift) & mask
            j = start[b]
            start[b] = j + 1
            other_high[j], other_low[j], other_klass[j], other_order[j] = high[i], low[i], klass[i], order[i]
        high, other_high = other_high, high
        low, other_low = other_low, low
        klass, other_klass = other_klass, klass
        order, other_order = other_order, order
    i = 0
    while i < n:                                               # runs of equal high halves: by the low ones
        j = i + 1
        in_order = True
        while j < n and high[j] == high[i]:
            in_order = in_order and low[j - 1] <= low[j]
            j += 1
        if not in_order:
            if j - i <= _SHORT_RUN:
                for a in range(i + 1, j):                       # insertion sort: stable
                    x_low, x_klass, x_order = low[a], klass[a], order[a]
                    b = a - 1
                    while b >= i and low[b] > x_low:
                        low[b + 1], klass[b + 1], order[b + 1] = low[b], klass[b], order[b]
                        b -= 1
                    low[b + 1], klass[b + 1], order[b + 1] = x_low, x_klass, x_order
            else:
                by_low = np.argsort(low[i:j], kind="mergesort") + i   # stable
                low[i:j], klass[i:j], order[i:j] = low[by_low], klass[by_low], order[by_low]
        i = j
    class_start = np.zeros(n_classes + 1, np.int64)            # a counting sort by class (stable)
    for i in range(n):
        class_start[klass[i] + 1] += 1
    for k in range(n_classes):
        class_start[k + 1] += class_start[k]
    by_class = np.empty(n, np.int64)
    class_order = np.empty(n, np.int64)
    for i in range(n):                                         # det_order[i] is rows[order[i]]
        j = class_start[klass[i]]
        class_start[klass[i]] = j + 1
        by_class[j] = i
        class_order[j] = rows[order[i]]
    return by_class, class_order
