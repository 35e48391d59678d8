"""Where the score threshold is applied: views of predictions (`PredictionView`) and of an
evaluation (`ThresholdView`) at a score threshold, and curves over thresholds.

`at_or_above` and the views are the one place the cut `score >= score_thr` is written; every
page, widget and core module asks them. Every evaluation view is arithmetic over arrays prepared
once (`Ranked`): keeping the predictions with score >= t keeps a prefix of every score-ordered
list, so outcomes, matches, the TP positions that AP depends on and the class-agnostic matches
of the confusion matrix all stay valid.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from core import browse
from core.outcomes import OUTCOME_CODES, PREDICTION_ERRORS, Outcome
from core.metrics import interpolated_ap

_N_CODES = len(OUTCOME_CODES)
_TP = Outcome.TP.code
_IGNORED = Outcome.IGNORED.code


@dataclass(frozen=True)
class Ranked:
    """Arrays behind the threshold views; det arrays are in ev.dets row order.

    tp_*: the true positives sorted by (class, score order), with their position among the
    counted (not ignored) predictions of their class. img_tp_*: the same per (image, class)
    group. cm_*: class-agnostic matches for the confusion matrix.
    """

    det_image: np.ndarray
    det_cls: np.ndarray
    det_score: np.ndarray
    det_code: np.ndarray
    gt_image: np.ndarray
    gt_cls: np.ndarray
    gt_regular: np.ndarray
    gt_matched_score: np.ndarray     # [G] score of the matching prediction, NaN if none
    n_gt: np.ndarray                 # [K] regular ground truth per class
    tp_cls: np.ndarray
    tp_pos: np.ndarray
    tp_score: np.ndarray
    group_image: np.ndarray          # [Q] image of each (image, class) group
    group_n_gt: np.ndarray           # [Q]
    group_best_score: np.ndarray     # [Q] highest score of a counted prediction, NaN if none
    det_group: np.ndarray            # [N] group of each prediction
    img_tp_group: np.ndarray
    img_tp_pos: np.ndarray
    img_tp_score: np.ndarray
    cm_gt_cls: np.ndarray            # [G] class of regular GT (crowd: -1)
    cm_gt_score: np.ndarray          # [G] score of its class-agnostic match, NaN if none
    cm_gt_pred_cls: np.ndarray       # [G] class of that match, -1 if none
    cm_det_counted: np.ndarray       # [N] bool: not ignored in class-agnostic matching
    cm_det_matched: np.ndarray       # [N] bool
    category_ids: np.ndarray
    category_names: list
    n_images: int

    @classmethod
    def build(cls, *, det_image, det_cls, det_score, det_code, class_order,
              gt_image, gt_cls, gt_crowd, gt_det, cm_det_ignored, cm_gt_det,
              category_ids, category_names, n_images, det_group_rank=None) -> "Ranked":
        """class_order: prediction rows sorted by class, then pycocotools' accumulate order.
        Prediction rows themselves are sorted by image, then descending score (stable).
        det_group_rank [N]: each row's rank within its (image, class) in row order (the
        matcher's); computed here when absent."""
        k = len(category_ids)
        counted = det_code != _IGNORED
        is_tp = det_code == _TP
        regular = ~gt_crowd
        every = bool(counted.all())
        rows = class_order if every else class_order[counted[class_order]]
        tp_at = np.flatnonzero(is_tp[rows])                                # [P] places in rows
        tp_rows = rows[tp_at]
        tp_cls = det_cls[tp_rows]
        class_start = np.r_[0, np.cumsum(np.bincount(det_cls if every else det_cls[counted], minlength=k))]
        tp_pos, tp_score = tp_at - class_start[tp_cls], det_score[tp_rows]
        # (image, class) groups, dense: group = image * K + class. A TP's place among the counted
        # predictions of its group is its rank there less the ignored ones ranked ahead of it.
        det_group = det_image * k + det_cls
        group_n_gt = np.bincount(gt_image[regular] * k + gt_cls[regular], minlength=n_images * k)
        if det_group_rank is None:
            det_group_rank = _rank_in_group(det_group)
        tp_rows = np.flatnonzero(is_tp)                                    # by image, then score
        img_tp_pos = det_group_rank[tp_rows]
        if not every:
            ignored = np.flatnonzero(~counted)
            key = np.sort(det_group[ignored] * len(det_group) + ignored)   # (group, row) of each
            tp_group = det_group[tp_rows]
            img_tp_pos = img_tp_pos - (np.searchsorted(key, tp_group * len(det_group) + tp_rows)
                                       - np.searchsorted(key, tp_group * len(det_group)))
        by_group = np.lexsort((img_tp_pos, det_group[tp_rows]))
        tp_rows, img_tp_pos = tp_rows[by_group], img_tp_pos[by_group]
        group_best_score = np.full(n_images * k, np.nan)                  # [Q] NaN: no counted one
        if every:  # each group's first row is its best (rows: descending score within an image)
            first = np.flatnonzero(det_group_rank == 0)
            group_best_score[det_group[first]] = det_score[first]
        else:
            best = np.full(n_images * k, -np.inf)
            np.maximum.at(best, det_group[counted], det_score[counted])
            has_pred = np.bincount(det_group[counted], minlength=n_images * k) > 0
            group_best_score[has_pred] = best[has_pred]
        cm_matched = (cm_gt_det >= 0) & regular
        cm_det_matched = np.zeros(len(det_score), bool)
        cm_det_matched[cm_gt_det[cm_matched]] = True
        return cls(
            det_image=det_image, det_cls=det_cls, det_score=det_score, det_code=det_code,
            gt_image=gt_image, gt_cls=gt_cls, gt_regular=regular,
            gt_matched_score=lookup(det_score, gt_det, np.nan),
            n_gt=np.bincount(gt_cls[regular], minlength=k).astype(np.float64),
            tp_cls=tp_cls, tp_pos=tp_pos, tp_score=tp_score,
            group_image=np.arange(n_images * k) // k, group_n_gt=group_n_gt.astype(np.float64),
            group_best_score=group_best_score,
            det_group=det_group,
            img_tp_group=det_group[tp_rows], img_tp_pos=img_tp_pos, img_tp_score=det_score[tp_rows],
            cm_gt_cls=np.where(regular, gt_cls, -1),
            cm_gt_score=lookup(det_score, np.where(cm_matched, cm_gt_det, -1), np.nan),
            cm_gt_pred_cls=lookup(det_cls, np.where(cm_matched, cm_gt_det, -1), -1),
            cm_det_counted=~cm_det_ignored, cm_det_matched=cm_det_matched,
            category_ids=np.asarray(category_ids), category_names=list(category_names),
            n_images=n_images,
        )

    def class_ap(self, score_thr: float) -> np.ndarray:
        """[K] COCO AP at the matching IoU per class with predictions below score_thr deleted."""
        keep = self.tp_score >= score_thr
        return interpolated_ap(self.tp_cls[keep], self.tp_pos[keep], self.n_gt)


