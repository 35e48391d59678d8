"""Is B's mAP@0.5 really better than A's? A paired bootstrap over images.

Each resample draws the dataset's images with replacement (the same draw for A and B) and
recomputes both models' COCO mAP at the evaluation's IoU from the per-box outcomes: an image
drawn k times counts k times (its boxes and ground truths weigh k), which is what pycocotools
would give on the dataset with that image repeated, up to the order of equal scores. Matching
is never re-run: 1,000 resamples of a competition-size fold (4,883 images, 488,300 boxes per
model) take 2-4 s for the pair (bench/bench_catalog.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.outcomes import Outcome
from core.metrics import COCO_RECALL_THRS


@dataclass(frozen=True)
class BootstrapResult:
    """map_a/map_b: the two models' mAP on the full set; delta = map_b - map_a; [low, high]: the
    `confidence` interval of delta over `n_resamples` resamples; p_b_better: the fraction of
    resamples where B beats A; std_err: the standard deviation of the resampled deltas."""

    map_a: float
    map_b: float
    delta: float
    low: float
    high: float
    p_b_better: float
    std_err: float
    n_resamples: int
    confidence: float
    n_images: int
    iou_thr: float
    seed: int

    @property
    def significant(self) -> bool:
        """The interval excludes 0."""
        return self.low > 0 or self.high < 0

    def sentence(self, name_a: str = "A", name_b: str = "B") -> str:
        """One line for a page or a terminal."""
        verdict = ("the difference is real at this confidence" if self.significant else
                   "the interval contains 0: the difference may be noise")
        return (f"mAP@{self.iou_thr:g} {name_b} − {name_a} = {self.delta:+.4f}, "
                f"{self.confidence:.0%} interval [{self.low:+.4f}, {self.high:+.4f}] over {self.n_images:,} images "
                f"({self.n_resamples:,} resamples); {name_b} beats {name_a} in {self.p_b_better:.1%} of them: {verdict}.")


@dataclass(frozen=True)
class _Ranked:
    class_start: np.ndarray  # [K+1] row offsets per class into the arrays below
    det_image: np.ndarray    # [N] image of each counted prediction, pycocotools' order per class
    det_tp: np.ndarray       # [N] bool
    gt_image: np.ndarray     # [G] image of each regular (not crowd) ground truth
    gt_cls: np.ndarray       # [G]
    n_classes: int


def _ranked(ev) -> _Ranked:
    """Counted predictions of `ev` sorted by class, then pycocotools' accumulate order."""
    r = ev._ranked
    counted = np.flatnonzero(r.det_code != Outcome.IGNORED.code)
    ids = ev.dataset.images["id"].to_numpy()
    image_rank = np.empty(len(ids), np.int64)
    image_rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
    rows = counted[np.argsort(image_rank[r.det_image[counted]], kind="stable")]  # per-image lists by id
    rows = rows[np.argsort(-r.det_score[rows], kind="stable")]                   # then by score
    rows = rows[np.argsort(r.det_cls[rows], kind="stable")]                      # grouped by class
    k = len(r.category_ids)
    return _Ranked(
        class_start=np.searchsorted(r.det_cls[rows], np.arange(k + 1)).astype(np.int64),
        det_image=r.det_image[rows].astype(np.int64), det_tp=r.det_code[rows] == Outcome.TP.code,
        gt_image=r.gt_image[r.gt_regular].astype(np.int64), gt_cls=r.gt_cls[r.gt_regular].astype(np.int64),
        n_classes=k)


def _n_pos(ranked: _Ranked, weights: np.ndarray) -> np.ndarray:
    """[B, K] weighted ground-truth count per class for each resample's image weights [B, I]."""
    out = np.zeros((weights.shape[0], ranked.n_classes))
    for k in range(ranked.n_classes):  # K small, weights wide: one gather per class
        images = ranked.gt_image[ranked.gt_cls == k]
        if len(images):
            counts = np.bincount(images, minlength=weights.shape[1]).astype(np.float64)
            out[:, k] = weights @ counts
    return out


WORK_BYTES = 64 << 20  # scratch per class at once: [TPs of the class, resamples] precisions and counts


def resampled_map(ev, weights: np.ndarray) -> np.ndarray:
    """[B] mAP at ev.iou_thr with images weighted by each row of `weights` [B, n_images] (whole counts)."""
    return _resampled_map(_ranked(ev), weights)


