"""Test-set predictions without ground truth: what can still be measured (issue 12).

    prior = class_prior(train)                        # GT boxes per image and class in training
    mix = class_mix(preds, test, prior, score_thr)    # predicted vs expected boxes per class
    thr = suggest_thresholds(preds, test, prior)      # label-free: counts match the prior

The training set's class mix, scaled to the number of test images, is what an unbiased model
would predict if test looks like train: a class far above it is over-predicted (or shifted),
far below under-predicted. The suggested threshold of a class is the score at which the
number of its predicted boxes equals that expected count; there precision equals recall
whenever the test images really follow the prior (same number of true and predicted boxes).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.tables import Dataset, Predictions
from core.thresholds import PredictionView, at_or_above

ALL_CLASSES = -1  # category_id of the overall row in suggest_thresholds


@dataclass(frozen=True)
class ClassPrior:
    """A training ground truth summarised: source name, image count, per-class box counts
    (category_id -> boxes) and GT boxes per image ([N] int)."""

    source: str
    n_images: int
    boxes: dict[int, int]
    boxes_per_image: np.ndarray

    def expected(self, category_id: int, n_images: int) -> float:
        """Boxes of the class expected on n_images test images at the training rate."""
        return self.boxes.get(int(category_id), 0) / max(self.n_images, 1) * n_images

    @property
    def total(self) -> int:
        return int(sum(self.boxes.values()))


def class_prior(train: Dataset) -> ClassPrior:
    """The class mix of a training ground truth (crowd boxes left out, as in AP's counts)."""
    ann = train.annotations
    regular = ~ann["iscrowd"].to_numpy().astype(bool)
    counts = ann.loc[regular, "category_id"].value_counts()
    per_image = np.bincount(ann.loc[regular, "image_index"].to_numpy(np.int64), minlength=len(train.images))
    return ClassPrior(train.source, len(train.images), {int(k): int(v) for k, v in counts.items()}, per_image)


def _known(preds: Predictions, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """([N] image index, [N] bool) of each box: on a dataset image, of a dataset class."""
    image_index = preds.image_index_in(dataset)
    known = (image_index >= 0) & np.isin(preds.labels, dataset.category_ids)
    return image_index, known


def boxes_per_image(preds: Predictions, dataset: Dataset, score_thr: float) -> np.ndarray:
    """[N images] boxes scoring >= score_thr on each dataset image (0 where the CSV has no row)."""
    _, known = _known(preds, dataset)
    return PredictionView(preds, score_thr, dataset).boxes_per_image(known)


def images_without_boxes(preds: Predictions, dataset: Dataset, score_thr: float) -> pd.DataFrame:
    """file_name, top_score (NaN: no box at all) of the images with no box >= score_thr."""
    image_index, known = _known(preds, dataset)
    top = np.full(len(dataset.images), -np.inf)
    np.maximum.at(top, image_index[known], preds.scores[known])
    empty = np.flatnonzero(~at_or_above(top, score_thr))
    return pd.DataFrame({"file_name": dataset.images["file_name"].to_numpy()[empty],
                         "top_score": np.where(np.isfinite(top[empty]), top[empty], np.nan)})


def class_mix(preds: Predictions, dataset: Dataset, prior: ClassPrior, score_thr: float) -> pd.DataFrame:
    """category_id, name, predicted (boxes >= score_thr), expected (training rate x test images),
    ratio (predicted / expected; NaN when nothing is expected), share_predicted, share_train."""
    _, known = _known(preds, dataset)
    keep = known & PredictionView(preds, score_thr, dataset).keep
    ids = dataset.category_ids
    predicted = pd.Series(preds.labels[keep]).value_counts().reindex(ids).fillna(0).astype(np.int64).to_numpy()
    n_images = len(dataset.images)
    expected = np.array([prior.expected(c, n_images) for c in ids], np.float64)
    train = np.array([prior.boxes.get(int(c), 0) for c in ids], np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame({
            "category_id": ids, "name": dataset.categories["name"].to_numpy(),
            "predicted": predicted, "expected": expected,
            "ratio": np.where(expected > 0, predicted / expected, np.nan),
            "share_predicted": predicted / max(predicted.sum(), 1),
            "share_train": train / max(train.sum(), 1),
        })


def count_matching_threshold(scores: np.ndarray, expected: float) -> tuple[float, int]:
    """(threshold, boxes kept) such that keeping scores >= threshold keeps round(expected) boxes.

    The threshold is the score of the k-th highest box (k = round(expected)); ties there keep
    a few more. With fewer than k boxes it is the lowest score (everything kept); k = 0 gives
    1.0 (above every valid score; nothing kept unless a score reaches it).
    """
    scores = np.sort(np.asarray(scores, np.float64))[::-1]                 # descending
    k = int(round(float(expected)))
    if k <= 0:
        threshold = max(1.0, float(np.nextafter(scores[0], np.inf))) if len(scores) else 1.0
    elif k >= len(scores):
        threshold = float(scores[-1]) if len(scores) else 0.0
    else:
        threshold = float(scores[k - 1])
    return threshold, int(at_or_above(scores, threshold).sum())


def suggest_thresholds(preds: Predictions, dataset: Dataset, prior: ClassPrior) -> pd.DataFrame:
    """Per class, then overall (category_id ALL_CLASSES): expected boxes (prior x test images),
    threshold (count_matching_threshold), kept (boxes at it), available (all the class's boxes),
    enough (available >= expected: False means under-predicted even with every box kept)."""
    _, known = _known(preds, dataset)
    n_images = len(dataset.images)
    rows = []
    labels, scores = preds.labels[known], preds.scores[known]
    for category_id, name in zip(dataset.category_ids, dataset.categories["name"]):
        own = scores[labels == category_id]
        expected = prior.expected(category_id, n_images)
        threshold, kept = count_matching_threshold(own, expected)
        rows.append((int(category_id), str(name), expected, threshold, kept, len(own)))
    expected = prior.total / max(prior.n_images, 1) * n_images
    threshold, kept = count_matching_threshold(scores, expected)
    rows.append((ALL_CLASSES, "all classes", expected, threshold, kept, len(scores)))
    table = pd.DataFrame(rows, columns=["category_id", "name", "expected", "threshold", "kept", "available"])
    table["enough"] = table["available"] >= np.round(table["expected"])
    return table


def count_curve(scores: np.ndarray, thresholds: np.ndarray | None = None) -> pd.DataFrame:
    """score_thr, boxes (kept at score >= score_thr) on a grid of thresholds (default 0..1, 101)."""
    thresholds = np.linspace(0.0, 1.0, 101) if thresholds is None else np.asarray(thresholds, np.float64)
    ordered = np.sort(np.asarray(scores, np.float64))
    kept = len(ordered) - np.searchsorted(ordered, thresholds, side="left")
    return pd.DataFrame({"score_thr": thresholds, "boxes": kept})