def at_or_above(scores: np.ndarray, score_thr) -> np.ndarray:
    """[N] bool: the scores kept at score_thr (a number, or [N] per-box thresholds)."""
    return np.asarray(scores, dtype=np.float64) >= score_thr


def lookup(values: np.ndarray, index: np.ndarray, missing) -> np.ndarray:
    """values[index] where index >= 0, `missing` where it is -1 (safe when values is empty)."""
    out = np.full(len(index), missing, dtype=np.result_type(values.dtype, np.asarray(missing).dtype))
    found = index >= 0
    out[found] = values[index[found]]
    return out


def _rank_in_group(group: np.ndarray) -> np.ndarray:
    """[N] rank of each row among the earlier rows of its group (row order)."""
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    first = np.searchsorted(sorted_group, sorted_group)                   # start of each one's group
    rank = np.empty(len(group), np.int64)
    rank[order] = np.arange(len(group)) - first
    return rank


class ThresholdView:
    """The evaluation with the predictions scoring below `score_thr` deleted; lazy, cheap.

    A view holds its evaluation (its tables come from it): a cache must not keep views longer
    than their evaluation, or it keeps the evaluation alive (ui.loaders.derived does not).
    """

    def __init__(self, ranked: Ranked, score_thr: float, evaluation, dataset):
        self._r = ranked
        self.score_thr = score_thr
        self._evaluation = evaluation  # its dets / gts tables, built when a view first needs them
        self._dataset = dataset
        self.keep = ranked.det_score >= score_thr                      # [N] rows of ev.dets kept
        self.missed = ranked.gt_regular & ~(ranked.gt_matched_score >= score_thr)  # [G]

    @property
    def evaluation(self):
        """The Evaluation this view cuts (read-only)."""
        return self._evaluation

    @cached_property
    def dets(self) -> pd.DataFrame:
        return self._evaluation.dets[self.keep]

    @property
    def n_kept(self) -> int:
        """len(self.dets), without building that table (490,000 rows at competition scale)."""
        return int(np.count_nonzero(self.keep))

    @cached_property
    def gts(self) -> pd.DataFrame:
        return self._evaluation.gts.assign(missed=self.missed)

    @cached_property
    def counts(self) -> dict:
        """Outcome value -> count, incl. "tp", "missed" (all unmatched GT) and "ignored"."""
        per_code = np.bincount(self._r.det_code[self.keep], minlength=_N_CODES)
        counts = {e.value: int(per_code[e.code]) for e in OUTCOME_CODES}
        counts[Outcome.MISSED.value] = int(self.missed.sum())
        return counts

    @property
    def n_tp(self) -> int:
        return self.counts[Outcome.TP.value]

    @property
    def n_fp(self) -> int:
        return sum(self.counts[e.value] for e in PREDICTION_ERRORS)

    @property
    def precision(self) -> float:
        return _ratio(self.n_tp, self.n_tp + self.n_fp)

    @property
    def recall(self) -> float:
        return _ratio(self.n_tp, int(self._r.gt_regular.sum()))

    @property
    def f1(self) -> float:
        return _f1(self.precision, self.recall)

    @cached_property
    def class_ap50(self) -> np.ndarray:
        return self._r.class_ap(self.score_thr)

    @property
    def map50(self) -> float:
        """COCO AP at the evaluation's IoU threshold, mean over classes with ground truth."""
        ap = self.class_ap50
        return float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")

    @cached_property
    def per_class(self) -> pd.DataFrame:
        r, k = self._r, len(self._r.category_ids)
        per = np.bincount(r.det_cls[self.keep] * _N_CODES + r.det_code[self.keep],
                          minlength=k * _N_CODES).reshape(k, _N_CODES)
        table = pd.DataFrame({"category_id": r.category_ids, "name": r.category_names})
        table["tp"] = per[:, _TP]
        for error in PREDICTION_ERRORS:
            table[error.value] = per[:, error.code]
        table["missed"] = np.bincount(r.gt_cls[self.missed], minlength=k)
        n_fp = per[:, [e.code for e in PREDICTION_ERRORS]].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            table["precision"] = per[:, _TP] / (per[:, _TP] + n_fp)
            table["recall"] = per[:, _TP] / r.n_gt
            p, rc = table["precision"].to_numpy(), table["recall"].to_numpy()
            table["f1"] = np.where(p + rc > 0, 2 * p * rc / (p + rc), 0.0)
            table.loc[np.isnan(p) | np.isnan(rc), "f1"] = np.nan
        table["ap50"] = self.class_ap50
        return table

    @cached_property
    def per_image(self) -> pd.DataFrame:
        """image_index, file_name, n_gt, n_pred, n_tp, n_fp, n_missed, ap50 per dataset image.

        ap50: mean over the image's classes of COCO AP on that image alone; a class with
        predictions but no ground truth there counts 0; NaN with neither.
        """
        r = self._r
        per = np.bincount(r.det_image[self.keep] * _N_CODES + r.det_code[self.keep],
                          minlength=r.n_images * _N_CODES).reshape(r.n_images, _N_CODES)
        keep_tp = r.img_tp_score >= self.score_thr
        group_ap = interpolated_ap(r.img_tp_group[keep_tp], r.img_tp_pos[keep_tp], r.group_n_gt)
        # a group has a counted prediction at t when its best-scoring one reaches t
        group_has_pred = r.group_best_score >= self.score_thr
        group_ap = np.where(np.isnan(group_ap) & group_has_pred, 0.0, group_ap)
        valid = ~np.isnan(group_ap)
        ap_sum = np.bincount(r.group_image[valid], weights=group_ap[valid], minlength=r.n_images)
        ap_n = np.bincount(r.group_image[valid], minlength=r.n_images)
        with np.errstate(divide="ignore", invalid="ignore"):
            ap50 = np.where(ap_n > 0, ap_sum / ap_n, np.nan)
        return pd.DataFrame({
            "image_index": np.arange(r.n_images),
            "file_name": self._dataset.images["file_name"].array,  # as stored: no string re-conversion
            "n_gt": np.bincount(r.gt_image[r.gt_regular], minlength=r.n_images),
            "n_pred": per.sum(axis=1),
            "n_tp": per[:, _TP],
            "n_fp": per[:, [e.code for e in PREDICTION_ERRORS]].sum(axis=1),
            "n_missed": np.bincount(r.gt_image[self.missed], minlength=r.n_images),
            "ap50": ap50,
        })

    @cached_property
    def cm_found(self) -> np.ndarray:
        """[G] bool: regular GT whose class-agnostic match (confusion matrix) is kept."""
        return (self._r.cm_gt_cls >= 0) & (self._r.cm_gt_score >= self.score_thr)

    @cached_property
    def confusion(self) -> pd.DataFrame:
        """(K+1)x(K+1) counts: rows GT class + "background", columns predicted class + "background".

        Class-agnostic matching at the IoU threshold: cell [g, p] counts ground truths of class
        g matched by a prediction of class p; row "background" holds unmatched predictions,
        column "background" unmatched ground truths.
        """
        r, k = self._r, len(self._r.category_ids)
        matrix = np.zeros((k + 1, k + 1), np.int64)
        found = self.cm_found
        np.add.at(matrix, (r.cm_gt_cls[found], r.cm_gt_pred_cls[found]), 1)
        missed = (r.cm_gt_cls >= 0) & ~found
        matrix[:k, k] = np.bincount(r.cm_gt_cls[missed], minlength=k)
        stray = self.keep & r.cm_det_counted & ~r.cm_det_matched
        matrix[k, :k] = np.bincount(r.det_cls[stray], minlength=k)
        labels = list(r.category_names) + ["background"]
        return pd.DataFrame(matrix, index=pd.Index(labels, name="gt"), columns=pd.Index(labels, name="pred"))

    def class_outcome_counts(self, boxes: "browse.ClassBoxes") -> dict[str, int]:
        """Outcome value -> count of one class's kept boxes (boxes: core.browse.class_boxes of
        this evaluation); "missed" counts its regular GT that no kept prediction matches."""
        kept = at_or_above(boxes.det_score, self.score_thr)  # a prefix: det_score is descending
        per_code = np.bincount(boxes.det_code[kept], minlength=_N_CODES)
        counts = {e.value: int(per_code[e.code]) for e in OUTCOME_CODES}
        counts[Outcome.MISSED.value] = int(np.count_nonzero(self.missed[boxes.gt_rows]))
        return counts

    def class_outcome_rows(self, boxes: "browse.ClassBoxes", outcome: str, n: int) -> pd.DataFrame:
        """The first n kept boxes of one class with `outcome`: rows of ev.dets, highest score
        first; for "missed", rows of ev.gts (plus area), largest first. No full-table filtering."""
        if outcome == Outcome.MISSED.value:
            missed = self.missed[boxes.gt_rows]
            return self._evaluation.gts.iloc[boxes.gt_rows[missed][:n]].assign(area=boxes.gt_area[missed][:n])
        wanted = at_or_above(boxes.det_score, self.score_thr) & (boxes.det_code == Outcome(outcome).code)
        return self._evaluation.dets.iloc[boxes.det_rows[wanted][:n]]


