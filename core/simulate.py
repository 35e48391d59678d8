"""Simulate a detector's output on a ground truth, with the errors real detectors make.

The sample CSVs in `sample_data/` come from here; tests use it to make predictions whose
errors are known. For every non-crowd ground-truth box of size s = sqrt(w * h):

1. Missed: it is found with probability
   `recall * class_recall[class] * (1 - small_miss * exp(-s / small_size))`, so misses grow
   for small boxes; a box not found is a MISSED ground truth.
2. Localised: a found box is well placed (each edge moves by N(0, sigma) times the box's
   width/height, capped at 2.5 sigma) or, with probability `localization_rate`, badly placed
   (shifted or rescaled so that its IoU with the ground truth is drawn uniformly from
   [0.15, 0.45]). sigma is `jitter` for every box, or, with `jitter_spread` > 0, each box's
   own `jitter * exp(jitter_spread * z)`, z ~ N(0, 1) capped at 2.5: some objects are
   harder to box than others, so IoUs spread continuously from ~0.95 down through
   0.5-0.75, as a real detector's do (a fixed sigma of 0.035 leaves nothing below 0.75,
   so AP@0.75 would equal AP@0.5). A well-placed box that still lands below IoU 0.5 is a
   localisation error (kind and score), like a badly placed one.
3. Classified: with probability `confusion_rate` its label is drawn from the row of the
   confusion table for the true class (Paper <-> Paper pack, Plastic <-> Plastic bag/Glass,
   General trash <-> anything, Battery -> Metal, ...), never the true class itself.
4. Scored: correct boxes draw a score from Beta(*correct_score), every wrong box (wrong class,
   bad box, duplicate, background) from Beta(*wrong_score), mapped onto [min_score, 1], so
   scores correlate with correctness as in a trained model.
5. Duplicated: with probability `duplicate_rate` a second box near the first, of the same
   label, with a lower score (what NMS failed to suppress).
6. Second guesses: with probability `second_label_rate` the same box again with another
   label from the confusion row and a much lower score (per-class heads of Faster R-CNN
   output these; they sit just above the 0.05 threshold).
7. Background: Poisson(`background_per_image`) boxes per image at random places and sizes,
   labelled by the dataset's class frequencies.

All boxes are clipped to the image, boxes under 1 px are dropped, coordinates are rounded to
0.1 px and scores to 4 decimals (what a CSV keeps), and each image keeps its `max_dets`
highest-scoring boxes. The intended kind of every box ("tp", "duplicate", "localization",
"classification", "both", "background", as in TIDE) is returned by `simulate_with_truth`;
an evaluator can disagree where boxes of different objects overlap.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np
import pandas as pd

from core.tables import Dataset, Predictions

# Off-diagonal weights of the confusion table by class name (rows: true class). Any pair not
# listed still gets CONFUSION_FLOOR, so every confusion is possible but the listed ones dominate.
TRASH_CONFUSION: dict[str, dict[str, float]] = {
    "General trash": {"Paper": 2, "Plastic": 2, "Plastic bag": 2, "Metal": 1, "Glass": 1,
                      "Styrofoam": 1, "Paper pack": 1, "Clothing": 1, "Battery": 0.2},
    "Paper": {"Paper pack": 4, "General trash": 3, "Plastic bag": 1, "Styrofoam": 0.5},
    "Paper pack": {"Paper": 4, "General trash": 2, "Plastic": 0.7, "Metal": 0.3},
    "Metal": {"General trash": 2, "Plastic": 1, "Glass": 1, "Battery": 0.5},
    "Glass": {"Plastic": 3, "General trash": 1.5, "Metal": 1},
    "Plastic": {"Plastic bag": 3, "Glass": 2, "General trash": 2, "Styrofoam": 0.5},
    "Styrofoam": {"Plastic": 2, "General trash": 2, "Paper": 1},
    "Plastic bag": {"Plastic": 3, "General trash": 2.5, "Clothing": 0.5, "Paper": 0.5},
    "Battery": {"Metal": 3, "General trash": 2, "Plastic": 0.5},
    "Clothing": {"General trash": 3, "Plastic bag": 2, "Paper": 0.3},
}
CONFUSION_FLOOR = 0.05
KINDS = ("tp", "duplicate", "localization", "classification", "both", "background")


@dataclass(frozen=True)
class ModelProfile:
    """How good a simulated detector is; see the module docstring for each step."""

    name: str
    recall: float                      # chance to find a large object
    small_miss: float                  # extra miss chance for a tiny object ...
    small_size: float                  # ... decaying with sqrt(area) in px on this scale
    jitter: float                      # edge noise std of well-placed boxes, fraction of w/h
    localization_rate: float           # share of found objects boxed with IoU 0.15-0.45
    confusion_rate: float              # share of found objects given a wrong label
    duplicate_rate: float              # share of found objects boxed twice
    second_label_rate: float           # share of found objects boxed again with another label
    background_per_image: float        # mean number of boxes on nothing, per image
    correct_score: tuple[float, float]  # Beta(a, b) of correct boxes' scores
    wrong_score: tuple[float, float]    # Beta(a, b) of every other box's score
    jitter_spread: float = 0.0         # log-normal spread of each box's own jitter (0: all use jitter)
    class_recall: Mapping[str, float] = field(default_factory=dict)  # per-class recall factor
    confusion: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: TRASH_CONFUSION)
    min_score: float = 0.05            # the baselines' hard-coded threshold
    max_dets: int = 100                # boxes kept per image, like COCO's maxDets

    def with_(self, **changes) -> "ModelProfile":
        """A copy with some fields changed (for tests and what-ifs)."""
        return replace(self, **changes)


STRONG = ModelProfile(  # pycocotools mAP@0.5 ~0.75, AP@0.75 / AP@0.5 ~0.85 on sample_data (a tuned two-stage model)
    name="strong", recall=0.92, small_miss=0.5, small_size=40.0, jitter=0.035, jitter_spread=0.8,
    localization_rate=0.065, confusion_rate=0.075, duplicate_rate=0.06, second_label_rate=0.3,
    background_per_image=2.2, correct_score=(6.0, 1.5), wrong_score=(1.2, 5.0),
    class_recall={"Battery": 0.9, "Clothing": 0.95},
)
WEAK = ModelProfile(  # mAP@0.5 ~0.45 (an undertrained baseline)
    name="weak", recall=0.8, small_miss=0.7, small_size=60.0, jitter=0.07,
    localization_rate=0.12, confusion_rate=0.12, duplicate_rate=0.15, second_label_rate=0.6,
    background_per_image=3.0, correct_score=(3.5, 1.8), wrong_score=(1.3, 3.5),
    class_recall={"Battery": 0.7, "Clothing": 0.8, "General trash": 0.85, "Paper pack": 0.85},
)


@dataclass
class SimulationTruth:
    """What each simulated box was meant to be.

    kinds: [N] object array of KINDS values, aligned with the Predictions' boxes.
    gt_index: [N] int64 row in dataset.annotations the box was made from (-1 for background).
    gt_detected: [A] bool per dataset.annotations row: found by the model (False = missed;
        crowd boxes are never targets and count as not found).
    """

    kinds: np.ndarray
    gt_index: np.ndarray
    gt_detected: np.ndarray


def simulate_predictions(dataset: Dataset, profile: ModelProfile, *, seed: int = 0,
                         image_indices=None) -> Predictions:
    """Predictions of a simulated model on `dataset` (deterministic for a given seed).

    image_indices: dataset image indices to predict on (default: all); an image's boxes do not
    depend on which others are chosen. image_keys are the dataset's file names.
    """
    return simulate_with_truth(dataset, profile, seed=seed, image_indices=image_indices)[0]


def simulate_with_truth(dataset: Dataset, profile: ModelProfile, *, seed: int = 0,
                        image_indices=None) -> tuple[Predictions, SimulationTruth]:
    """Like `simulate_predictions`, plus the intended kind of every box."""
    rng = np.random.default_rng(seed)
    n_images = len(dataset.images)
    ann = dataset.annotations
    cat_ids = dataset.category_ids.astype(np.int64)
    names = [dataset.category_names[c] for c in cat_ids.tolist()]
    confusion_cdf = _confusion_cdf(names, profile.confusion)            # [K+1, K]

    targets = np.flatnonzero(ann["iscrowd"].to_numpy() == 0) if len(ann) else np.zeros(0, np.int64)
    gt_boxes = ann[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)[targets].reshape(-1, 4)
    gt_image = ann["image_index"].to_numpy(np.int64)[targets]
    gt_class = pd.Index(cat_ids).get_indexer(ann["category_id"].to_numpy()[targets])
    gt_class = np.where(gt_class < 0, len(cat_ids), gt_class)          # unknown -> uniform row

    # 1. missed objects
    wh = gt_boxes[:, 2:] - gt_boxes[:, :2]                                # [A,2]
    size = np.sqrt(np.clip(wh[:, 0] * wh[:, 1], 0, None))
    class_factor = np.array([profile.class_recall.get(n, 1.0) for n in names] + [1.0])
    p_found = profile.recall * class_factor[gt_class] * (1 - profile.small_miss * np.exp(-size / profile.small_size))
    found = rng.random(len(targets)) < p_found
    f_idx = np.flatnonzero(found)
    f_box, f_wh, f_class = gt_boxes[f_idx], wh[f_idx], gt_class[f_idx]

    # 2. localisation
    misplaced = rng.random(len(f_idx)) < profile.localization_rate
    sigma = profile.jitter
    if profile.jitter_spread > 0:  # drawn only when used, so profiles without it keep their random stream
        sigma = profile.jitter * np.exp(profile.jitter_spread * np.clip(rng.standard_normal(len(f_idx)), -2.5, 2.5))
    boxes = _jitter(rng, f_box, f_wh, sigma)
    boxes[misplaced] = _misplace(rng, f_box[misplaced], f_wh[misplaced])
    bad_loc = misplaced | (_paired_iou(boxes, f_box) < 0.5)  # the jitter's tail below 0.5 is an error too

    # 3. classification
    confused = rng.random(len(f_idx)) < profile.confusion_rate
    label_idx = np.where(confused, _draw_confusion(rng, confusion_cdf, f_class), f_class)
    kinds = np.select([confused & bad_loc, confused, bad_loc], ["both", "classification", "localization"], "tp").astype(object)

    # 4. scores
    correct = kinds == "tp"
    scores = np.where(correct, rng.beta(*profile.correct_score, len(f_idx)), rng.beta(*profile.wrong_score, len(f_idx)))

    # 5. duplicates: near the parent box, same label, lower score
    dup = np.flatnonzero(rng.random(len(f_idx)) < profile.duplicate_rate)
    dup_boxes = _jitter(rng, boxes[dup], boxes[dup, 2:] - boxes[dup, :2], max(profile.jitter, 0.03))
    dup_scores = scores[dup] * rng.uniform(0.25, 0.85, len(dup))
    dup_kinds = np.where(kinds[dup] == "tp", "duplicate", kinds[dup]).astype(object)

    # 6. second guesses: same box, another label, much lower score
    alt = np.flatnonzero(rng.random(len(f_idx)) < profile.second_label_rate)
    alt_boxes = _jitter(rng, boxes[alt], boxes[alt, 2:] - boxes[alt, :2], 0.01)
    alt_label = _draw_confusion(rng, confusion_cdf, f_class[alt])
    alt_scores = scores[alt] * rng.uniform(0.05, 0.4, len(alt))
    alt_kinds = np.where(bad_loc[alt], "both", "classification").astype(object)

    # 7. background boxes
    bg_count = rng.poisson(profile.background_per_image, n_images) * (len(cat_ids) > 0)  # no classes, no labels
    bg_image = np.repeat(np.arange(n_images), bg_count)
    img_wh = dataset.images[["width", "height"]].to_numpy(np.float64).reshape(-1, 2)
    bg_boxes = _random_boxes(rng, img_wh[bg_image])
    class_freq = np.bincount(gt_class[gt_class < len(cat_ids)], minlength=len(cat_ids)) + 1.0
    bg_label = rng.choice(len(cat_ids), size=len(bg_image), p=class_freq / class_freq.sum()) if len(cat_ids) else np.zeros(0, np.int64)
    bg_scores = rng.beta(*profile.wrong_score, len(bg_image))

    gt_row = targets[f_idx]
    all_image = np.concatenate([gt_image[f_idx], gt_image[f_idx][dup], gt_image[f_idx][alt], bg_image]).astype(np.int64)
    all_boxes = np.concatenate([boxes, dup_boxes, alt_boxes, bg_boxes]).reshape(-1, 4)
    all_label = np.concatenate([label_idx, label_idx[dup], alt_label, bg_label]).astype(np.int64)
    raw_scores = np.concatenate([scores, dup_scores, alt_scores, bg_scores])
    all_kinds = np.concatenate([kinds, dup_kinds, alt_kinds, np.full(len(bg_image), "background", object)])
    all_gt = np.concatenate([gt_row, gt_row[dup], gt_row[alt], np.full(len(bg_image), -1)]).astype(np.int64)

    all_scores = np.round(profile.min_score + (1 - profile.min_score) * raw_scores, 4)
    all_boxes = np.round(_clip_to_images(all_boxes, img_wh[all_image]), 1)
    keep = ((all_boxes[:, 2] - all_boxes[:, 0]) >= 1) & ((all_boxes[:, 3] - all_boxes[:, 1]) >= 1)

    gt_detected = np.zeros(len(ann), bool)
    gt_detected[gt_row] = True
    return _assemble(dataset, profile, seed, image_indices, keep, all_image, all_boxes,
                     cat_ids[all_label], all_scores, all_kinds, all_gt, gt_detected)


def _assemble(dataset, profile, seed, image_indices, keep, image, boxes, labels, scores, kinds,
              gt_index, gt_detected) -> tuple[Predictions, SimulationTruth]:
    """Select images, sort by (image, -score), cap per image, and build the tables."""
    n_images = len(dataset.images)
    chosen = np.arange(n_images) if image_indices is None else pd.unique(np.asarray(image_indices, np.int64).ravel())
    if len(chosen) and (chosen.min() < 0 or chosen.max() >= n_images):
        raise ValueError(f"image_indices must lie in [0, {n_images}); got {chosen.min()}..{chosen.max()}")
    pos_of_image = np.full(n_images, -1, np.int64)
    pos_of_image[chosen] = np.arange(len(chosen))
    pos = pos_of_image[image]
    keep = keep & (pos >= 0)
    order = np.flatnonzero(keep)
    order = order[np.lexsort((order, -scores[order], pos[order]))]  # stable: ties keep generation order
    sorted_pos = pos[order]
    first = np.searchsorted(sorted_pos, sorted_pos, side="left")
    order = order[np.arange(len(order)) - first < profile.max_dets]

    keys = dataset.images["file_name"].to_numpy(object)[chosen]
    preds = Predictions(
        image_keys=np.asarray(keys, dtype=object), image_pos=pos[order], labels=labels[order],
        scores=scores[order], boxes_xyxy=boxes[order].reshape(-1, 4),
        lines=np.zeros(len(chosen), np.int64), source=f"simulated {profile.name} model (seed {seed})",
    )
    return preds, SimulationTruth(kinds=kinds[order], gt_index=gt_index[order], gt_detected=gt_detected)


def confusion_matrix(names: list[str], table: Mapping[str, Mapping[str, float]] = TRASH_CONFUSION) -> np.ndarray:
    """[K, K] row-stochastic chance that class i (when mislabelled) is called class j; 0 diagonal."""
    k = len(names)
    weights = np.full((k, k), CONFUSION_FLOOR)
    for i, true_name in enumerate(names):
        for j, pred_name in enumerate(names):
            weights[i, j] += table.get(true_name, {}).get(pred_name, 0.0)
    np.fill_diagonal(weights, 0.0)
    if k == 1:  # nothing to confuse a single class with: keep it
        weights[0, 0] = 1.0
    return weights / weights.sum(axis=1, keepdims=True)


def _confusion_cdf(names: list[str], table) -> np.ndarray:
    """[K+1, K] cumulative confusion rows; the last row (unknown class) is uniform."""
    k = len(names)
    rows = np.vstack([confusion_matrix(names, table), np.full((1, k), 1.0 / max(k, 1))]) if k else np.zeros((1, 0))
    return np.cumsum(rows, axis=1)


def _draw_confusion(rng: np.random.Generator, cdf: np.ndarray, true_class: np.ndarray) -> np.ndarray:
    """A confused class index for each true class index ([M] -> [M])."""
    u = rng.random(len(true_class))
    drawn = (u[:, None] > cdf[true_class]).sum(axis=1)  # [M]
    return np.minimum(drawn, cdf.shape[1] - 1)


def _jitter(rng: np.random.Generator, boxes: np.ndarray, wh: np.ndarray, scale) -> np.ndarray:
    """Move each edge by N(0, scale) x box width/height, capped at 2.5 sigma; keeps x2 > x1.

    scale: one float for all boxes, or [M] per box.
    """
    noise = np.clip(rng.standard_normal(boxes.shape), -2.5, 2.5) * np.reshape(scale, (-1, 1))  # [M,4]
    out = boxes + noise * np.tile(wh, 2)
    out[:, 2:] = np.maximum(out[:, 2:], out[:, :2] + 1.0)
    return out


def _paired_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU of each box with its partner: [M, 4] and [M, 4] xyxy -> [M] (0 where the union is 0)."""
    wh1, wh2 = boxes1[:, 2:] - boxes1[:, :2], boxes2[:, 2:] - boxes2[:, :2]  # [M,2]
    inter = np.clip(np.minimum(boxes1[:, 2:], boxes2[:, 2:]) - np.maximum(boxes1[:, :2], boxes2[:, :2]), 0, None).prod(axis=1)
    union = wh1.prod(axis=1) + wh2.prod(axis=1) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _misplace(rng: np.random.Generator, boxes: np.ndarray, wh: np.ndarray) -> np.ndarray:
    """Boxes whose IoU with the given ones is drawn from U(0.15, 0.45): shifted or rescaled."""
    target = rng.uniform(0.15, 0.45, len(boxes))
    # Shift: overlap fraction o = (1-dx)(1-dy) gives IoU o / (2 - o).
    overlap = 2 * target / (1 + target)
    split = rng.uniform(0.2, 0.8, len(boxes))
    frac = np.stack([1 - overlap ** split, 1 - overlap ** (1 - split)], axis=1)  # [M,2]
    sign = rng.choice([-1.0, 1.0], size=(len(boxes), 2))
    shifted = boxes + np.tile(frac * sign * wh, 2)
    # Rescale about the centre: IoU = s^2 (shrink) or 1/s^2 (grow).
    grow = rng.random(len(boxes)) < 0.5
    s = np.where(grow, 1 / np.sqrt(target), np.sqrt(target))[:, None]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    rescaled = np.concatenate([centre - wh * s / 2, centre + wh * s / 2], axis=1)
    use_shift = rng.random(len(boxes)) < 0.6
    return np.where(use_shift[:, None], shifted, rescaled)


def _random_boxes(rng: np.random.Generator, image_wh: np.ndarray) -> np.ndarray:
    """One random box per row of image_wh ([M,2]): log-normal size around 12% of the image."""
    side = np.clip(np.exp(np.log(0.12) + 0.7 * rng.standard_normal(len(image_wh))), 0.02, 0.8)
    aspect = np.exp(0.35 * rng.standard_normal(len(image_wh)))
    half = np.stack([side * np.sqrt(aspect), side / np.sqrt(aspect)], axis=1) * image_wh.min(axis=1, keepdims=True) / 2
    centre = rng.random((len(image_wh), 2)) * image_wh
    return np.concatenate([centre - half, centre + half], axis=1).reshape(-1, 4)


def _clip_to_images(boxes: np.ndarray, image_wh: np.ndarray) -> np.ndarray:
    limits = np.tile(image_wh, 2)  # [M,4] = (W, H, W, H)
    return np.clip(boxes, 0.0, limits)
