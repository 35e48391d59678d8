"""Evaluate a set of predictions against a dataset once; look at it at any score threshold.

    ev = evaluate(dataset, preds, iou_thr=0.5)   # matching, COCO stats, TIDE: the heavy part
    view = ev.at(0.3)                            # counts, P/R/F1, mAP@0.5, confusion: cheap

Engine: DetLens' own. COCO's matching (ten IoU thresholds, four area ranges) and the per-box
outcomes at `iou_thr` run compiled by numba in `core.matching_kernels` (built ahead of time by
`python -m core.kernel_build` when possible, see core.kernel_build), as does the accumulation into the
twelve COCO stats; TIDE dAP, threshold views, confusion matrix and curves are numpy.
Tests hold it to pycocotools (stats to 1e-9, confusion matrices), hotcoco (TIDE counts and
dAP) and the published reference cases. One deliberate difference from pycocotools: a ground
truth whose annotation id is 0 is matched like any other (pycocotools uses 0 as its
"unmatched" marker, so it counts that box as missed and its detection as a false positive).
A score threshold never re-runs the matching: deleting the boxes below t removes only the
tail of every score-ordered list, so a view equals a re-run (tested).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from core.outcomes import ERROR_TYPES, OUTCOME_CODES, PREDICTION_ERRORS, Outcome
from core.metrics import (COCO_AREA_RANGES, COCO_IOU_THRS, COCO_RECALL_THRS,
                          per_class_ap_from_precision, summarize)
from core.problems import Problem, Severity
from core.tables import Dataset, Predictions
from core.thresholds import Ranked, ThresholdView, lookup, threshold_curve
from core.tide import TideInput, tide_errors

MAX_DETS = 100         # COCO's maxDets for AP@[.5:.95], AP50 and the per-box outcomes
BACKGROUND_IOU = 0.1   # TIDE's bg_thresh

__all__ = ["evaluate", "Evaluation", "ThresholdView", "Outcome", "ERROR_TYPES", "PREDICTION_ERRORS"]


@dataclass
class Evaluation:
    """Everything computed once for a dataset and a set of predictions.

    stats: the 12 COCO stats (STAT_NAMES). per_class: category_id, name, ap, ap50, ap75 (COCO,
    NaN without ground truth), n_gt, n_pred. dets: one row per prediction on a known image of
    a known class, sorted by (image_index, -score): pred_index, image_index, category_id, score,
    x1, y1, x2, y2, outcome (Outcome value; "ignored" = left out by COCO: crowd region or
    beyond max_dets), iou, gt_index. gts: one row per annotation: ann_index, image_index,
    category_id, iscrowd, matched_pred, matched_score, iou, tide_missed (TIDE's Miss: unmatched
    and no classification/localization error to fix it). tide: error, count, dap in TIDE's
    order; tide_ap_base: the mAP the dAPs are gains over; tide_special: FalsePos / FalseNeg dAP.
    unknown_image_keys: prediction images the dataset lacks (left out); problems: what was
    left out and why. Outcomes, views and TIDE are at `iou_thr`; `stats` at COCO's thresholds.
    """

    dataset: Dataset
    iou_thr: float
    stats: dict
    per_class: pd.DataFrame
    tide: pd.DataFrame
    tide_ap_base: float
    tide_special: dict
    unknown_image_keys: np.ndarray
    problems: list[Problem] = field(default_factory=list)
    _ranked: Ranked = field(default=None, repr=False)
    _arrays: tuple = field(default=None, repr=False)  # what dets and gts are built from

    @cached_property
    def dets(self) -> pd.DataFrame:
        """One row per prediction (built on first use: a command line run never needs it)."""
        det, outcome, _ = self._arrays
        return _dets_table(det, outcome)

    @cached_property
    def gts(self) -> pd.DataFrame:
        """One row per annotation (built on first use)."""
        det, outcome, tide_missed = self._arrays
        return _gts_table(self.dataset, det, _gt_arrays(self.dataset), outcome, tide_missed)

    def at(self, score_thr: float) -> ThresholdView:
        """The evaluation with every prediction scoring below `score_thr` deleted."""
        return ThresholdView(self._ranked, float(score_thr), self, self.dataset)

    @cached_property
    def per_image(self) -> pd.DataFrame:
        """image_index, file_name, n_gt, n_pred, n_tp, n_fp, n_missed, ap50 (at no threshold)."""
        return self.at(-np.inf).per_image

    def threshold_curve(self, category_id: int | None = None, thresholds=None) -> pd.DataFrame:
        """score_thr, precision, recall, f1, map50 at each threshold (one class or all)."""
        return threshold_curve(self._ranked, category_id, thresholds)


def evaluate(dataset: Dataset, preds: Predictions, *, iou_thr: float = 0.5,
             max_dets: int = MAX_DETS) -> Evaluation:
    """Match, score and classify every prediction; COCO stats at IoU .50:.95, the rest at iou_thr.

    max_dets: COCO's maxDets[-1], the predictions kept per image and class (per image for
    the class-agnostic confusion matrix); the COCO stats use maxDets [1, 10, max_dets].
    """
    if not 0.0 < iou_thr <= 1.0:
        raise ValueError(f"Invalid iou_thr {iou_thr!r}. Only values in (0, 1] are supported.")
    if int(max_dets) < 1:
        raise ValueError(f"Invalid max_dets {max_dets!r}. Only positive integers are supported.")
    max_dets = int(max_dets)
    det, unknown_image_keys, problems = _known_predictions(dataset, preds)
    gt = _gt_arrays(dataset)
    n_images, n_classes = len(dataset.images), len(dataset.categories)

    from concurrent.futures import ThreadPoolExecutor

    # The accumulate order needs no matching: its sorts (numpy releases the GIL) run beside the
    # matcher's threads rather than after them, on a core of their own where there is one.
    with ThreadPoolExecutor(1) as pool:
        ordered = pool.submit(_class_order, det, dataset)
        outcome = _match(det, gt, n_images, iou_thr, max_dets)
        by_class, class_order = ordered.result()
    # COCO's accumulation (compiled, GIL released) runs on a thread while TIDE and the threshold
    # index are built here: neither needs the other.
    with ThreadPoolExecutor(1) as pool:
        accumulated = pool.submit(_coco_accumulate, outcome, det, gt, class_order, n_classes, max_dets)
        tide, ranked = _tide_and_ranked(dataset, det, gt, outcome, by_class, class_order, n_images, n_classes)
        precision, recall = accumulated.result()
    return Evaluation(
        dataset=dataset, iou_thr=iou_thr, stats=summarize(precision, recall),
        per_class=_per_class_table(dataset, det, gt, precision), tide=tide.table,
        tide_ap_base=tide.ap_base, tide_special=tide.special,
        unknown_image_keys=unknown_image_keys, problems=problems, _ranked=ranked,
        _arrays=(det, outcome, tide.missed_gt),
    )


def _tide_and_ranked(dataset: Dataset, det: _DetArrays, gt: _GtArrays, outcome: _Outcome, by_class: np.ndarray,
                     class_order: np.ndarray, n_images: int, n_classes: int) -> tuple:
    """TIDE's errors and the score-ranked index behind every threshold view.

    class_order [N]: rows by class, then in accumulate order (det_order); by_class [N]: the
    position in det_order of each, i.e. class_order == det_order[by_class]."""
    # TIDE's input in class order, in the narrowest exact types (a few 100 MB less at 10x scale)
    code = outcome.code.astype(np.int8)[class_order]                     # [N] in class order
    evaluated = code != Outcome.IGNORED.code
    every = bool(evaluated.all())
    rows = class_order if every else class_order[evaluated]              # sorted, as TIDE wants
    small = np.int16 if n_classes < 2 ** 15 else np.int64
    index = np.int32 if len(gt.cls) < 2 ** 31 else np.int64
    tide = tide_errors(TideInput(
        det_class=det.cls.astype(small)[rows], det_order=by_class if every else by_class[evaluated],
        det_code=code if every else code[evaluated], det_gt=outcome.gt.astype(index)[rows],
        gt_class=np.where(gt.crowd, -1, gt.cls), gt_used=outcome.gt_det >= 0, n_classes=n_classes,
    ))
    del code, evaluated, rows
    ranked = Ranked.build(
        det_image=det.image, det_cls=det.cls, det_score=det.score, det_code=outcome.code,
        class_order=class_order, gt_image=gt.image, gt_cls=gt.cls, gt_crowd=gt.crowd,
        gt_det=outcome.gt_det, cm_det_ignored=outcome.cm_ignored, cm_gt_det=outcome.cm_gt_det,
        category_ids=dataset.category_ids, category_names=dataset.categories["name"].tolist(),
        n_images=n_images, det_group_rank=outcome.group_rank,
    )
    return tide, ranked


def _known_predictions(dataset: Dataset, preds: Predictions) -> tuple["_DetArrays", np.ndarray, list[Problem]]:
    """The predictions on dataset images with dataset classes, in ev.dets order (by image, then
    descending score); the unknown image keys; a warning for each kind of box left out."""
    problems: list[Problem] = []
    image_of_key = dataset.image_index_of_file(preds.image_keys)                 # [R]
    det_image = image_of_key[preds.image_pos] if len(preds.image_pos) else np.zeros(0, np.int64)
    unknown_image_keys = np.asarray(preds.image_keys, dtype=object)[image_of_key < 0]
    if len(unknown_image_keys):
        problems.append(Problem(
            Severity.WARNING,
            f"{len(unknown_image_keys)} image(s) in the predictions are not in the ground truth "
            f"(first: {unknown_image_keys[0]!r}); their {int(np.sum(det_image < 0))} box(es) are "
            "left out of the metrics.", file=preds.source))
    class_of_label = _class_positions(dataset.category_ids, preds.labels)
    unknown_label = (class_of_label < 0) & (det_image >= 0)
    if unknown_label.any():
        bad = np.unique(preds.labels[unknown_label])
        problems.append(Problem(
            Severity.WARNING,
            f"{int(unknown_label.sum())} box(es) have a label that is not a category id of the "
            f"ground truth ({', '.join(map(str, bad[:10].tolist()))}); they are left out.",
            file=preds.source))
    known = (det_image >= 0) & (class_of_label >= 0)
    every = np.arange(len(known)) if known.all() else None
    rows = _image_then_score_order(every if every is not None else np.flatnonzero(known), det_image, preds.scores)
    if rows is every:
        take = _as_is         # all of them, already in order: no copies of the boxes (GBs at 10x)
    else:
        def take(values: np.ndarray) -> np.ndarray:
            return values[rows]
    det = _DetArrays(
        pred_index=rows, image=take(det_image), cls=take(class_of_label).astype(np.int64, copy=False),
        label=take(preds.labels).astype(np.int64, copy=False),
        score=take(preds.scores).astype(np.float64, copy=False), xyxy=take(preds.boxes_xyxy).reshape(-1, 4),
    )
    return det, unknown_image_keys, problems


def _as_is(values: np.ndarray) -> np.ndarray:
    return values


def _class_positions(category_ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[N] position of each label among the category ids, -1 where it is none of them."""
    ids = np.asarray(category_ids)
    if len(ids) and len(labels) and ids.dtype.kind in "iu" and 0 <= ids.min() and ids.max() < 1 << 20:
        table = np.full(int(ids.max()) + 2, -1, np.int64)   # a lookup table: 4.9 M labels in ms
        table[ids] = np.arange(len(ids))
        if labels.dtype.kind in "iu" and 0 <= labels.min() and labels.max() <= ids.max():
            return table[labels]                            # every label inside the table (usual)
        inside = (labels >= 0) & (labels <= ids.max())
        return np.where(inside, table[np.where(inside, labels, len(table) - 1)], -1)
    return pd.Index(ids).get_indexer(pd.Index(labels))


