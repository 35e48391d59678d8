"""Compiled (numba) loops for slices: COCO matching restricted to a subset, and AP per group.

A slice is pycocotools' `areaRng` generalised: ground truth outside the slice is ignored
(matched last, its matches ignored) and an unmatched prediction outside the slice is ignored,
so a size slice is pycocotools with that areaRng and an image slice (every box of its images
in, every other box out) is pycocotools with `imgIds` restricted. The matching loop is
core.matching_kernels' own, so a slice re-matches exactly as pycocotools would.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from core.matching_kernels import COCO_DROPPED, COCO_FP, COCO_IGNORED, COCO_TP, _greedy, _image_ious


@njit(cache=True, nogil=True)
def match_slices(det_start, det_cls, det_xywh, gt_start, gt_cls, gt_xywh, gt_crowd,
                 gt_in, det_in, thrs, max_det):
    """COCO status [N, T, S] of every prediction at each IoU threshold in each slice.

    Predictions grouped by image, by descending score within one (ev.dets order); ground
    truth grouped by image in annotation order. gt_in [G, S], det_in [N, S]: membership.
    Status: COCO_TP / COCO_FP / COCO_IGNORED (not counted: outside, or matched an ignored
    box) / COCO_DROPPED (beyond max_det in its image and class).
    """
    n, n_thr, n_sl = det_cls.shape[0], thrs.shape[0], gt_in.shape[1]
    status = np.full((n, n_thr, n_sl), COCO_IGNORED, np.uint8)
    n_cls = 1
    for j in range(n):
        n_cls = max(n_cls, det_cls[j] + 1)
    for g in range(gt_cls.shape[0]):
        n_cls = max(n_cls, gt_cls[g] + 1)
    seen = np.zeros(n_cls, np.int64)
    for i in range(det_start.shape[0] - 1):
        d0, d1, g0, g1 = det_start[i], det_start[i + 1], gt_start[i], gt_start[i + 1]
        nd, ng = d1 - d0, g1 - g0
        if nd == 0:
            continue
        ious = np.empty((0, 0))
        have_ious = False
        d_cls = det_cls[d0:d1]
        g_cls = gt_cls[g0:g1]
        crowd = gt_crowd[g0:g1]
        same = np.empty((nd, ng), np.bool_)
        reach = np.zeros(nd)
        rank = np.zeros(nd, np.int64)
        seen[:] = 0
        for j in range(nd):
            rank[j] = seen[d_cls[j]]
            seen[d_cls[j]] += 1
        in_order = np.arange(nd)
        gt_in_order = np.arange(ng)
        det_match = np.empty(nd, np.int64)
        det_ign = np.empty(nd, np.bool_)
        gt_match = np.empty(ng, np.int64)
        gt_ignore = np.empty(ng, np.int64)
        for s in range(n_sl):
            touched = False
            for j in range(nd):
                touched = touched or det_in[d0 + j, s]
            for g in range(ng):
                touched = touched or gt_in[g0 + g, s]
            if not touched:
                continue  # nothing of this image in the slice: every prediction stays ignored
            if not have_ious:  # computed once per image, for the first slice that needs them
                ious = _image_ious(d0, d1, g0, g1, det_xywh, gt_xywh, gt_crowd)
                for j in range(nd):
                    for g in range(ng):
                        same[j, g] = d_cls[j] == g_cls[g]
                        if same[j, g]:
                            reach[j] = max(reach[j], ious[j, g])
                have_ious = True
            for g in range(ng):
                gt_ignore[g] = 1 if crowd[g] or not gt_in[g0 + g, s] else 0
            for t in range(n_thr):
                _greedy(in_order, rank, max_det, same, ious, reach, thrs[t], gt_in_order, gt_ignore,
                        crowd, det_match, det_ign, gt_match)
                for j in range(nd):
                    row = d0 + j
                    if rank[j] >= max_det:
                        status[row, t, s] = COCO_DROPPED
                    elif det_match[j] > -1:
                        status[row, t, s] = COCO_IGNORED if det_ign[j] else COCO_TP
                    else:
                        status[row, t, s] = COCO_FP if det_in[d0 + j, s] else COCO_IGNORED
    return status


@njit(cache=True, nogil=True)
def true_positives(status, member, cls, score, n_classes, eval_t):
    """The TPs of every (threshold, slice, class) group, with their position among the counted
    predictions of the group in accumulate order, and the counted predictions at eval_t.

    status [N, T, S] per slice, or [N, T, 1] the whole set's with member [N, S] saying which
    slices a prediction is in (an image slice: outside, it is not counted); member [N, 0]
    otherwise. Every array's rows sorted by class, then in pycocotools' accumulate order (so
    that the passes read memory in order). Returns group_start [T*S*K+1] (group = (t*S + s)*K + k), tp_pos and
    tp_score by group then position, and counted [N, S] (in class order) at eval_t.
    """
    n_thr = status.shape[1]
    by_member = member.shape[1] > 0
    n_sl = member.shape[1] if by_member else status.shape[2]
    n = cls.shape[0]
    n_groups = n_thr * n_sl * n_classes
    counts = np.zeros(n_groups, np.int64)
    for d in range(n):
        c = cls[d]
        for s in range(n_sl):
            if by_member and not member[d, s]:
                continue
            for t in range(n_thr):
                if status[d, t, 0 if by_member else s] == COCO_TP:
                    counts[(t * n_sl + s) * n_classes + c] += 1
    group_start = np.zeros(n_groups + 1, np.int64)
    for g in range(n_groups):
        group_start[g + 1] = group_start[g] + counts[g]
    fill = group_start[:-1].copy()
    tp_pos = np.empty(group_start[-1], np.int64)
    tp_score = np.empty(group_start[-1])
    counted = np.zeros((n_thr, n_sl), np.int64)
    counted_eval = np.zeros((n, n_sl), np.bool_)
    previous = -1
    for d in range(n):
        c = cls[d]
        if c != previous:
            counted[:, :] = 0
            previous = c
        for s in range(n_sl):
            if by_member and not member[d, s]:
                continue
            for t in range(n_thr):
                st = status[d, t, 0 if by_member else s]
                if st == COCO_TP:
                    g = (t * n_sl + s) * n_classes + c
                    tp_pos[fill[g]] = counted[t, s]
                    tp_score[fill[g]] = score[d]
                    fill[g] += 1
                    counted[t, s] += 1
                    if t == eval_t:
                        counted_eval[d, s] = True
                elif st == COCO_FP:
                    counted[t, s] += 1
                    if t == eval_t:
                        counted_eval[d, s] = True
    return group_start, tp_pos, tp_score, counted_eval


@njit(cache=True, nogil=True)
def group_ap(group_start, tp_pos, tp_score, n_gt, score_thr, rec_thrs):
    """101-point COCO AP per group ([G], NaN without ground truth) and TP count per group,
    keeping the predictions scoring >= score_thr (a prefix of each group's list).

    pycocotools' accumulate from the TPs alone: precision tp / (position + 1 + eps), its
    envelope from the right, sampled at the first TP whose recall reaches each threshold.
    """
    n_groups = group_start.shape[0] - 1
    eps = np.spacing(1.0)
    ap = np.full(n_groups, np.nan)
    n_tp = np.zeros(n_groups, np.int64)
    n_rec = rec_thrs.shape[0]
    for g in range(n_groups):
        a, b = group_start[g], group_start[g + 1]
        while b > a and tp_score[b - 1] < score_thr:
            b -= 1
        n_tp[g] = b - a
        if n_gt[g] <= 0:
            continue
        m = b - a
        if m == 0:
            ap[g] = 0.0
            continue
        prec = np.empty(m)
        rec = np.empty(m)
        for i in range(m):
            prec[i] = (i + 1) / (tp_pos[a + i] + 1 + eps)
            rec[i] = (i + 1) / n_gt[g]
        for i in range(m - 2, -1, -1):
            if prec[i + 1] > prec[i]:
                prec[i] = prec[i + 1]
        total = 0.0
        i = 0
        for r in range(n_rec):
            while i < m and rec[i] < rec_thrs[r]:
                i += 1
            if i < m:
                total += prec[i]
        ap[g] = total / n_rec
    return ap, n_tp