class PredictionView:
    """These predictions at this score threshold, with or without ground truth: one surface.

    dataset: the images the boxes are placed on (None: none known). evaluated: the evaluation's
    ThresholdView at the same threshold; without it, outcome columns (outcome, iou, n_tp, ...)
    are absent or NaN, never faked. Lazy and cheap: build one per threshold.
    """

    def __init__(self, predictions, score_thr: float, dataset=None,
                 evaluated: ThresholdView | None = None):
        if evaluated is not None and evaluated.score_thr != score_thr:
            raise ValueError(f"Invalid evaluated view at score {evaluated.score_thr!r}: "
                             f"this view is at {score_thr!r}; only the same threshold is supported.")
        self.predictions = predictions
        self.score_thr = float(score_thr)
        self.dataset = dataset
        self.evaluated = evaluated

    @property
    def has_outcomes(self) -> bool:
        return self.evaluated is not None

    @cached_property
    def keep(self) -> np.ndarray:
        """[N] bool over the Predictions rows: score >= score_thr."""
        return at_or_above(self.predictions.scores, self.score_thr)

    @cached_property
    def kept(self):
        """The Predictions restricted to the kept boxes (every image keeps its entry)."""
        return self.predictions.subset(self.keep)

    @property
    def n_kept(self) -> int:
        return int(self.keep.sum())

    @cached_property
    def image_index(self) -> np.ndarray:
        """[N] dataset image index of every box; -1 on images the dataset lacks (all without one)."""
        if self.dataset is None:
            return np.full(len(self.predictions), -1, np.int64)
        return self.predictions.image_index_in(self.dataset)

    @cached_property
    def boxes_per_key(self) -> np.ndarray:
        """[R] kept boxes on each image of predictions.image_keys."""
        preds = self.predictions
        return np.bincount(preds.image_pos[self.keep], minlength=len(preds.image_keys))

    @cached_property
    def top_score_per_key(self) -> np.ndarray:
        """[R] highest kept score on each image of predictions.image_keys; NaN where none is kept."""
        # Keeping is monotone in the score: an image's best kept box is its best box, if kept.
        top = self.predictions.top_score_per_key
        return np.where(at_or_above(top, self.score_thr), top, np.nan)

    def boxes_per_image(self, known: np.ndarray | None = None) -> np.ndarray:
        """[dataset images] kept boxes on each dataset image (known: [N] bool, boxes to count)."""
        keep = self.keep & (self.image_index >= 0)
        if known is not None:
            keep &= known
        n_images = len(self.dataset.images) if self.dataset is not None else 0
        return np.bincount(self.image_index[keep], minlength=n_images)

    def top_scores(self, keys) -> np.ndarray:
        """[len(keys)] highest kept score on each image key; NaN where it has none."""
        position = self.predictions.key_position(keys)
        return np.where(position >= 0, self.top_score_per_key[np.maximum(position, 0)], np.nan) \
            if len(self.top_score_per_key) else np.full(len(position), np.nan)

    @property
    def class_names(self) -> dict[int, str]:
        return self.dataset.category_names if self.dataset is not None else {}

    def image_table(self) -> pd.DataFrame:
        """One row per browsable image (core.browse.TABLE_COLUMNS) at this threshold."""
        return browse.image_table(self.dataset, self)

    def image_boxes(self, key: str, image_index: int) -> pd.DataFrame:
        """The kept boxes of one image (core.browse.image_boxes); outcome and iou when evaluated."""
        return browse.image_boxes(self, key, image_index)

    def image_gts(self, image_index: int, dets: pd.DataFrame) -> pd.DataFrame:
        """The image's GT boxes with status tp/missed/crowd when evaluated, gt/crowd otherwise."""
        missed = self.evaluated.missed if self.evaluated is not None else None
        return browse.gt_rows(self.dataset, image_index, dets, missed, self.class_names)

    def box_table(self, gts: pd.DataFrame, dets: pd.DataFrame) -> pd.DataFrame:
        """One row per box of an image (ground truth, then predictions), for a table."""
        return browse.box_table(gts, dets, self.class_names)

    def filter_sources(self) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """(dets, gts) tables for core.browse.images_with: kept boxes with image_index and
        category_id (+ outcome when evaluated); GT with `missed` when evaluated."""
        if self.evaluated is not None:
            return self.evaluated.dets, self.evaluated.gts
        gts = self.dataset.annotations if self.dataset is not None and len(self.dataset.annotations) else None
        dets = pd.DataFrame({"image_index": self.image_index[self.keep],
                             "category_id": self.predictions.labels[self.keep]})
        return dets, gts


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def _f1(precision: float, recall: float) -> float:
    if np.isnan(precision) or np.isnan(recall):
        return float("nan")
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def default_thresholds(scores: np.ndarray) -> np.ndarray:
    """0.00, 0.01, ... 1.00 for scores in [0, 1]; 101 steps over the score range otherwise."""
    if len(scores) == 0 or (scores.min() >= 0 and scores.max() <= 1):
        return np.round(np.linspace(0, 1, 101), 2)
    return np.linspace(scores.min(), scores.max(), 101)