def _resampled_map(ranked: _Ranked, weights: np.ndarray) -> np.ndarray:
    from core.catalog._bootstrap_kernel import weighted_ap

    weights = np.asarray(weights)
    if weights.size and (weights.min() < 0 or weights.max() > np.iinfo(np.int32).max or
                         not np.array_equal(weights, np.round(weights))):
        raise ValueError("image weights must be whole numbers >= 0 (how often each image is drawn)")
    ap = np.empty((weights.shape[0], ranked.n_classes))
    most_tp = int(max(np.bincount(np.repeat(np.arange(ranked.n_classes), np.diff(ranked.class_start)),
                                  weights=ranked.det_tp, minlength=ranked.n_classes).max(initial=0), 1))
    chunk = int(np.clip(WORK_BYTES // (16 * most_tp), 16, 1000))
    for start in range(0, weights.shape[0], chunk):  # bounded memory: [TPs of a class, chunk] per class
        block = weights[start:start + chunk]
        dtype = np.int16 if block.size and block.max() < 2 ** 15 else np.int32
        ap[start:start + chunk] = weighted_ap(
            ranked.class_start, ranked.det_image, ranked.det_tp, np.ascontiguousarray(block.T, dtype=dtype),
            _n_pos(ranked, block.astype(np.float64)), COCO_RECALL_THRS)    # [b, K], NaN: no GT
    with np.errstate(all="ignore"):
        counted = ~np.isnan(ap)
        return np.where(counted.any(axis=1), np.nansum(ap, axis=1) / np.maximum(counted.sum(axis=1), 1), np.nan)


def draw_images(n_images: int, n_resamples: int, seed: int) -> np.ndarray:
    """[B, n_images] how often each image is drawn in each resample (n_images draws with replacement)."""
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n_images, size=(n_resamples, n_images))
    flat = (drawn + (np.arange(n_resamples) * n_images)[:, None]).ravel()
    return np.bincount(flat, minlength=n_resamples * n_images).reshape(n_resamples, n_images).astype(np.int32)


def _same_images(ev_a, ev_b) -> bool:
    a, b = ev_a.dataset, ev_b.dataset
    return a is b or (len(a.images) == len(b.images) and
                      np.array_equal(a.images["id"].to_numpy(), b.images["id"].to_numpy()) and
                      len(a.annotations) == len(b.annotations))


def paired_bootstrap(ev_a, ev_b, *, n_resamples: int = 1000, confidence: float = 0.95,
                     seed: int = 0) -> BootstrapResult:
    """Confidence interval of mAP(B) - mAP(A) at the evaluations' IoU, resampling images.

    ev_a, ev_b: core.evaluation.Evaluation of two prediction sets on the same ground truth and IoU.
    """
    if not _same_images(ev_a, ev_b):
        raise ValueError("paired bootstrap: the two evaluations are not on the same ground truth; "
                         "evaluate both submissions against one GT")
    if ev_a.iou_thr != ev_b.iou_thr:
        raise ValueError(f"paired bootstrap: IoU thresholds differ ({ev_a.iou_thr:g} vs {ev_b.iou_thr:g})")
    if int(n_resamples) < 10:
        raise ValueError(f"Invalid n_resamples {n_resamples!r}. Only 10 or more are supported.")
    if not 0.5 <= confidence < 1:
        raise ValueError(f"Invalid confidence {confidence!r}. Only values in [0.5, 1) are supported.")
    n_images = len(ev_a.dataset.images)
    weights = draw_images(n_images, int(n_resamples), seed)                   # [B, I]
    ranked_a, ranked_b = _ranked(ev_a), _ranked(ev_b)
    full = np.ones((1, n_images), np.int32)
    map_a, map_b = _resampled_map(ranked_a, full)[0], _resampled_map(ranked_b, full)[0]
    delta = _resampled_map(ranked_b, weights) - _resampled_map(ranked_a, weights)  # [B]
    delta = delta[~np.isnan(delta)]
    tail = (1 - confidence) / 2
    low, high = np.quantile(delta, [tail, 1 - tail])
    return BootstrapResult(
        map_a=float(map_a), map_b=float(map_b), delta=float(map_b - map_a), low=float(low), high=float(high),
        p_b_better=float(np.mean(delta > 0)), std_err=float(np.std(delta, ddof=1)),
        n_resamples=int(n_resamples), confidence=float(confidence), n_images=n_images,
        iou_thr=float(ev_a.iou_thr), seed=int(seed))