def _gt_arrays(dataset: Dataset) -> "_GtArrays":
    ann = dataset.annotations
    return _GtArrays(
        image=ann["image_index"].to_numpy(np.int64),
        cls=pd.Index(dataset.category_ids).get_indexer(pd.Index(ann["category_id"].to_numpy())).astype(np.int64),
        xywh=ann[["x", "y", "w", "h"]].to_numpy(np.float64).reshape(-1, 4),
        crowd=ann["iscrowd"].to_numpy().astype(bool),
        area=ann["area"].to_numpy(np.float64),
    )


def _dets_table(det: "_DetArrays", outcome: "_Outcome") -> pd.DataFrame:
    # the columns are the evaluation's own arrays, not copies (~0.4 GB at 10x scale); read-only
    return pd.DataFrame({
        "pred_index": det.pred_index, "image_index": det.image, "category_id": det.label,
        "score": det.score, "x1": det.xyxy[:, 0], "y1": det.xyxy[:, 1],
        "x2": det.xyxy[:, 2], "y2": det.xyxy[:, 3],
        "outcome": pd.Categorical.from_codes(outcome.code, categories=[e.value for e in OUTCOME_CODES]),
        "iou": outcome.iou, "gt_index": outcome.gt,
    }, copy=False)


def _gts_table(dataset: Dataset, det: "_DetArrays", gt: "_GtArrays", outcome: "_Outcome",
               tide_missed: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "ann_index": np.arange(len(gt.image)), "image_index": gt.image,
        "category_id": dataset.annotations["category_id"].to_numpy(), "iscrowd": gt.crowd.astype(np.int64),
        "matched_pred": lookup(det.pred_index, outcome.gt_det, -1),
        "matched_score": lookup(det.score, outcome.gt_det, np.nan),
        "iou": lookup(outcome.iou, outcome.gt_det, 0.0),
        "tide_missed": tide_missed,
    })


