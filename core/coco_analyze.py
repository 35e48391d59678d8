"""COCO's analyze() breakdown per class and overall, as MMDetection's
`tools/analysis_tools/coco_error_analysis.py` computes it, on DetLens' compiled matcher.

Seven PR curves per class and area (maxDets 100), each the precision at COCO's 101 recall
points: C75 and C50 (COCO at IoU .75 / .5), Loc (IoU .1: localisation errors forgiven), Sim
(IoU .1 with ground truth of the other classes of the same supercategory turned into crowd
regions of this class: confusions within a supercategory forgiven), Oth (the same with every
other class), BG (1 wherever Oth's precision is above 0: background false positives
forgiven) and FN (1: everything found). As in that script, a curve without ground truth is
0, so the overall curves average every class. Each modified evaluation re-matches exactly as
pycocotools would (crowd IoU, ignored boxes matched last), all classes in one pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.metrics import COCO_AREA_RANGES, COCO_RECALL_THRS

CURVES = ["C75", "C50", "Loc", "Sim", "Oth", "BG", "FN"]
AREAS = ["all", "small", "medium", "large"]
_IOUS = np.array([0.75, 0.5, 0.1])


@dataclass(frozen=True)
class Analyze:
    """ps [7, R, K, A]: precision per curve (CURVES), recall point, class, area (AREAS);
    has_sim: supercategories were given (else the Sim curve equals Oth)."""

    ps: np.ndarray
    category_ids: np.ndarray
    names: list
    has_sim: bool

    def ap(self, category_id: int | None = None, area: str = "all") -> pd.Series:
        """Area under each curve (its mean precision), one class or all (the mean of classes)."""
        a = AREAS.index(area)
        ps = self.ps[:, :, :, a]
        if category_id is not None:
            ps = ps[:, :, list(self.category_ids).index(category_id)]
        return pd.Series([float(p.mean()) for p in ps], index=CURVES)

    def curves(self, category_id: int | None = None, area: str = "all") -> pd.DataFrame:
        """recall, then one precision column per curve (averaged over classes when None)."""
        a = AREAS.index(area)
        ps = self.ps[:, :, :, a]
        ps = ps[:, :, list(self.category_ids).index(category_id)] if category_id is not None else ps.mean(axis=2)
        return pd.DataFrame({"recall": COCO_RECALL_THRS, **{c: ps[i] for i, c in enumerate(CURVES)}})


def supercategories_of(doc: dict) -> dict[int, str] | None:
    """category id -> supercategory from a COCO json dict, or None when a category lacks one."""
    cats = doc.get("categories") or []
    if not cats or any(not isinstance(c, dict) or "supercategory" not in c for c in cats):
        return None
    return {int(c["id"]): str(c["supercategory"]) for c in cats}


def coco_analyze(ev, supercategory: dict[int, str] | None = None) -> Analyze:
    """The seven curves of every class and area for the evaluation's predictions."""
    from core.evaluation import MAX_DETS, _gt_arrays, class_order_and_position

    det = ev._arrays[0]
    gt = _gt_arrays(ev.dataset)
    ids = ev.dataset.category_ids
    k, n_images = len(ids), len(ev.dataset.images)
    class_order, _ = class_order_and_position(det, ev.dataset)
    regular = ~gt.crowd
    in_area = (gt.area[:, None] >= COCO_AREA_RANGES[:, 0]) & (gt.area[:, None] <= COCO_AREA_RANGES[:, 1])
    n_pos = np.zeros((k, len(AREAS)), np.int64)
    np.add.at(n_pos, gt.cls, (in_area & regular[:, None]).astype(np.int64))

    def run(gt_cls, gt_xywh, gt_crowd, gt_area, gt_image, ious):
        from core.kernel_build import kernels

        order = np.argsort(gt_image, kind="stable")
        det_start = np.searchsorted(det.image, np.arange(n_images + 1))
        gt_start = np.searchsorted(gt_image[order], np.arange(n_images + 1))
        out = kernels().match_images(det_start, det.cls, det.score, det.xywh, gt_start, gt_cls[order],
                                     gt_xywh[order], gt_crowd[order], gt_area[order], float(ev.iou_thr), 0.1,
                                     ious, COCO_AREA_RANGES, MAX_DETS)
        rank, coco, never = out[0], out[8], out[9]
        class_start = np.searchsorted(det.cls[class_order], np.arange(k + 1))
        precision, _ = kernels().accumulate(coco[class_order], never[class_order], class_start, rank[class_order],
                                            np.array([MAX_DETS]), n_pos, COCO_RECALL_THRS)
        return precision[:, :, :, :, 0]                                   # [T, R, K, A]

    ps = np.zeros((len(CURVES), len(COCO_RECALL_THRS), k, len(AREAS)))
    ps[:3] = run(gt.cls, gt.xywh, gt.crowd, gt.area, gt.image, _IOUS)
    groups = np.zeros(k, np.int64)                                        # Oth: one group of all
    ps[4] = run(*_forgiving(det, gt, k, groups), _IOUS[2:])[0]
    if supercategory is not None:
        names = {s: i for i, s in enumerate(sorted(set(supercategory.values())))}
        groups = np.array([names[supercategory[int(c)]] for c in ids], np.int64)
        ps[3] = run(*_forgiving(det, gt, k, groups), _IOUS[2:])[0]
    else:
        ps[3] = ps[4]
    ps[ps == -1] = 0                                                      # the script's own rule
    ps[5] = ps[4] > 0
    ps[6] = 1.0
    return Analyze(ps=ps, category_ids=np.asarray(ids), names=ev.dataset.categories["name"].astype(str).tolist(),
                   has_sim=supercategory is not None)


def _forgiving(det, gt, k: int, groups: np.ndarray):
    """The ground truth plus, for every class k predicted in an image, each box of another class
    of k's group in that image as a crowd region of class k (the script relabels them; only
    class k's predictions look at class k's boxes, so one pass serves every class)."""
    n_images = int(max(det.image.max(initial=-1), gt.image.max(initial=-1))) + 1
    predicted = np.zeros((n_images, k), bool)
    predicted[det.image, det.cls] = True
    # pairs (ground truth g, class c) with c predicted in g's image, c != g's class, same group
    g_rows, c_cols = np.nonzero(predicted[gt.image])                      # [P] each
    keep = (c_cols != gt.cls[g_rows]) & (groups[c_cols] == groups[gt.cls[g_rows]])
    g_rows, c_cols = g_rows[keep], c_cols[keep]
    # annotation order within an image (pycocotools' order) is kept: copies sort after the originals
    return (np.r_[gt.cls, c_cols], np.r_[gt.xywh, gt.xywh[g_rows]].reshape(-1, 4),
            np.r_[gt.crowd, np.ones(len(g_rows), bool)], np.r_[gt.area, gt.area[g_rows]],
            np.r_[gt.image, gt.image[g_rows]])
