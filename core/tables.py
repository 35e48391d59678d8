"""The columnar tables every part of DetLens passes around: a dataset and a set of predictions.

Boxes inside are absolute-pixel xyxy float64. Conversion from COCO xywh (ground truth,
COCO results json) and to/from the submission CSV happens only in the loaders and writers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from core.problems import Problem

IMAGE_COLUMNS = ["id", "file_name", "width", "height"]
ANNOTATION_COLUMNS = [
    "id", "image_index", "image_id", "category_id",
    "x", "y", "w", "h",          # COCO xywh as written in the json
    "x1", "y1", "x2", "y2",      # the same box as xyxy
    "area", "iscrowd",           # area: the json's own `area` when given, else w*h
]
CATEGORY_COLUMNS = ["id", "name"]


def class_name(class_names: dict[int, str], category_id) -> str:
    """The name of a class id, "class N" for an id the names lack (an unknown label)."""
    return class_names.get(int(category_id), f"class {int(category_id)}")


@dataclass
class Dataset:
    """A COCO ground truth as tables.

    images: one row per image, positional index 0..N-1 = "image index"; columns IMAGE_COLUMNS.
    annotations: one row per box; columns ANNOTATION_COLUMNS (`image_index` points into images).
    categories: one row per class, sorted by id; columns CATEGORY_COLUMNS.
    root: folder that image `file_name`s resolve against (None for an uploaded json).
    upright_pixels: boxes are in the EXIF-upright pixel grid (YOLO: Ultralytics reads images
    upright), not the stored grid (COCO); core.images.read_image draws the grid named here.
    """

    images: pd.DataFrame
    annotations: pd.DataFrame
    categories: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    source: str = "<memory>"
    root: Path | None = None
    upright_pixels: bool = False

    @property
    def category_ids(self) -> np.ndarray:
        return self.categories["id"].to_numpy()

    @property
    def category_names(self) -> dict[int, str]:
        return dict(zip(self.categories["id"].tolist(), self.categories["name"].tolist()))

    def image_index_of_file(self, file_names) -> np.ndarray:
        """Image index for each file name; -1 where the dataset has no such image."""
        lookup = pd.Index(self.images["file_name"])
        return lookup.get_indexer(pd.Index(file_names, dtype=object)).astype(np.int64)

    def image_index_of_id(self, image_ids) -> np.ndarray:
        """Image index for each COCO image id; -1 where unknown."""
        lookup = pd.Index(self.images["id"])
        return lookup.get_indexer(pd.Index(np.asarray(image_ids))).astype(np.int64)


@dataclass
class Predictions:
    """Detections as flat arrays, one entry per box, boxes grouped by image in file order.

    image_keys: [R] object array, one per image listed in the file (the CSV's image_id string,
        or for a COCO results json the dataset's file_name), in file order; unique.
    image_pos: [N] int64 index into image_keys for each box.
    labels: [N] int64 category ids as written in the file.
    scores: [N] float64.
    boxes_xyxy: [N, 4] float64 absolute pixels.
    lines: [R] int64 1-based line of each image's row in the source file (0 when not a CSV).
    """

    image_keys: np.ndarray
    image_pos: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    boxes_xyxy: np.ndarray
    lines: np.ndarray
    problems: list[Problem] = field(default_factory=list)
    source: str = "<memory>"

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self.problems)

    @cached_property
    def top_score_per_key(self) -> np.ndarray:
        """[R] highest score on each image of image_keys; -inf where it has no box (or only NaN)."""
        top = np.full(len(self.image_keys), -np.inf)
        np.fmax.at(top, self.image_pos, self.scores)
        return top

    @cached_property
    def _key_lookup(self) -> pd.Index:
        return pd.Index(np.asarray(self.image_keys, dtype=object), dtype=object)

    def key_position(self, keys) -> np.ndarray:
        """[len(keys)] position of each key in image_keys; -1 where the predictions lack it."""
        return self._key_lookup.get_indexer(pd.Index(np.asarray(keys, dtype=object), dtype=object))

    def image_index_in(self, dataset: Dataset) -> np.ndarray:
        """[N] dataset image index of every box; -1 for boxes on images the dataset lacks."""
        per_key = dataset.image_index_of_file(self.image_keys)
        return per_key[self.image_pos] if len(self.image_pos) else np.zeros(0, np.int64)

    def subset(self, keep: np.ndarray) -> "Predictions":
        """The same predictions restricted to boxes where `keep` ([N] bool) is True; images kept."""
        return Predictions(
            image_keys=self.image_keys, image_pos=self.image_pos[keep], labels=self.labels[keep],
            scores=self.scores[keep], boxes_xyxy=self.boxes_xyxy[keep].reshape(-1, 4),
            lines=self.lines, problems=self.problems, source=self.source,
        )