def _image_then_score_order(rows: np.ndarray, image: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """rows sorted by image, then descending score, stable (detectors' CSVs usually are)."""
    img, score = (image, scores) if len(rows) == len(image) else (image[rows], scores[rows])  # all: 0..N-1
    rises = np.flatnonzero(~(score[1:] <= score[:-1]))   # (or NaN): allowed only where a new image starts
    if np.all(img[1:] >= img[:-1]) and np.all(img[rises + 1] != img[rises]):
        return rows
    rows = rows[np.argsort(-score, kind="stable")]
    return rows[np.argsort(image[rows], kind="stable")]


def _stable_argsort_small(values: np.ndarray) -> np.ndarray:
    """Stable argsort of small non-negative ints (class positions): numpy radix-sorts int16."""
    small = values.astype(np.int16) if values.size and values.max() < 2 ** 15 else values
    return np.argsort(small, kind="stable")


@dataclass(frozen=True)
class _DetArrays:
    pred_index: np.ndarray  # [N] row in the Predictions arrays
    image: np.ndarray       # [N] dataset image index
    cls: np.ndarray         # [N] class position 0..K-1
    label: np.ndarray       # [N] category id
    score: np.ndarray       # [N]
    xyxy: np.ndarray        # [N, 4]

    @property
    def xywh(self) -> np.ndarray:
        xywh = self.xyxy.copy()
        xywh[:, 2:] -= xywh[:, :2]
        return xywh


@dataclass(frozen=True)
class _GtArrays:
    image: np.ndarray  # [G]
    cls: np.ndarray    # [G] class position
    xywh: np.ndarray   # [G, 4] as written in the json
    crowd: np.ndarray  # [G] bool
    area: np.ndarray   # [G] the json's area (COCO's size ranges use it)


@dataclass(frozen=True)
class _Outcome:
    code: np.ndarray        # [N] Outcome.code at iou_thr
    gt: np.ndarray          # [N] deciding ground truth or -1
    iou: np.ndarray         # [N]
    gt_det: np.ndarray      # [G] matched prediction (row in det arrays) or -1
    group_rank: np.ndarray  # [N] rank within (image, class)
    cm_det_gt: np.ndarray   # [N] class-agnostic match or -1
    cm_ignored: np.ndarray  # [N] bool: left out of the class-agnostic matching
    cm_gt_det: np.ndarray   # [G]
    never_matched: np.ndarray  # [N] bool: the same COCO status at every threshold
    coco_first: np.ndarray  # [N, A] COCO status at the first threshold: at all of them if never_matched
    coco_reach: np.ndarray  # [R, T, A] COCO status of the others (rows flatnonzero(~never_matched))

    @cached_property
    def coco(self) -> np.ndarray:
        """[N, T, A] COCO status per IoU threshold and area range (built on first use; kept
        compact otherwise: 35 MB instead of 196 MB at 10x scale)."""
        full = np.repeat(self.coco_first[:, None, :], self.coco_reach.shape[1], axis=1)
        full[~self.never_matched] = self.coco_reach
        return full

    @classmethod
    def compact_coco(cls, coco: np.ndarray, never_matched: np.ndarray) -> dict:
        """The coco_first and coco_reach fields of a full [N, T, A] status."""
        return {"coco_first": coco[:, 0, :].copy(), "coco_reach": coco[~never_matched]}


# core.matching_kernels' COCO_FP status and accumulate_reachable's REACHABLE flag (importing that
# module would load numba, which the ahead-of-time kernels spare a command-line run)
_COCO_FP, _REACHABLE = 0, 128

_ROWS_PER_CHUNK = 50_000  # below this many predictions per chunk a thread costs more than it saves


def _cores() -> int:
    """CPU cores this process may run on."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _match(det: _DetArrays, gt: _GtArrays, n_images: int, iou_thr: float, max_dets: int) -> _Outcome:
    """Run the compiled matcher over all images (predictions are already grouped by image)."""
    from core.kernel_build import kernels  # compiled code: loaded when evaluating, not on import

    gt_order = np.argsort(gt.image, kind="stable")                     # by image, ann order
    inverse = np.empty_like(gt_order)
    inverse[gt_order] = np.arange(len(gt_order))
    det_start = np.searchsorted(det.image, np.arange(n_images + 1))
    gt_start = np.searchsorted(gt.image[gt_order], np.arange(n_images + 1))
    gt_cls, gt_xywh, gt_crowd, gt_area = gt.cls[gt_order], gt.xywh[gt_order], gt.crowd[gt_order], gt.area[gt_order]
    match_images = kernels().match_images

    def run(i0: int, i1: int) -> tuple:
        """Match images i0..i1-1 on their own rows; indices come back global (annotation rows for
        the ground truth a prediction met)."""
        a, b, ga, gb = det_start[i0], det_start[i1], gt_start[i0], gt_start[i1]
        xywh = det.xyxy[a:b].copy()                                      # [n,4] this chunk's only
        xywh[:, 2:] -= xywh[:, :2]
        out = list(match_images(
            det_start[i0:i1 + 1] - a, det.cls[a:b], det.score[a:b], xywh, gt_start[i0:i1 + 1] - ga,
            gt_cls[ga:gb], gt_xywh[ga:gb], gt_crowd[ga:gb], gt_area[ga:gb], float(iou_thr), BACKGROUND_IOU,
            COCO_IOU_THRS, COCO_AREA_RANGES, max_dets))
        for position in (4, 7):                                        # gt_det, cm_gt_det: [G] pred rows
            out[position][out[position] > -1] += a
        for position in (2, 5):                                        # out_gt, cm_det_gt: -> ann rows
            found = out[position] >= 0
            out[position][found] = gt_order[out[position][found] + ga]
        return tuple(out)

    # Images are independent and the kernel releases the GIL: chunks of about equal prediction
    # count, a few per core, on threads. Each chunk's results are copied into the whole arrays
    # as soon as it is done and then dropped, so that no more than a chunk per core is held
    # twice (joining all chunks at the end held every result twice: ~0.5 GB at 10x scale); its
    # COCO status goes straight to the compact form (the whole [N, T, A] is never made).
    n_chunks = min(4 * _cores(), max(1, len(det.score) // _ROWS_PER_CHUNK))
    cuts = np.unique(np.searchsorted(det_start, np.linspace(0, len(det.score), n_chunks + 1)[1:-1]))
    bounds = [0, *cuts.tolist(), n_images]
    spans = [(i0, i1) for i0, i1 in zip(bounds[:-1], bounds[1:]) if i1 > i0] or [(0, n_images)]
    n, n_gt = len(det.score), len(gt_order)
    per_gt = (4, 7)                                                    # gt_det, cm_gt_det: [G]
    joined = [np.empty((n_gt if k in per_gt else n, *shape), dtype) for k, (shape, dtype) in
              enumerate(_MATCH_OUTPUTS[:8])]
    coco_first = np.empty((n, len(COCO_AREA_RANGES)), np.uint8)
    never_matched = np.empty(n, bool)
    reach = [None] * len(spans)                                        # each chunk's coco_reach rows

    def run_into(s: int) -> None:
        i0, i1 = spans[s]
        rows, gt_rows = slice(det_start[i0], det_start[i1]), slice(gt_start[i0], gt_start[i1])
        *parts, coco, never = run(i0, i1)
        for k, part in enumerate(parts):
            joined[k][gt_rows if k in per_gt else rows] = part
        coco_first[rows] = coco[:, 0, :]
        never_matched[rows] = never
        reach[s] = coco[~never]

    if len(spans) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(_cores(), len(spans))) as pool:
            list(pool.map(run_into, range(len(spans))))
    else:
        run_into(0)
    rank, code, out_gt, out_iou, gt_det, cm_det_gt, cm_ignored, cm_gt_det = joined
    return _Outcome(code=code, gt=out_gt, iou=out_iou, gt_det=gt_det[inverse],
                    group_rank=rank, cm_det_gt=cm_det_gt, cm_ignored=cm_ignored,
                    cm_gt_det=cm_gt_det[inverse], never_matched=never_matched, coco_first=coco_first,
                    coco_reach=np.concatenate(reach) if len(reach) > 1 else reach[0])


# match_images' outputs: per-row shape after the leading [N] (or [G]) and dtype
_MATCH_OUTPUTS = [((), np.int64), ((), np.int64), ((), np.int64), ((), np.float64), ((), np.int64),
                  ((), np.int64), ((), np.bool_), ((), np.int64),
                  ((len(COCO_IOU_THRS), len(COCO_AREA_RANGES)), np.uint8), ((), np.bool_)]


def _class_order(det: _DetArrays, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(by_class, class_order) [N]: rows by class, then in accumulate order (class_order), and
    each one's position in the accumulate order (class_order == _accumulate_order(...)[by_class])."""
    from core.kernel_build import kernels

    rows = _image_id_order(det, dataset)
    if len(det.score) >= 2 ** 31:                                       # beyond the kernel's int32 positions
        det_order = _accumulate_order(det, dataset)
        by_class = _stable_argsort_small(det.cls[det_order])
        return by_class, det_order[by_class]
    return kernels().class_score_order(det.score, det.cls, np.arange(len(det.score)) if rows is None else rows,
                                       len(dataset.categories))


def class_order_and_position(det: _DetArrays, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(class_order [N], position [N]): rows by class in accumulate order, and each row's place in
    the accumulate order; what TIDE per class, slices and COCO analyze re-match with."""
    by_class, class_order = _class_order(det, dataset)
    position = np.empty(len(class_order), np.int64)
    position[class_order] = by_class
    return class_order, position


def _image_id_order(det: _DetArrays, dataset: Dataset) -> np.ndarray | None:
    """Prediction rows stably sorted by the rank of their image's id; None where that is
    row order (image ids ascending in file order: the usual case)."""
    image_rank = np.empty(len(dataset.images), np.int64)
    image_rank[np.argsort(dataset.images["id"].to_numpy(), kind="stable")] = np.arange(len(image_rank))
    if not np.any(np.diff(image_rank) < 0):
        return None
    return np.argsort(image_rank[det.image], kind="stable")


def _accumulate_order(det: _DetArrays, dataset: Dataset) -> np.ndarray:
    """Prediction rows in pycocotools' accumulate order: descending score, stable over the
    per-image lists taken in ascending image id (numpy's sorts: the reference _class_order keeps)."""
    rows = _image_id_order(det, dataset)
    if rows is None:
        return np.argsort(-det.score, kind="stable")
    return rows[np.argsort(-det.score[rows], kind="stable")]


def _coco_accumulate(outcome: _Outcome, det: _DetArrays, gt: _GtArrays, class_order: np.ndarray,
                     n_classes: int, max_dets: int) -> tuple[np.ndarray, np.ndarray]:
    from core.kernel_build import kernels

    class_start = np.r_[0, np.cumsum(np.bincount(det.cls, minlength=n_classes))]   # class_order's
    lo, hi = COCO_AREA_RANGES[:, 0], COCO_AREA_RANGES[:, 1]
    in_range = (gt.area[:, None] >= lo) & (gt.area[:, None] <= hi) & ~gt.crowd[:, None]   # [G,A]
    n_pos = np.zeros((n_classes, len(lo)), np.int64)
    np.add.at(n_pos, gt.cls, in_range.astype(np.int64))
    # One flag byte per prediction (see accumulate_reachable) and the full COCO status of the
    # few that can match (8% at competition scale), in class order: no reordered copy of the
    # whole [N, T, A] status (196 MB at 10x), and never-matched boxes counted once, not per threshold.
    flags = np.zeros(len(class_order), np.uint8)                         # [N] in row order
    first_status = outcome.coco_first                                   # [N,A]
    for a in range(first_status.shape[1]):
        flags |= (first_status[:, a] == _COCO_FP).view(np.uint8) << a
    for m, cap in enumerate((1, 10, max_dets)):
        flags |= (outcome.group_rank < cap).view(np.uint8) << (4 + m)
    flags |= (~outcome.never_matched).view(np.uint8) * np.uint8(_REACHABLE)
    flags = flags[class_order]
    reachable = np.flatnonzero(~outcome.never_matched)                  # coco_reach's rows
    in_class_order = np.searchsorted(reachable, class_order[flags >= _REACHABLE])
    return kernels().accumulate_reachable(flags, outcome.coco_reach[in_class_order], class_start, n_pos,
                                          COCO_RECALL_THRS)


def _per_class_table(dataset: Dataset, det: _DetArrays, gt: _GtArrays, precision: np.ndarray) -> pd.DataFrame:
    k = len(dataset.categories)
    return pd.DataFrame({
        "category_id": dataset.categories["id"].to_numpy(),
        "name": dataset.categories["name"].to_numpy(),
        "ap": per_class_ap_from_precision(precision, None),
        "ap50": per_class_ap_from_precision(precision, 0),
        "ap75": per_class_ap_from_precision(precision, 5),
        "n_gt": np.bincount(gt.cls[~gt.crowd], minlength=k),
        "n_pred": np.bincount(det.cls, minlength=k),
    })