def threshold_curve(r: Ranked, category_id: int | None = None, thresholds=None) -> pd.DataFrame:
    """score_thr, precision, recall, f1, map50 (AP of that class when category_id is given)."""
    if category_id is None:
        det_rows, gt_rows, classes = slice(None), r.gt_regular, slice(None)
    else:
        where = np.flatnonzero(r.category_ids == category_id)
        if len(where) == 0:
            raise ValueError(f"Invalid category_id {category_id!r}. Only {r.category_ids.tolist()} are supported.")
        c = int(where[0])
        det_rows, gt_rows, classes = r.det_cls == c, r.gt_regular & (r.gt_cls == c), slice(c, c + 1)
    thresholds = default_thresholds(r.det_score) if thresholds is None else np.asarray(thresholds, float)
    code, score = r.det_code[det_rows], r.det_score[det_rows]
    tp_scores = np.sort(score[code == _TP])
    fp_scores = np.sort(score[(code != _TP) & (code != _IGNORED)])
    n_tp = len(tp_scores) - np.searchsorted(tp_scores, thresholds, side="left")
    n_fp = len(fp_scores) - np.searchsorted(fp_scores, thresholds, side="left")
    n_gt = int(gt_rows.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_tp + n_fp > 0, n_tp / (n_tp + n_fp), np.nan)
        recall = np.where(n_gt > 0, n_tp / max(n_gt, 1), np.nan)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    f1 = np.where(np.isnan(precision) | np.isnan(recall), np.nan, f1)
    map50 = []
    for t in thresholds:
        ap = r.class_ap(t)[classes]
        map50.append(float(np.nanmean(ap)) if np.isfinite(ap).any() else np.nan)
    return pd.DataFrame({"score_thr": thresholds, "precision": precision, "recall": recall,
                         "f1": f1, "map50": map50})
